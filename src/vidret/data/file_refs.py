"""Files and links a dataset's metadata points at, confined to where they may be.

`videos.jsonl` may name a video file (`path`), a thumbnail (`thumbnail`) and a source
page (`url`), and `vidret serve` hands these to any browser that asks. Metadata is input
(a downloaded dataset, a hand-edited file), so each reference is checked, at
`vidret data check`, at `vidret index` and again by the server on every request:

- `path`: once resolved (symlinks followed), inside the dataset's video folder
  (`dataset.json`'s `video_dir`, else the dataset folder itself) and a video file by
  its extension; a relative path is taken from the video folder.
- `thumbnail`: a relative path that resolves inside the dataset folder, to an image.
- `url`: an `http://` or `https://` address (never `javascript:`, `file:` or `data:`).

The extension rule means that even a video folder set to `/` exposes no `/etc/passwd`.
A reference that cannot be resolved (a symlink loop) is a problem like any other, never a
crash. The server then opens what passed without following links
(`vidret.search.served_file`), so a file swapped for a link after the check is not served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidret.data.format import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, VIDEOS_FILE
from vidret.errors import Problem

WEB_SCHEMES = ("http://", "https://")


class UnsafeReferenceError(ValueError):
    """A file reference that points outside its folder or at the wrong kind of file."""


def video_folder(root: Path, metadata: dict[str, Any]) -> Path:
    """Where a dataset's video files may be: `video_dir` of dataset.json, else `root`."""
    declared = metadata.get("video_dir")
    return (Path(declared) if isinstance(declared, str) and declared else root).resolve()


def confined_file(value: Any, base: Path, suffixes: frozenset[str], absolute_ok: bool) -> Path:
    """`value` resolved against `base`; raises `UnsafeReferenceError` saying what is wrong."""
    if not isinstance(value, str) or not value.strip():
        raise UnsafeReferenceError("must be a non-empty string")
    if "\x00" in value:
        raise UnsafeReferenceError("contains a NUL character")
    given = Path(value)
    if given.is_absolute() and not absolute_ok:
        raise UnsafeReferenceError(f"{value!r} must be relative to the dataset folder")
    try:  # follows symlinks: a link out of the folder fails
        resolved = (base / given).resolve()
        base = base.resolve()
    except (RuntimeError, OSError) as e:  # RuntimeError: a symlink loop (Python < 3.13)
        raise UnsafeReferenceError(f"{value!r} cannot be resolved: {e}") from None
    if not resolved.is_relative_to(base):
        raise UnsafeReferenceError(f"{value!r} resolves to {resolved}, outside {base}")
    if resolved.suffix.lower() not in suffixes:
        kinds = ", ".join(sorted(suffixes))
        raise UnsafeReferenceError(f"{value!r} is not one of the allowed file types ({kinds})")
    return resolved


def video_file(value: Any, videos_root: Path) -> Path:
    return confined_file(value, videos_root, VIDEO_EXTENSIONS, absolute_ok=True)


def thumbnail_file(value: Any, dataset_root: Path) -> Path:
    return confined_file(value, dataset_root, IMAGE_EXTENSIONS, absolute_ok=False)


def safe_url(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(WEB_SCHEMES)


def reference_problems(
    root: Path, metadata: dict[str, Any], videos: list[dict[str, Any]]
) -> list[Problem]:
    """One problem per bad `path`, `thumbnail` or `url` (videos carry their `_line`)."""
    problems: list[Problem] = []
    videos_root = video_folder(root, metadata)
    for video in videos:
        line = video.get("_line")
        checks = (("path", video_file, videos_root), ("thumbnail", thumbnail_file, root))
        for key, check, base in checks:
            if key in video:
                try:
                    check(video[key], base)
                except UnsafeReferenceError as e:
                    problems.append(Problem(VIDEOS_FILE, f"'{key}' {e}", line))
        if "url" in video and not safe_url(video["url"]):
            problems.append(
                Problem(VIDEOS_FILE, f"'url' {video['url']!r}: only http(s) addresses", line)
            )
    return problems
