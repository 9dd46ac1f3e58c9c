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

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv"}
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})


def expert_files(root: Path) -> dict[str, Path]:
    """Map expert name -> feature file: every `<expert>.npy` but the lengths and times files."""
    return {
        p.name[: -len(".npy")]: p
        for p in sorted(root.glob("*.npy"))
        if not p.name.endswith((LENGTHS_SUFFIX, TIMES_SUFFIX))
    }


def times_file(root: Path, expert: str) -> Path:
    return root / f"{expert}{TIMES_SUFFIX}"


def lengths_file(root: Path, expert: str) -> Path:
    return root / f"{expert}{LENGTHS_SUFFIX}"
