"""Writing a dataset folder: the one place that knows the format's file names when writing,
used by every producer (the demo set, the moment benchmark, `vidret extract`, the
importers). The folder is built under a temporary name and appears whole or not at all
(`atomic_directory`); each video id is checked against the id alphabet as it is written.

    with dataset_folder(out) as folder:
        folder.videos(rows)
        folder.captions(rows)
        folder.expert("frames", features, lengths, times)
        folder.split("train", ids)
        folder.metadata({...})
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vidret.data.format import (
    CAPTION_FEATURES_DIR,
    CAPTIONS_FILE,
    METADATA_FILE,
    SPLITS_DIR,
    VIDEOS_FILE,
    lengths_file,
    regions_file,
    times_file,
    video_id_problem,
)
from vidret.data.moments import MOMENTS_FILE
from vidret.errors import VidretError
from vidret.io import atomic_directory, save_npy_atomic, write_json_atomic, write_jsonl_atomic


class DatasetWriter:
    """The files of one dataset folder, written into `folder` (a temporary one)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def videos(self, rows: Iterable[dict[str, Any]]) -> None:
        """videos.jsonl; line i is row i of every expert array."""
        rows = list(rows)
        for line, row in enumerate(rows, start=1):
            problem = video_id_problem(row.get("video_id"))
            if problem:  # a producer's bug, never the user's input: those are checked first
                raise VidretError(f"writing {VIDEOS_FILE}:{line}: {problem}")
        write_jsonl_atomic(self.folder / VIDEOS_FILE, rows)

    def captions(self, rows: Iterable[dict[str, Any]]) -> None:
        write_jsonl_atomic(self.folder / CAPTIONS_FILE, rows)

    def moments(self, rows: Iterable[dict[str, Any]]) -> None:
        write_jsonl_atomic(self.folder / MOMENTS_FILE, rows)

    def expert(
        self,
        name: str,
        features: np.ndarray,
        lengths: np.ndarray | None = None,
        times: np.ndarray | None = None,
    ) -> None:
        """`<name>.npy` [videos, frames, dim], with its lengths and frame times if given."""
        save_npy_atomic(self.folder / f"{name}.npy", features)
        self.companions(name, lengths=lengths, times=times)

    def expert_in_place(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.memmap:
        """`<name>.npy` as a writable memory map, for arrays larger than memory; the caller
        fills it and flushes it (the folder appears only when complete)."""
        return _memmap(self.folder / f"{name}.npy", shape, dtype)

    def regions_in_place(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.memmap:
        """Expert `name`'s `<name>.regions.npy` as a writable memory map (see above)."""
        return _memmap(regions_file(self.folder, name), shape, dtype)

    def companions(
        self, name: str, lengths: np.ndarray | None = None, times: np.ndarray | None = None
    ) -> None:
        """Expert `name`'s lengths ([videos] int64) and frame times, where given."""
        if lengths is not None:
            save_npy_atomic(lengths_file(self.folder, name), np.asarray(lengths, np.int64))
        if times is not None:
            save_npy_atomic(times_file(self.folder, name), times)

    def caption_features_folder(self) -> Path:
        """caption_features/, for caption-side arrays (one row per caption)."""
        folder = self.folder / CAPTION_FEATURES_DIR
        folder.mkdir(exist_ok=True)
        return folder

    def split(self, name: str, lines: Iterable[str]) -> None:
        """splits/<name>.txt: one video id a line (`id<TAB>k` scores caption k only)."""
        (self.folder / SPLITS_DIR).mkdir(exist_ok=True)
        (self.folder / SPLITS_DIR / f"{name}.txt").write_text("".join(f"{x}\n" for x in lines))

    def metadata(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.folder / METADATA_FILE, meta)


@contextlib.contextmanager
def dataset_folder(path: Path | str, overwrite: bool = False) -> Iterator[DatasetWriter]:
    """A `DatasetWriter` whose folder replaces `path` when the block ends without error."""
    with atomic_directory(path, overwrite=overwrite) as tmp:
        yield DatasetWriter(tmp)


def _memmap(path: Path, shape: tuple[int, ...], dtype: Any) -> np.memmap:
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
