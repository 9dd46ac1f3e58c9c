"""`vidret data check`: every problem of a dataset folder, and a summary of what is in it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vidret.data.dataset import ExpertFeatures, VideoDataset, read_dataset
from vidret.data.splits import read_named_splits
from vidret.errors import Problem

# Rows scanned per step when looking for NaN/Inf: bounds memory whatever the dataset size.
_SCAN_ROWS = 256
_MAX_ROWS_REPORTED = 20


@dataclass
class CheckReport:
    root: Path
    summary: dict[str, Any]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_dataset(root: Path | str, progress: bool = True) -> CheckReport:
    """Parse the folder, scan every feature value and read the named splits."""
    root = Path(root)
    dataset, problems = read_dataset(root)
    for expert in dataset.experts.values():
        problems.extend(_scan_features(expert, dataset, progress))
    splits = read_named_splits(root, set(dataset.video_ids), problems) if root.is_dir() else {}
    return CheckReport(root, _summarize(dataset, splits), problems)


def _scan_features(expert: ExpertFeatures, dataset: VideoDataset, progress: bool) -> list[Problem]:
    """Report the rows holding NaN or Inf, naming the video and its line in videos.jsonl."""
    file = f"{expert.name}.npy"
    bad_rows: list[tuple[int, int]] = []
    n = expert.features.shape[0]
    steps = range(0, n, _SCAN_ROWS)
    for start in tqdm(
        steps, desc=f"scanning {file}", unit="chunk", disable=not progress, leave=False
    ):
        chunk = np.asarray(expert.features[start : start + _SCAN_ROWS])
        nonfinite = (~np.isfinite(chunk)).sum(axis=(1, 2))
        for offset in np.flatnonzero(nonfinite):
            bad_rows.append((start + int(offset), int(nonfinite[offset])))
    problems = []
    for row, count in bad_rows[:_MAX_ROWS_REPORTED]:
        vid = dataset.videos[row]["video_id"]
        line = dataset.video_lines[row]
        problems.append(
            Problem(
                file,
                f"row {row} (video '{vid}', videos.jsonl line {line}): "
                f"{count} NaN/Inf values; re-extract this video's features",
            )
        )
    if len(bad_rows) > _MAX_ROWS_REPORTED:
        problems.append(
            Problem(file, f"{len(bad_rows) - _MAX_ROWS_REPORTED} more rows hold NaN/Inf values")
        )
    return problems


def _summarize(dataset: VideoDataset, splits: dict[str, list[str]]) -> dict[str, Any]:
    per_video = dataset.captions_per_video()
    summary: dict[str, Any] = {
        "root": str(dataset.root),
        "name": dataset.metadata.get("name"),
        "generated": bool(dataset.metadata.get("generated", False)),
        "videos": dataset.num_videos,
        "captions": len(dataset.captions),
        "captions_per_video": (
            {
                "min": int(per_video.min()),
                "mean": float(per_video.mean()),
                "max": int(per_video.max()),
            }
            if len(per_video)
            else None
        ),
        "experts": {
            name: {
                "shape": list(e.features.shape),
                "dtype": str(e.features.dtype),
                "variable_length": bool((e.lengths != e.frames).any()),
                "missing_videos": int((e.lengths == 0).sum()),
            }
            for name, e in dataset.experts.items()
        },
        "splits": {name: len(ids) for name, ids in splits.items()},
    }
    categories = Counter(v["category"] for v in dataset.videos if "category" in v)
    if categories:
        summary["categories"] = dict(categories.most_common())
    return summary
