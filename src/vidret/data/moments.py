"""Moment captions: a sentence and the span of a (long) video it describes.

A dataset folder may hold `moments.jsonl`, one object per line:
`{"video_id": "...", "caption": "...", "start": 12.0, "end": 17.5}` (seconds), with the
times of its features' frames in `<expert>.times.npy` so a model can tell where in the
video each frame lies. `read_moments` checks each line (the video exists, 0 <= start <
end <= the video's duration when known) and names the line of any problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidret.data.jsonl import read_jsonl_objects
from vidret.errors import Problem

MOMENTS_FILE = "moments.jsonl"


@dataclass(frozen=True)
class Moments:
    """Every moment caption of a dataset: row i is `captions[i]` in video row
    `video[i]`, from `start[i]` to `end[i]` seconds."""

    captions: list[str]
    video: np.ndarray  # int64 [moments]
    start: np.ndarray  # float64 [moments]
    end: np.ndarray  # float64 [moments]

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def spans(self) -> np.ndarray:
        return np.stack([self.start, self.end], axis=1)


def video_duration(meta: dict[str, Any]) -> float | None:
    """Seconds: `duration`, else `end - start` (a clip cut from a longer source)."""
    number = (int, float)
    duration = meta.get("duration")
    if isinstance(duration, number) and not isinstance(duration, bool):
        return float(duration)
    start, end = meta.get("start"), meta.get("end")
    if isinstance(start, number) and isinstance(end, number) and end > start:
        return float(end - start)
    return None


def read_moments(
    root: Path, videos: list[dict[str, Any]], problems: list[Problem]
) -> Moments | None:
    """The folder's moment captions (None without `moments.jsonl`); problems are added."""
    path = root / MOMENTS_FILE
    if not path.exists():
        return None
    row_of = {v["video_id"]: i for i, v in enumerate(videos) if isinstance(v.get("video_id"), str)}
    captions, rows, starts, ends = [], [], [], []
    for line, obj in read_jsonl_objects(path, problems):
        vid, text = obj.get("video_id"), obj.get("caption")
        start, end = obj.get("start"), obj.get("end")
        if vid not in row_of:
            problems.append(Problem(MOMENTS_FILE, f"video_id {vid!r} is not in videos.jsonl", line))
            continue
        if not isinstance(text, str) or not text.strip():
            problems.append(Problem(MOMENTS_FILE, "needs a non-empty string 'caption'", line))
            continue
        if not all(_finite_number(x) for x in (start, end)):
            problems.append(
                Problem(MOMENTS_FILE, "needs numbers 'start' and 'end' (seconds)", line)
            )
            continue
        duration = video_duration(videos[row_of[vid]])
        if not 0 <= start < end or (duration is not None and end > duration + 1e-3):
            limit = f" and end <= the video's duration {duration:g}" if duration else ""
            problems.append(
                Problem(
                    MOMENTS_FILE,
                    f"start {start:g}, end {end:g}: need 0 <= start < end{limit}",
                    line,
                )
            )
            continue
        captions.append(text.strip())
        rows.append(row_of[vid])
        starts.append(float(start))
        ends.append(float(end))
    return Moments(
        captions,
        np.asarray(rows, np.int64),
        np.asarray(starts, np.float64),
        np.asarray(ends, np.float64),
    )


def _finite_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
