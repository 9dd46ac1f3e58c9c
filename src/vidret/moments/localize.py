"""A trained CDNet run: load it, and localize moment captions with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidret.config.moments import TASK, MomentRunConfig, read_moment_run_config
from vidret.errors import VidretError
from vidret.eval.temporal import MomentPredictions
from vidret.models.cdnet import CDNet, MomentScores
from vidret.moments.data import MomentData
from vidret.moments.spans import best_spans
from vidret.runs.checkpoint import load_checkpoint
from vidret.runs.folder import BEST, read_model_info

EVAL_BATCH = 64


def is_moment_run(run_dir: Path) -> bool:
    """Whether `run_dir` holds a moment-localization model (model.json says task: moments)."""
    try:
        return read_model_info(run_dir).get("task") == TASK
    except VidretError:
        return False


def load_moment_run(run_dir: Path) -> tuple[MomentRunConfig, CDNet, dict[str, Any]]:
    """The run's config, CDNet with its best weights (eval mode), and model.json."""
    info = read_model_info(run_dir)
    if info.get("task") != TASK:
        raise VidretError(f"{run_dir}: not a moment-localization run (train configs/cdnet.yaml)")
    cfg = read_moment_run_config(run_dir)
    model = CDNet(cfg.model, info["video_dim"], info["text_dim"])
    model.load_state_dict(load_checkpoint(run_dir / BEST)["model"])
    model.eval()
    return cfg, model, info


def predict_spans(
    model: CDNet, data: MomentData, indices: np.ndarray, batch_size: int = EVAL_BATCH
) -> np.ndarray:
    """`[len(indices), TOP, 2]` seconds: each moment caption's best spans in its video."""
    out = []
    model.eval()
    with torch.inference_mode():
        for at in range(0, len(indices), batch_size):
            chunk = indices[at : at + batch_size]
            batch, _ = data.batch(chunk)
            scores: MomentScores = model(batch)
            for b, i in enumerate(chunk):
                edges = data.edges(int(data.moments.video[i]))
                out.append(best_spans(scores.start[b], scores.end[b], edges))
    return np.stack(out)


def localize_with_cdnet(run_dir: Path, data_root: Path, split: str = "test") -> MomentPredictions:
    """Each moment caption of `data_root`'s split, localized in its video by the run."""
    cfg, model, info = load_moment_run(run_dir)
    torch.set_num_threads(cfg.train.threads)
    cfg.data.expert = info["expert"]
    data = MomentData(data_root, cfg, progress=False)
    if data.video_dim != info["video_dim"]:
        raise VidretError(
            f"{data_root}: expert '{data.expert}' has {data.video_dim}-d features; the run "
            f"was trained on {info['video_dim']}-d ones"
        )
    indices = data.split(split)
    if not len(indices):
        raise VidretError(f"{data_root}: split '{split}' has no moment captions")
    spans = predict_spans(model, data, indices)
    truth = np.stack([data.moments.start[indices], data.moments.end[indices]], axis=1)
    return MomentPredictions(spans, truth, len(set(data.moments.video[indices].tolist())))
