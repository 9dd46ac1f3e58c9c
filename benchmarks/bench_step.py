"""Training step time of each backbone at batch 128 with the caption encoder frozen.

    python benchmarks/bench_step.py [--losses triplet cmgsd infonce] [--batch 128] [--steps 40]
    python benchmarks/bench_step.py --losses triplet sndcg bcls unified --adversarial 0.1
    python benchmarks/bench_step.py --losses triplet bcls bcls:loss.window=8
    python benchmarks/bench_step.py --backbones visern --losses infonce cmgsd --regions 9

Inputs have msrvtt-1k's shapes (one expert of 50 frames x 128; 384-d sentence vectors)
and random values: speed does not depend on them. Each step is the trainer's own:
forward, loss (`global_batch_loss`), backward, gradient clipping and an AdamW update.
With cmgsd the static expert vectors are given as the trainer gives them (cached:
slicing only). The objectives' steps are interleaved (one of each in turn, per
backbone), so the machine's drift hits them alike and their ratio is meaningful: the
ratio cmgsd / triplet is the adaptive margins' overhead, and each objective's ratio to
triplet (`over_triplet`) its own. Objectives ranking by caption relevance (sndcg, bcls) get
20 caption vectors per video, as msrvtt-1k's videos have; `--adversarial W` wraps every
objective in the adversarial modality alignment. `NAME:key=value[:key=value]` runs
configs/<backbone>-NAME.yaml with those settings (a row of its own). `--backbones` picks
backbones (default: all); `--regions N` gives region backbones (visern, amenet) N regions of
1280-d a frame (what `vidret extract --regions N` writes) instead of frames as regions.
Captions carry 32 token features too (a backbone whose config says text.encoder: tokens
reads them). `peak_rss_mb` is the process's peak resident memory so far: run one backbone
per invocation to read it as that backbone's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time

import torch

from vidret.config import load_config
from vidret.losses.registry import build_objective
from vidret.losses.relevance import CAPTIONS, VIDEO_CAPTION_MASK, VIDEO_CAPTIONS
from vidret.models.base import ModelSignature
from vidret.models.registry import BACKBONES, reads_regions
from vidret.models.retrieval import build_model
from vidret.models.types import TextBatch, VideoBatch
from vidret.train.distributed import ProcessGroup
from vidret.train.step import global_batch_loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--losses", nargs="+", default=["triplet", "cmgsd", "infonce"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--adversarial", type=float, default=0.0)
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    p.add_argument("--regions", type=int, default=0)
    args = p.parse_args()

    video = VideoBatch(
        {"frames": torch.randn(args.batch, 50, 128)}, {"frames": torch.full((args.batch,), 50)}
    )
    text = TextBatch(
        sentence=torch.nn.functional.normalize(torch.randn(args.batch, 384), dim=1),
        tokens=torch.randn(args.batch, 32, 384),
        lengths=torch.randint(8, 33, (args.batch,)),
    )
    static = {"text": torch.randn(args.batch, 384), "video:frames": torch.randn(args.batch, 128)}
    relevance = {
        CAPTIONS: torch.randn(args.batch, 384),
        VIDEO_CAPTIONS: torch.randn(args.batch, 20, 384),
        VIDEO_CAPTION_MASK: torch.ones(args.batch, 20),
    }
    for name in args.backbones:
        regions = args.regions if reads_regions(name) else 0
        sig = ModelSignature(
            experts={"frames": 128},
            frames={"frames": 50},
            text_dim=384,
            regions={"frames": [regions, 1280]} if regions else {},
        )
        if regions:
            video.regions["frames"] = torch.randn(args.batch, 50, regions, 1280)
        runs = {}
        for loss in args.losses:
            objective_name, *settings = loss.split(":")
            cfg = load_config(
                f"configs/{name}-{objective_name}.yaml",
                [f"loss.adversarial={args.adversarial}", *settings],
            )
            torch.manual_seed(0)
            model = build_model(cfg, sig, "unused")
            objective = build_objective(cfg.loss, cfg.train.epochs, cfg.model.embed_dim)
            params = [*model.parameters(), *objective.parameters()]
            given = static if getattr(objective, "needs_static", False) else {}
            if getattr(objective, "needs_relevance", False):
                given = {**given, **relevance}
            runs[loss] = (model, objective, params, torch.optim.AdamW(params, lr=1e-4), given)
        times: dict[str, list[float]] = {loss: [] for loss in args.losses}
        for step in range(args.steps + 3):
            for loss, (model, objective, params, opt, given) in runs.items():
                t0 = time.perf_counter()
                # Epoch 50 of 80: past the warm-up, lambda between 0 and 1 (all terms on).
                out = global_batch_loss(model, objective, text, video, given, 50.0, ProcessGroup())
                opt.zero_grad()
                out.total.backward()
                torch.nn.utils.clip_grad_norm_(params, 2.0)
                opt.step()
                if step >= 3:  # the first steps warm up allocators
                    times[loss].append(time.perf_counter() - t0)
        medians = {loss: 1000 * statistics.median(t) for loss, t in times.items()}
        print(
            json.dumps(
                {
                    "backbone": name,
                    "batch": args.batch,
                    **({"regions": regions} if regions else {}),
                    "median_ms": {k: round(v, 1) for k, v in medians.items()},
                    **(
                        {
                            "over_triplet": {
                                k: round(v / medians["triplet"], 3) for k, v in medians.items()
                            }
                        }
                        if "triplet" in medians
                        else {}
                    ),
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                    "threads": torch.get_num_threads(),
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                }
            )
        )


if __name__ == "__main__":
    main()
