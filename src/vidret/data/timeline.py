"""When each frame of a video is, and the frames of a time window as a batch of videos.

Frame times come from `<expert>.times.npy` where the folder has them (feature releases,
`vidret data moments`), else from the video's `frame_times` (`vidret extract` keeps
them), else frames are taken as evenly spaced over the video's duration.
"""

from __future__ import annotations

import numpy as np
import torch

from vidret.data.dataset import VideoDataset
from vidret.data.moments import video_duration
from vidret.errors import VidretError
from vidret.models.types import VideoBatch

# moment baselines' window scales, seconds (MSR-VTT's clips last 10-30 s)
SCALES = (5.0, 10.0, 15.0, 20.0, 30.0)


def frame_times(dataset: VideoDataset, expert: str, row: int) -> np.ndarray:
    """Seconds of each valid frame of `expert` in video `row`."""
    features = dataset.experts[expert]
    n = int(features.lengths[row])
    if features.times is not None and np.isfinite(features.times[row, :n]).all():
        return np.asarray(features.times[row, :n], np.float64)
    meta = dataset.videos[row]
    listed = meta.get("frame_times")
    if isinstance(listed, list) and len(listed) == n:
        return np.asarray(listed, np.float64)
    duration = video_duration(meta)
    if duration is None:
        raise VidretError(
            f"{dataset.root}: video {meta['video_id']} has neither frame times nor a duration; "
            "its frames cannot be placed in time"
        )
    return (np.arange(n) + 0.5) * duration / max(n, 1)


def window_spans(duration: float, scales: tuple[float, ...] = SCALES) -> np.ndarray:
    """`[windows, 2]` (start, end) seconds covering a video of `duration` seconds."""
    spans = []
    for scale in scales:
        size = min(scale, duration)  # a scale beyond the video: the whole video, once
        step = size / 4
        start = 0.0
        while start < duration - 1e-9:
            spans.append((start, min(start + size, duration)))
            if start + size >= duration:
                break
            start += step
    return np.unique(np.round(np.asarray(spans), 6), axis=0)


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
            regions = expert.regions[row, :n]
            batch.regions[name] = _windowed(regions, inside, most, np.float32)
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
