"""`vidret extract`: a folder of video files -> a dataset folder with one frame-feature expert.

Each video is decoded once (PyAV), frames sampled evenly, embedded by the frame encoder,
and a middle frame saved as a thumbnail for the search page. The dataset folder is only
ever replaced whole (`atomic_directory`), every `commit_every` new videos, so a killed
extraction leaves the last complete dataset and a re-run picks up from there: files
already extracted (same path, size and mtime) are kept, not decoded again.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vidret.data.format import (
    METADATA_FILE,
    VIDEOS_FILE,
    lengths_file,
    regions_file,
)
from vidret.data.jsonl import read_jsonl_objects
from vidret.data.writer import DatasetWriter, dataset_folder
from vidret.errors import Problem, VidretError
from vidret.io import (
    make_temporary_folder,
    require_folder_or_nothing,
)
from vidret.locking import folder_lock, remove_stale_temporaries
from vidret.progress import note, on_terminal, progress_bar
from vidret.video.decode import (
    DecodedVideo,
    Sampling,
    UnreadableVideoError,
    find_videos,
)
from vidret.video.embed import embedded_here
from vidret.video.frame_encoder import EfficientNetLite0

THUMBNAILS_DIR = "thumbnails"


@dataclass
class ExtractReport:
    added: list[str] = field(default_factory=list)  # video ids extracted this time
    kept: list[str] = field(default_factory=list)  # already in the dataset, unchanged
    removed: list[str] = field(default_factory=list)  # in the dataset, file gone
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    warnings: list[str] = field(default_factory=list)
    frames: int = 0  # frames embedded this time
    seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Video:
    """One row of the dataset being built."""

    meta: dict[str, Any]
    features: np.ndarray  # float16 [frames, dim]
    thumbnail: Path | None  # where its thumbnail is now (old dataset or the staging folder)
    regions: np.ndarray | None = None  # float16 [frames, regions, dim]


def extract_dataset(
    video_dir: Path,
    out: Path,
    sampling: Sampling,
    captions_file: Path | None = None,
    encoder: Any | None = None,
    commit_every: int = 500,
    progress: bool = True,
    ray_address: str | None = None,
    ray_workers: int = 2,
) -> ExtractReport:
    """Extract every video under `video_dir` into the dataset folder `out` (see module doc).

    `ray_address`: decode and embed on Ray (`vidret.video.ray_extract`; "local" starts a
    Ray on this machine) with `ray_workers` frame-encoder actors; the dataset is written
    here, as without Ray."""
    video_dir = video_dir.resolve()
    if not video_dir.is_dir():
        raise VidretError(f"{video_dir}: not a folder; give the folder that holds your videos")
    require_folder_or_nothing(out)
    if video_dir.is_relative_to(out.resolve()):
        raise VidretError(
            f"--out {out}: holds the video folder {video_dir}, and the dataset folder is "
            "replaced whole; write the dataset elsewhere"
        )
    with folder_lock(out, what="extracts into"):
        # No live writer of `out` now: what killed extractions left beside it can go.
        remove_stale_temporaries(out)
        return _extract(
            video_dir,
            out,
            sampling,
            captions_file,
            encoder,
            commit_every,
            progress,
            ray_address,
            ray_workers,
        )


def _extract(
    video_dir: Path,
    out: Path,
    sampling: Sampling,
    captions_file: Path | None,
    encoder: Any | None,
    commit_every: int,
    progress: bool,
    ray_address: str | None,
    ray_workers: int,
) -> ExtractReport:
    files, left_out = find_videos(video_dir)
    if not files:
        raise VidretError(f"{video_dir}: no video files (looked for .mp4, .webm, .mkv, .avi, ...)")
    captions = _read_captions_file(captions_file) if captions_file else None
    report = ExtractReport(skipped=left_out)
    encoder = encoder or EfficientNetLite0()
    settings = {"encoder": encoder.name, "size": encoder.size, **sampling.describe()}
    if getattr(encoder, "regions", 0):  # absent otherwise: older folders stay comparable
        settings["regions"] = encoder.regions

    existing = _read_existing(out, settings)
    rows: dict[str, _Video] = {}  # relative file -> row
    todo: list[Path] = []
    present: set[str] = set()
    for path in files:
        rel = path.relative_to(video_dir).as_posix()
        if not path.resolve().is_relative_to(video_dir):
            # The server reads files only inside the video folder (vidret.data.file_refs).
            report.skipped.append((rel, f"a link to {path.resolve()}, outside {video_dir}"))
            continue
        present.add(rel)
        old = existing.get(rel)
        stat = path.stat()
        if old and old.meta.get("bytes") == stat.st_size and old.meta.get("mtime") == stat.st_mtime:
            rows[rel] = old
            report.kept.append(old.meta["video_id"])
        else:
            todo.append(path)
    report.removed = [v.meta["video_id"] for rel, v in existing.items() if rel not in present]
    taken = {v.meta["video_id"] for v in rows.values()}  # ids in use, kept and new

    out.parent.mkdir(parents=True, exist_ok=True)
    # New thumbnails wait beside the output until a dataset folder takes them in.
    thumbs = make_temporary_folder(out, ".thumbs")
    try:
        start = time.perf_counter()
        bar = progress_bar(total=len(todo), enabled=progress, desc="extracting", unit="video")
        pending = 0
        if ray_address is not None:
            from vidret.video.ray_extract import ray_embedded

            source = ray_embedded(todo, sampling, encoder, ray_address, ray_workers)
        else:
            source = embedded_here(todo, sampling, encoder)
        for path, embedded in source:
            rel = path.relative_to(video_dir).as_posix()
            bar.update(1)
            if isinstance(embedded, UnreadableVideoError):
                report.skipped.append((rel, str(embedded)))
                bar.write(f"skipped {rel}: {embedded}")
                continue
            video_id = _unique_id(rel, taken)
            taken.add(video_id)
            features = embedded.features
            thumb = thumbs / f"{video_id}.jpg"
            Image.fromarray(embedded.thumbnail).save(thumb, quality=85)
            meta = _metadata(video_id, rel, path, embedded.decoded)
            rows[rel] = _Video(meta, features, thumb, embedded.regions)
            report.added.append(video_id)
            report.frames += len(features)
            report.seconds = time.perf_counter() - start
            bar.set_postfix(frames_per_s=f"{report.frames_per_second:.0f}")
            pending += 1
            if pending >= commit_every:
                _write_dataset(out, video_dir, rows, captions, settings, encoder, report)
                pending = 0
                if not on_terminal():  # a log file gets a line per save, not a bar
                    note(f"{out}: saved {len(rows)} videos of {len(files)} files")
        bar.close()
        report.seconds = time.perf_counter() - start
        if not rows:
            raise VidretError(f"{video_dir}: none of the {len(files)} video files could be read")
        _write_dataset(out, video_dir, rows, captions, settings, encoder, report)
    finally:
        shutil.rmtree(thumbs, ignore_errors=True)
    return report


def _metadata(video_id: str, rel: str, path: Path, decoded: DecodedVideo) -> dict[str, Any]:
    stat = path.stat()
    return {
        "video_id": video_id,
        "file": rel,
        "path": str(path),
        "duration": round(decoded.duration, 3),
        "fps": round(decoded.fps, 3),
        "width": decoded.width,
        "height": decoded.height,
        "frame_times": [round(float(t), 3) for t in decoded.times],
        "bytes": stat.st_size,
        "mtime": stat.st_mtime,
        "thumbnail": f"{THUMBNAILS_DIR}/{video_id}.jpg",
    }


def _unique_id(rel: str, taken: set[str]) -> str:
    """A readable id from the file's path: `sub/My clip.mp4` -> `sub__My_clip`."""
    stem = rel.rsplit(".", 1)[0].replace("/", "__")
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "video"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _read_captions_file(path: Path) -> dict[str, list[str]]:
    """`{"file": "clip1.mp4", "caption": "..."}` lines -> file -> captions."""
    if not path.is_file():
        raise VidretError(f"{path}: captions file not found")
    problems: list[Problem] = []
    captions: dict[str, list[str]] = {}
    for line, obj in read_jsonl_objects(path, problems):
        file, text = obj.get("file"), obj.get("caption")
        if not isinstance(file, str) or not file.strip():
            problems.append(Problem(path.name, "needs a string 'file' (path in the folder)", line))
        elif not isinstance(text, str) or not text.strip():
            problems.append(
                Problem(path.name, f"needs a non-empty string 'caption' ({file})", line)
            )
        else:
            captions.setdefault(Path(file).as_posix(), []).append(text.strip())
    if problems:
        raise VidretError(f"{path}: fix these lines:\n" + "\n".join(f"  {p}" for p in problems))
    return captions


def _read_existing(out: Path, settings: dict[str, Any]) -> dict[str, _Video]:
    """Rows of an earlier extraction into `out`, by relative file; {} if there is none."""
    if not out.exists():
        return {}
    meta_path = out / METADATA_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VidretError(f"{meta_path}: unreadable ({e}); choose a new --out folder") from None
    if not isinstance(meta, dict) or "extraction" not in meta:
        raise VidretError(
            f"{out} exists and was not written by `vidret extract`; choose a new --out folder"
        )
    if meta["extraction"] != settings:
        raise VidretError(
            f"{out} was extracted with {meta['extraction']}, this run asks for {settings}; "
            "use the same options to add videos, or a new --out folder"
        )
    name = settings["encoder"]
    features = np.load(out / f"{name}.npy")
    lengths = np.load(lengths_file(out, name))
    regions = np.load(regions_file(out, name), mmap_mode="r") if settings.get("regions") else None
    videos = [json.loads(line) for line in (out / VIDEOS_FILE).read_text().splitlines() if line]
    return {
        v["file"]: _Video(
            v,
            features[i, : lengths[i]],
            out / v["thumbnail"],
            None if regions is None else np.array(regions[i, : lengths[i]]),
        )
        for i, v in enumerate(videos)
    }


def _write_dataset(
    out: Path,
    video_dir: Path,
    rows: dict[str, _Video],
    captions: dict[str, list[str]] | None,
    settings: dict[str, Any],
    encoder: Any,
    report: ExtractReport,
) -> None:
    ordered = [rows[rel] for rel in sorted(rows)]
    frames = max(len(v.features) for v in ordered)
    features = np.zeros((len(ordered), frames, encoder.dim), np.float16)
    lengths = np.zeros(len(ordered), np.int64)
    for i, video in enumerate(ordered):
        features[i, : len(video.features)] = video.features
        lengths[i] = len(video.features)

    caption_rows: list[dict[str, Any]] = []
    if captions is not None:
        for video in ordered:
            texts = captions.get(video.meta["file"], [])
            caption_rows += [{"video_id": video.meta["video_id"], "caption": t} for t in texts]
        uncaptioned = [v.meta["file"] for v in ordered if v.meta["file"] not in captions]
        unknown = sorted(set(captions) - {v.meta["file"] for v in ordered})
        report.warnings = []
        if uncaptioned:
            report.warnings.append(
                f"{len(uncaptioned)} video(s) have no caption in the captions file (first: "
                f"{uncaptioned[:3]}); training needs one per video: add lines for them"
            )
        if unknown:
            report.warnings.append(
                f"{len(unknown)} caption file name(s) match no readable video (first: "
                f"{unknown[:3]}); names are paths relative to the video folder"
            )

    with dataset_folder(out, overwrite=True) as folder:
        folder.expert(encoder.name, features, lengths=lengths)
        if settings.get("regions"):
            _save_regions(folder, encoder.name, ordered, frames)
        folder.videos(v.meta for v in ordered)
        if captions is not None:
            folder.captions(caption_rows)
        (folder.folder / THUMBNAILS_DIR).mkdir()
        for video in ordered:
            if video.thumbnail is not None and video.thumbnail.exists():
                shutil.copyfile(video.thumbnail, folder.folder / video.meta["thumbnail"])
        folder.metadata(
            {
                "name": out.name,
                "generated": False,
                "captioned": captions is not None,
                "video_dir": str(video_dir),
                "experts": {encoder.name: {"dim": encoder.dim}},
                "extraction": settings,
            },
        )
    # Rows kept from the old folder now point into the new one (the old one is gone).
    for video in ordered:
        video.thumbnail = out / video.meta["thumbnail"]


def _save_regions(folder: DatasetWriter, name: str, ordered: list[_Video], frames: int) -> None:
    """`[videos, frames, regions, dim]` float16, written a video at a time into a file-backed
    array: region features are `regions` times the frame features, too many to stack."""
    first = next(v.regions for v in ordered if v.regions is not None)
    shape = (len(ordered), frames, *first.shape[1:])
    out = folder.regions_in_place(name, shape, np.float16)
    for i, video in enumerate(ordered):
        assert video.regions is not None
        out[i, : len(video.regions)] = video.regions
        out[i, len(video.regions) :] = 0
    out.flush()
    del out
