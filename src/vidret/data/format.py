"""Names of the files that make up a dataset folder (documented in docs/datasets.md)."""

from __future__ import annotations

import re
from pathlib import Path

VIDEOS_FILE = "videos.jsonl"
CAPTIONS_FILE = "captions.jsonl"
METADATA_FILE = "dataset.json"
SPLITS_DIR = "splits"
# optional caption-side features: <name>.npy [num_captions, tokens, dim] (+ .lengths.npy),
# e.g. a feature release's word vectors of each caption (text.source=<name> uses them)
CAPTION_FEATURES_DIR = "caption_features"
CACHE_DIR = "cache"
LENGTHS_SUFFIX = ".lengths.npy"
TIMES_SUFFIX = ".times.npy"  # optional: [num_videos, frames] seconds of each frame, NaN unknown
# optional region features of a frame expert: [num_videos, frames, regions, dim], sharing
# its frames (lengths, times); the mask, [num_videos, frames, regions] bool, marks real regions
REGIONS_SUFFIX = ".regions.npy"
REGION_MASK_SUFFIX = ".region_mask.npy"
_COMPANION_SUFFIXES = (LENGTHS_SUFFIX, TIMES_SUFFIX, REGIONS_SUFFIX, REGION_MASK_SUFFIX)

# A video id names the video in file names (thumbnails/<id>.jpg) and in the API's URLs
# (/videos/<id>), so it is kept to characters that mean the same in both: ASCII letters,
# digits, `_`, `-` and `.`, starting with a letter, digit or `_` (so never `.` or `..`),
# at most 200 long. MSR-VTT (`video7`), ActivityNet (`v_-Hx1`) and LSMDC
# (`0001_American_Beauty_00.00.51.926-00.00.54.129`) ids all fit.
VIDEO_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")


def video_id_problem(value: object) -> str | None:
    """Why `value` is not a valid video id, or None if it is one."""
    if value is None:
        return "needs a non-empty string 'video_id'"
    if not isinstance(value, str) or not value:
        return f"video_id {value!r}: needs a non-empty string 'video_id'"
    if not VIDEO_ID.fullmatch(value):
        return (
            f"video_id {value!r} has characters outside the id alphabet (letters, digits, "
            "'_', '-', '.'; not starting with '.'; at most 200; see docs/datasets.md)"
        )
    return None


VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv"}
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})


def expert_files(root: Path) -> dict[str, Path]:
    """Map expert name -> feature file: every `<expert>.npy` but its companion files
    (lengths, times, regions, region mask)."""
    return {
        p.name[: -len(".npy")]: p
        for p in sorted(root.glob("*.npy"))
        if not p.name.endswith(_COMPANION_SUFFIXES)
    }


def times_file(root: Path, expert: str) -> Path:
    return root / f"{expert}{TIMES_SUFFIX}"


def lengths_file(root: Path, expert: str) -> Path:
    return root / f"{expert}{LENGTHS_SUFFIX}"


def regions_file(root: Path, expert: str) -> Path:
    return root / f"{expert}{REGIONS_SUFFIX}"


def region_mask_file(root: Path, expert: str) -> Path:
    return root / f"{expert}{REGION_MASK_SUFFIX}"
