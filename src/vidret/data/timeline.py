"""When each frame of a video is, and the windows that cover a video (the frames of a
window as a batch: `vidret.batches.windows`).

Frame times come from `<expert>.times.npy` where the folder has them (feature releases,
`vidret data moments`), else from the video's `frame_times` (`vidret extract` keeps
them), else frames are taken as evenly spaced over the video's duration.
"""

from __future__ import annotations

import numpy as np

from vidret.data.dataset import VideoDataset
from vidret.data.moments import video_duration
from vidret.errors import VidretError

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
