"""Training CDNet on a moment dataset: validated each epoch (moment metrics on the
validation split), the best epoch kept, scored once on the test split, resumable.

The run folder has the retrieval runs' layout (`vidret.runs.folder`): config.yaml,
model.json (with `task: moments`), checkpoints/last.pt and best.pt written atomically,
metrics.jsonl, test_metrics.json. Each epoch's order of examples comes from
(seed, epoch), so a resumed run trains on exactly what an uninterrupted one would.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidret.config.moments import TASK, MomentRunConfig
from vidret.errors import VidretError
from vidret.eval.temporal import moment_metrics
from vidret.io import write_json_atomic
from vidret.locking import folder_lock, remove_stale_temporaries
from vidret.losses.moment import moment_loss
from vidret.models.cdnet import CDNet
from vidret.moments.data import MomentData
from vidret.moments.localize import predict_spans
from vidret.progress import progress_bar
from vidret.runs import folder as run_files
from vidret.runs.checkpoint import (
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
    seed_everything,
)
from vidret.runs.logger import RunLogger, say_early_stop, say_epoch
from vidret.version import code_version


def train_moments(
    cfg: MomentRunConfig,
    run_dir: Path,
    data_root: Path,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    with folder_lock(run_dir):
        remove_stale_temporaries(run_dir, inside=("checkpoints",))
        return _train(cfg, run_dir, data_root, resume, progress)


def _train(
    cfg: MomentRunConfig, run_dir: Path, data_root: Path, resume: bool, progress: bool
) -> dict[str, Any]:
    torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)
    data = MomentData(data_root, cfg, progress=progress)
    parts = {part: data.split(part) for part in ("train", "val", "test")}
    if not len(parts["train"]):
        raise VidretError(f"{data_root}: the training split has no moment captions")
    model = CDNet(cfg.model, data.video_dim, data.text_dim)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
    )
    state: dict[str, Any] = {"epoch": 0, "best": -np.inf, "best_epoch": 0, "stale": 0}
    if resume:
        saved = load_checkpoint(run_dir / run_files.LAST)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        restore_rng_state(saved["rng"])
        state = saved["progress"]
    else:
        run_files.write_run_info(
            run_dir,
            cfg,  # type: ignore[arg-type]  # any config with to_yaml
            {
                "task": TASK,
                "model": cfg.model_name,
                "data": str(data_root.resolve()),
                "expert": data.expert,
                "video_dim": data.video_dim,
                "text_dim": data.text_dim,
                "text_model": str(data.text_model),
                "moments": {part: len(ix) for part, ix in parts.items()},
                "vidret_version": code_version(),
            },
        )
    logger = RunLogger(run_dir, resume_after_epoch=state["epoch"] if resume else None)
    try:
        while state["epoch"] < cfg.train.epochs and not state.get("stopped"):
            record = _epoch(cfg, model, optimizer, data, parts, state["epoch"], progress)
            state["epoch"] += 1
            record["epoch"] = state["epoch"]
            score = record["val"].get(cfg.train.val_metric) if record.get("val") else None
            if record.get("val") and score is None:
                raise VidretError(
                    f"train.val_metric={cfg.train.val_metric!r}: no such moment metric; "
                    f"use one of {', '.join(record['val'])}"
                )
            if score is None or score > state["best"]:
                state.update(best=-np.inf if score is None else score, best_epoch=state["epoch"])
                state["stale"] = 0
                save_checkpoint(run_dir / run_files.BEST, {"model": model.state_dict()})
            else:
                state["stale"] += 1
            if cfg.train.patience is not None and state["stale"] >= cfg.train.patience:
                state["stopped"] = True
            logger.log_epoch(record)
            save_checkpoint(
                run_dir / run_files.LAST,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rng": rng_state(),
                    "progress": dict(state),
                },
            )
            _say_epoch(cfg, record, state)
    finally:
        logger.close()
    result: dict[str, Any] = {"best_epoch": state["best_epoch"], "epochs_run": state["epoch"]}
    model.load_state_dict(load_checkpoint(run_dir / run_files.BEST)["model"])
    for part in ("val", "test"):
        if len(parts[part]):
            result[part] = evaluate_moments(model, data, parts[part])
    if "test" in result:  # as a retrieval run's: the best epoch, its val and test figures
        write_json_atomic(run_dir / run_files.TEST_METRICS, result)
    return result


def _epoch(
    cfg: MomentRunConfig,
    model: CDNet,
    optimizer: torch.optim.Optimizer,
    data: MomentData,
    parts: dict[str, np.ndarray],
    epoch: int,
    progress: bool,
) -> dict[str, Any]:
    began = time.perf_counter()
    model.train()
    order = np.random.default_rng([cfg.train.seed, epoch]).permutation(parts["train"])
    size = cfg.train.batch_size
    totals: dict[str, float] = {}
    steps = 0
    batches = range(0, len(order), size)
    desc = f"epoch {epoch + 1}/{cfg.train.epochs}"
    for at in progress_bar(batches, enabled=progress, desc=desc, unit="batch"):
        batch, targets = data.batch(order[at : at + size])
        loss, terms = moment_loss(model(batch), targets, batch.frame_mask, cfg.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        for key, value in {"loss": loss.item(), **terms}.items():
            totals[key] = totals.get(key, 0.0) + value
        steps += 1
    record: dict[str, Any] = {"train": {k: v / steps for k, v in totals.items()}}
    record["train_seconds"] = round(time.perf_counter() - began, 2)
    if len(parts["val"]):
        record["val"] = evaluate_moments(model, data, parts["val"])
    record["epoch_time_s"] = round(time.perf_counter() - began, 2)
    return record


def _say_epoch(cfg: MomentRunConfig, record: dict[str, Any], state: dict[str, Any]) -> None:
    """As retrieval training says an epoch, with the other moment metrics beside."""
    val = record.get("val", {})
    metric = cfg.train.val_metric
    validation, extra = None, ""
    if metric in val:
        validation = (metric, val[metric], state["best"], state["best_epoch"])
        extra = "".join(f"  {k} {val[k]:.2f}" for k in ("R1@0.7", "mIoU") if k != metric)
    say_epoch(record["epoch"], cfg.train.epochs, record["train"]["loss"],
              record["epoch_time_s"], validation, extra)  # fmt: skip
    if state.get("stopped"):
        say_early_stop(metric, state["stale"], cfg.train.patience, state["best_epoch"])


def evaluate_moments(model: CDNet, data: MomentData, indices: np.ndarray) -> dict[str, float]:
    spans = predict_spans(model, data, indices)
    truth = np.stack([data.moments.start[indices], data.moments.end[indices]], axis=1)
    return moment_metrics(spans, truth)
