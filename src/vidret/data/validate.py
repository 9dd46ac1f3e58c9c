"""`vidret data check`: every problem of a dataset folder, and a summary of what is in it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidret.data.dataset import ExpertFeatures, VideoDataset, read_dataset
from vidret.data.format import REGIONS_SUFFIX
from vidret.data.splits import read_split_choices
from vidret.errors import DatasetError, Problem
from vidret.progress import progress_bar

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
        problems.extend(nonfinite_problems(expert, dataset, progress))
        if dataset.num_videos and not expert.lengths.any():
            problems.append(
                Problem(
                    f"{expert.name}.lengths.npy",
                    "every video's length is 0: the expert has no frame anywhere "
                    "(re-extract, or remove the expert)",
                )
            )
    # Without videos every split line would be "unknown video": the cause is said already.
    readable = root.is_dir() and dataset.videos
    splits = read_split_choices(root, set(dataset.video_ids), problems) if readable else {}
    return CheckReport(root, _summarize(dataset, _split_sizes(dataset, splits)), problems)


def _split_sizes(
    dataset: VideoDataset, splits: dict[str, dict[str, int | None]]
) -> dict[str, dict[str, int]]:
    """Each named split's videos and the captions it scores (1k-A: one per video)."""
    per_video = dataset.captions_per_video()
    index = dataset.video_index()
    sizes = {}
    for name, chosen in splits.items():
        captions = sum(
            int(per_video[index[v]]) if k is None else int(k < per_video[index[v]])
            for v, k in chosen.items()
        )
        sizes[name] = {"videos": len(chosen), "captions": captions}
    return sizes


def require_finite(dataset: VideoDataset, experts: list[str]) -> None:
    """Raise `DatasetError` if these experts hold NaN/Inf: checked before any work (train,
    index), since such features would fail far from their cause."""
    bad = [p for e in experts for p in nonfinite_problems(dataset.experts[e], dataset)]
    if bad:
        raise DatasetError(dataset.root, bad)


def nonfinite_problems(
    expert: ExpertFeatures, dataset: VideoDataset, progress: bool = False
) -> list[Problem]:
    """Report the rows holding NaN or Inf (frame and region features), naming the video
    and its line in videos.jsonl.

    Fast enough to run before every training: a row's float64 sum is finite exactly when
    its values are (float16/32 features cannot overflow it), so only rows whose sum is
    not finite are counted value by value.
    """
    arrays = [(f"{expert.name}.npy", expert.features)]
    if expert.regions is not None:
        arrays.append((f"{expert.name}{REGIONS_SUFFIX}", expert.regions))
    problems = []
    for file, array in arrays:
        problems += _nonfinite_rows(file, array, dataset, progress)
    return problems


def _nonfinite_rows(
    file: str, array: np.ndarray, dataset: VideoDataset, progress: bool
) -> list[Problem]:
    bad_rows: list[tuple[int, int]] = []
    n = array.shape[0]
    steps = range(0, n, _SCAN_ROWS)
    for start in progress_bar(
        steps, enabled=progress, desc=f"scanning {file}", unit="chunk", leave=False
    ):
        chunk = np.asarray(array[start : start + _SCAN_ROWS])
        sums = chunk.reshape(len(chunk), -1).sum(axis=1, dtype=np.float64)
        for offset in np.flatnonzero(~np.isfinite(sums)):
            count = int((~np.isfinite(chunk[offset])).sum())
            bad_rows.append((start + int(offset), count))
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


def _summarize(dataset: VideoDataset, splits: dict[str, dict[str, int]]) -> dict[str, Any]:
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
                **({"regions": list(e.regions.shape)} if e.regions is not None else {}),
            }
            for name, e in dataset.experts.items()
        },
        "splits": splits,
    }
    categories = Counter(v["category"] for v in dataset.videos if "category" in v)
    if categories:
        summary["categories"] = dict(categories.most_common())
    if dataset.moments is not None:
        lengths = dataset.moments.end - dataset.moments.start
        summary["moments"] = {
            "captions": len(dataset.moments),
            "mean_seconds": round(float(lengths.mean()), 2) if len(lengths) else None,
        }
    return summary
