"""Training step time of each backbone at batch 128 with the caption encoder frozen.

    python benchmarks/bench_step.py [--batch 128] [--steps 20] [--config-set model.x=y]

Inputs have msrvtt-1k's shapes (one expert of 50 frames x 128; 384-d sentence vectors)
and random values: speed does not depend on them. Each step is forward, loss, backward,
gradient clipping and an AdamW update, as in the trainer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from vidret.config import load_config
from vidret.losses.base import LossContext
from vidret.losses.registry import build_objective
from vidret.models.base import ModelSignature
from vidret.models.registry import BACKBONES
from vidret.models.retrieval import build_model
from vidret.models.types import TextBatch, VideoBatch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--loss", default="triplet")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    args = p.parse_args()

    sig = ModelSignature(experts={"frames": 128}, frames={"frames": 50}, text_dim=384)
    video = VideoBatch(
        {"frames": torch.randn(args.batch, 50, 128)}, {"frames": torch.full((args.batch,), 50)}
    )
    text = TextBatch(sentence=torch.nn.functional.normalize(torch.randn(args.batch, 384), dim=1))
    for name in BACKBONES:
        cfg = load_config(f"configs/{name}-{args.loss}.yaml", args.overrides)
        torch.manual_seed(0)
        model = build_model(cfg, sig, "unused")
        objective = build_objective(cfg.loss)
        params = [*model.parameters(), *objective.parameters()]
        opt = torch.optim.AdamW(params, lr=1e-4)
        times = []
        for step in range(args.steps + 3):
            t0 = time.perf_counter()
            out = objective(model(text, video).sims, LossContext(epoch=2.0))
            opt.zero_grad()
            out.total.backward()
            torch.nn.utils.clip_grad_norm_(params, 2.0)
            opt.step()
            if step >= 3:  # the first steps warm up allocators
                times.append(time.perf_counter() - t0)
        print(
            json.dumps(
                {
                    "backbone": name,
                    "loss": args.loss,
                    "batch": args.batch,
                    "median_ms": round(1000 * statistics.median(times), 1),
                    "params": sum(p.numel() for p in model.parameters()),
                    "threads": torch.get_num_threads(),
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                }
            )
        )


if __name__ == "__main__":
    main()
