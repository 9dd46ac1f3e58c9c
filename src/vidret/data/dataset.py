"""The dataset folder loader: videos, captions and memory-mapped expert features.

A folder holds `videos.jsonl`, `captions.jsonl` and one `<expert>.npy` per visual expert
(see docs/datasets.md). Feature arrays are memory-mapped, never read whole: a 10k-video
dataset is not copied into memory, and indexing a batch reads only its rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidret.data.file_refs import reference_problems
from vidret.data.format import (
    CAPTION_FEATURES_DIR,
    CAPTIONS_FILE,
    LENGTHS_SUFFIX,
    METADATA_FILE,
    REGION_MASK_SUFFIX,
    REGIONS_SUFFIX,
    TIMES_SUFFIX,
    VIDEOS_FILE,
    expert_files,
    lengths_file,
    region_mask_file,
    regions_file,
    times_file,
    video_id_problem,
)
from vidret.data.jsonl import read_jsonl_objects
from vidret.data.moments import Moments, read_moments
from vidret.errors import DatasetError, Problem


@dataclass(frozen=True)
class ExpertFeatures:
    """One visual expert: `features[i, :lengths[i]]` are the valid frames of video row i.

    A length of 0 marks the expert as missing for that video (its row is padding).
    """

    name: str
    features: np.ndarray  # [num_videos, frames, dim], usually a read-only memmap
    lengths: np.ndarray  # int64 [num_videos]
    times: np.ndarray | None = None  # [num_videos, frames] seconds of each frame, NaN unknown
    # [num_videos, frames, regions, region_dim]: regions of each frame (e.g. grid cells of
    # the frame's feature map), and [num_videos, frames, regions] bool marking real ones
    regions: np.ndarray | None = None
    region_mask: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return int(self.features.shape[1])

    @property
    def dim(self) -> int:
        return int(self.features.shape[2])

    @property
    def num_regions(self) -> int:
        """Regions per frame; 0 when the expert has no region features."""
        return 0 if self.regions is None else int(self.regions.shape[2])

    @property
    def region_dim(self) -> int:
        return 0 if self.regions is None else int(self.regions.shape[3])


@dataclass
class VideoDataset:
    """A parsed dataset folder. Row i of every expert array belongs to `videos[i]`."""

    root: Path
    videos: list[dict[str, Any]]
    captions: list[str]
    caption_video: np.ndarray  # int64 [num_captions]: the video row of each caption
    caption_ids: list[Any]  # `sen_id` of each caption, or None
    experts: dict[str, ExpertFeatures]
    metadata: dict[str, Any] = field(default_factory=dict)
    video_lines: list[int] = field(default_factory=list)  # line of each video in videos.jsonl
    # name -> token features of every caption ([captions, tokens, dim], lengths in .lengths)
    caption_features: dict[str, ExpertFeatures] = field(default_factory=dict)
    moments: Moments | None = None  # moment captions with their spans (moments.jsonl)

    @classmethod
    def open(cls, root: Path | str) -> VideoDataset:
        """Load a dataset folder, raising `DatasetError` listing every structural problem."""
        dataset, problems = read_dataset(Path(root))
        if problems:
            raise DatasetError(Path(root), problems)
        return dataset

    @property
    def video_ids(self) -> list[str]:
        return [v["video_id"] for v in self.videos]

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    def video_index(self) -> dict[str, int]:
        return {v["video_id"]: i for i, v in enumerate(self.videos)}

    def captions_per_video(self) -> np.ndarray:
        return np.bincount(self.caption_video, minlength=self.num_videos)


def read_dataset(root: Path) -> tuple[VideoDataset, list[Problem]]:
    """Parse a dataset folder as far as possible, collecting problems instead of stopping.

    Feature values are not scanned here (that reads every byte); `vidret data check`
    does it. Structure, shapes, dtypes and cross-references are all checked.
    """
    problems: list[Problem] = []
    if not root.is_dir():
        problems.append(Problem(str(root), "not a folder; give the path of a dataset folder"))
        return VideoDataset(root, [], [], np.zeros(0, np.int64), [], {}), problems

    metadata = _read_metadata(root, problems)
    videos = _read_videos(root, problems)
    if not videos and (root / VIDEOS_FILE).exists():
        # Said first: every caption and feature row then fails for this one reason.
        problems.insert(
            0, Problem(VIDEOS_FILE, "holds no videos: write one JSON object per video line")
        )
    problems.extend(reference_problems(root, metadata, videos))
    index = {v["video_id"]: i for i, v in enumerate(videos)}
    # A search collection (`vidret extract` without captions) says "captioned": false.
    captioned = metadata.get("captioned", True) is not False
    captions, caption_video, caption_ids = _read_captions(root, index, problems, captioned)

    counts = np.bincount(np.asarray(caption_video, np.int64), minlength=len(videos))
    for row in np.flatnonzero(counts == 0) if captioned and (root / CAPTIONS_FILE).exists() else []:
        video = videos[row]
        problems.append(
            Problem(VIDEOS_FILE, f"video '{video['video_id']}' has no captions", video["_line"])
        )

    experts = _read_experts(root, len(videos), metadata, problems)
    caption_features = _read_caption_features(root, len(captions), problems)
    moments = read_moments(root, videos, problems)
    video_lines = [v.pop("_line") for v in videos]
    dataset = VideoDataset(
        root=root,
        videos=videos,
        captions=captions,
        caption_video=np.asarray(caption_video, np.int64),
        caption_ids=caption_ids,
        experts=experts,
        metadata=metadata,
        video_lines=video_lines,
        caption_features=caption_features,
        moments=moments,
    )
    return dataset, problems


def _read_caption_features(
    root: Path, num_captions: int, problems: list[Problem]
) -> dict[str, ExpertFeatures]:
    """`caption_features/<name>.npy`: one row per caption, in captions.jsonl order."""
    folder = root / CAPTION_FEATURES_DIR
    out: dict[str, ExpertFeatures] = {}
    for name, path in expert_files(folder).items() if folder.is_dir() else []:
        feats = _load_array(path, problems)
        rel = f"{CAPTION_FEATURES_DIR}/{path.name}"
        if feats is None:
            continue
        if feats.ndim != 3 or feats.shape[0] != num_captions:
            problems.append(
                Problem(
                    rel,
                    f"expected [{num_captions} captions, tokens, dim] (one row per line of "
                    f"{CAPTIONS_FILE}), got {list(feats.shape)}",
                )
            )
            continue
        lengths = _read_lengths(folder, name, feats.shape, problems)
        if lengths is not None:
            out[name] = ExpertFeatures(name, feats, lengths)
    return out


def _read_metadata(root: Path, problems: list[Problem]) -> dict[str, Any]:
    path = root / METADATA_FILE
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        problems.append(Problem(METADATA_FILE, f"malformed JSON ({e.msg})", e.lineno))
        return {}
    if not isinstance(meta, dict):
        problems.append(Problem(METADATA_FILE, "expected a JSON object"))
        return {}
    return meta


def _read_videos(root: Path, problems: list[Problem]) -> list[dict[str, Any]]:
    path = root / VIDEOS_FILE
    if not path.exists():
        problems.append(
            Problem(VIDEOS_FILE, "missing: write one JSON object per video with a 'video_id'")
        )
        return []
    videos: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    for line_no, obj in read_jsonl_objects(path, problems):
        vid = obj.get("video_id")
        bad_id = video_id_problem(vid)
        if bad_id:
            problems.append(Problem(VIDEOS_FILE, bad_id, line_no))
            continue
        if vid in first_line:
            problems.append(
                Problem(
                    VIDEOS_FILE,
                    f"duplicate video_id '{vid}' (first at line {first_line[vid]})",
                    line_no,
                )
            )
            continue
        first_line[vid] = line_no
        videos.append({**obj, "_line": line_no})
    return videos


def _read_captions(
    root: Path, index: dict[str, int], problems: list[Problem], required: bool = True
) -> tuple[list[str], list[int], list[Any]]:
    path = root / CAPTIONS_FILE
    captions: list[str] = []
    caption_video: list[int] = []
    caption_ids: list[Any] = []
    if not path.exists():
        if required:
            problems.append(
                Problem(
                    CAPTIONS_FILE,
                    "missing: write one JSON object per caption with 'video_id' and 'caption'",
                )
            )
        return captions, caption_video, caption_ids
    unknown_lines: list[int] = []
    for line_no, obj in read_jsonl_objects(path, problems):
        vid = obj.get("video_id")
        text = obj.get("caption")
        if not isinstance(vid, str):
            problems.append(Problem(CAPTIONS_FILE, "needs a string 'video_id'", line_no))
            continue
        if not isinstance(text, str):
            problems.append(Problem(CAPTIONS_FILE, "needs a string 'caption'", line_no))
            continue
        if not text.strip():
            problems.append(Problem(CAPTIONS_FILE, f"empty caption for video '{vid}'", line_no))
            continue
        row = index.get(vid)
        if row is None and not index:
            unknown_lines.append(line_no)
            continue
        if row is None:
            problems.append(
                Problem(
                    CAPTIONS_FILE,
                    f"caption of unknown video '{vid}' (not in {VIDEOS_FILE})",
                    line_no,
                )
            )
            continue
        captions.append(text.strip())
        caption_video.append(row)
        caption_ids.append(obj.get("sen_id"))
    if unknown_lines:
        problems.append(
            Problem(
                CAPTIONS_FILE,
                f"all {len(unknown_lines)} captions name videos, but {VIDEOS_FILE} has none",
                unknown_lines[0],
            )
        )
    return captions, caption_video, caption_ids


def _read_experts(
    root: Path, num_videos: int, metadata: dict[str, Any], problems: list[Problem]
) -> dict[str, ExpertFeatures]:
    files = expert_files(root)
    if not files:
        problems.append(
            Problem(
                str(root),
                "no expert feature files: add at least one <expert>.npy of "
                "shape [num_videos, frames, dim]",
            )
        )
    companions = (
        (LENGTHS_SUFFIX, "lengths"),
        (TIMES_SUFFIX, "times"),
        (REGIONS_SUFFIX, "regions"),
        (REGION_MASK_SUFFIX, "region mask"),
    )
    for suffix, what in companions:
        for orphan in sorted(root.glob(f"*{suffix}")):
            if orphan.name[: -len(suffix)] not in files:
                problems.append(Problem(orphan.name, f"{what} file without its expert .npy"))

    declared = metadata.get("experts", {}) if isinstance(metadata.get("experts"), dict) else {}
    experts: dict[str, ExpertFeatures] = {}
    for name, path in files.items():
        feats = _load_array(path, problems)
        if feats is None:
            continue
        if feats.ndim != 3 or 0 in feats.shape:
            problems.append(
                Problem(
                    path.name, f"expected shape [num_videos, frames, dim], got {list(feats.shape)}"
                )
            )
            continue
        if not np.issubdtype(feats.dtype, np.floating):
            problems.append(Problem(path.name, f"expected a float array, got {feats.dtype}"))
            continue
        if feats.shape[0] != num_videos and (root / VIDEOS_FILE).exists():
            problems.append(
                Problem(
                    path.name,
                    f"has {feats.shape[0]} rows but {VIDEOS_FILE} has "
                    f"{num_videos} videos (row i must belong to video line i)",
                )
            )
            continue
        want_dim = (
            declared.get(name, {}).get("dim") if isinstance(declared.get(name), dict) else None
        )
        if want_dim is not None and want_dim != feats.shape[2]:
            problems.append(
                Problem(
                    path.name,
                    f"feature dimension {feats.shape[2]} differs from "
                    f"{METADATA_FILE}'s experts.{name}.dim = {want_dim}",
                )
            )
            continue
        lengths = _read_lengths(root, name, feats.shape, problems)
        times = _read_times(root, name, feats.shape, problems)
        regions, region_mask = _read_regions(root, name, feats.shape, problems)
        if lengths is not None:
            experts[name] = ExpertFeatures(name, feats, lengths, times, regions, region_mask)
    return experts


def _read_regions(
    root: Path, name: str, shape: tuple[int, ...], problems: list[Problem]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """`<name>.regions.npy` [videos, frames, regions, dim] and its optional mask
    `<name>.region_mask.npy` [videos, frames, regions] bool (absent: every region of a
    valid frame is real)."""
    path = regions_file(root, name)
    if not path.exists():
        if region_mask_file(root, name).exists():
            problems.append(
                Problem(region_mask_file(root, name).name, f"region mask without {path.name}")
            )
        return None, None
    regions = _load_array(path, problems)
    if regions is None:
        return None, None
    if regions.ndim != 4 or tuple(regions.shape[:2]) != tuple(shape[:2]) or 0 in regions.shape:
        problems.append(
            Problem(
                path.name,
                f"expected shape [{shape[0]} videos, {shape[1]} frames, regions, dim] (the "
                f"frames of {name}.npy, each split into regions), got {list(regions.shape)}",
            )
        )
        return None, None
    if not np.issubdtype(regions.dtype, np.floating):
        problems.append(Problem(path.name, f"expected a float array, got {regions.dtype}"))
        return None, None
    mask_path = region_mask_file(root, name)
    if not mask_path.exists():
        return regions, None
    mask = _load_array(mask_path, problems)
    if mask is None:
        return None, None
    if mask.shape != tuple(regions.shape[:3]) or mask.dtype != np.bool_:
        problems.append(
            Problem(
                mask_path.name,
                f"expected a bool array of shape {list(regions.shape[:3])} (True for a real "
                f"region of {path.name}), got {mask.dtype} {list(mask.shape)}",
            )
        )
        return None, None
    return regions, mask


def _load_array(path: Path, problems: list[Problem]) -> np.ndarray | None:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        problems.append(Problem(path.name, f"cannot read as a .npy array ({e})"))
        return None


def _read_times(
    root: Path, name: str, shape: tuple[int, ...], problems: list[Problem]
) -> np.ndarray | None:
    path = times_file(root, name)
    if not path.exists():
        return None
    times = _load_array(path, problems)
    if times is None:
        return None
    if times.shape != tuple(shape[:2]) or not np.issubdtype(times.dtype, np.floating):
        problems.append(
            Problem(
                path.name,
                f"expected a float array of shape [{shape[0]}, {shape[1]}] (seconds of each "
                f"frame of {name}.npy), got {times.dtype} {list(times.shape)}",
            )
        )
        return None
    return times


def _read_lengths(
    root: Path, name: str, shape: tuple[int, ...], problems: list[Problem]
) -> np.ndarray | None:
    path = lengths_file(root, name)
    if not path.exists():
        return np.full(shape[0], shape[1], np.int64)
    lengths = _load_array(path, problems)
    if lengths is None:
        return None
    if lengths.shape != (shape[0],) or not np.issubdtype(lengths.dtype, np.integer):
        problems.append(
            Problem(
                path.name,
                f"expected an integer array of shape [{shape[0]}], got "
                f"{lengths.dtype} {list(lengths.shape)}",
            )
        )
        return None
    lengths = np.asarray(lengths, np.int64)
    bad = np.flatnonzero((lengths < 0) | (lengths > shape[1]))
    for row in bad[:20]:
        problems.append(
            Problem(
                path.name,
                f"row {row}: length {lengths[row]} outside 0..{shape[1]} "
                f"(0 marks a missing expert)",
            )
        )
    if len(bad) > 20:
        problems.append(Problem(path.name, f"{len(bad) - 20} more rows with lengths out of range"))
    return None if len(bad) else lengths
