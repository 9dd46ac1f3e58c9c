"""Names of the files that make up a dataset folder (documented in docs/datasets.md)."""

from __future__ import annotations

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
