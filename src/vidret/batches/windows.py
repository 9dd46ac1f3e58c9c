"""The frames of time windows of one video as a batch of videos (each window one video,
its frames' times shifted to start at 0): what sliding-window localizers and segment
indexes embed."""

from __future__ import annotations

import numpy as np
import torch

from vidret.data.dataset import VideoDataset
from vidret.data.timeline import frame_times
from vidret.models.types import VideoBatch


def window_batch(
    dataset: VideoDataset,
    experts: list[str],
    row: int,
    windows: np.ndarray,
    regions: list[str] | tuple[str, ...] = (),
) -> VideoBatch:
    """The frames of each window, per expert, padded: a batch of `len(windows)` videos
    (with the frames' region features for the experts in `regions`)."""
    batch = VideoBatch({}, {})
    for name in experts:
        expert = dataset.experts[name]
        n = int(expert.lengths[row])
        times = frame_times(dataset, name, row)
        inside = [(times >= s) & (times < e) for s, e in windows]
        most = max(1, max(int(m.sum()) for m in inside))
        batch.features[name] = _windowed(expert.features[row, :n], inside, most, np.float32)
        batch.lengths[name] = torch.tensor([int(m.sum()) for m in inside], dtype=torch.int64)
        when = np.zeros((len(windows), most), np.float32)
        for w, m in enumerate(inside):
            when[w, : int(m.sum())] = times[m] - windows[w][0]  # as a clip starting at 0
        batch.times[name] = torch.from_numpy(when)
        if name in regions and expert.regions is not None:
            batch.regions[name] = _windowed(expert.regions[row, :n], inside, most, np.float32)
            if expert.region_mask is not None:
                mask = expert.region_mask[row, :n]
                batch.region_mask[name] = _windowed(mask, inside, most, np.bool_)
    return batch


def _windowed(frames: np.ndarray, inside: list[np.ndarray], most: int, dtype: type) -> torch.Tensor:
    """[windows, most, ...]: each window's frames (`inside[w]` picks them), zero-padded."""
    frames = np.asarray(frames, dtype)
    out = np.zeros((len(inside), most, *frames.shape[1:]), dtype)
    for w, m in enumerate(inside):
        out[w, : int(m.sum())] = frames[m]
    return torch.from_numpy(out)
