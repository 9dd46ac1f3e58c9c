"""Atomic writes: a crash or a kill leaves the old file (or none), never a half-written one."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from vidret.errors import VidretError
from vidret.json_output import rounded
from vidret.locking import folder_lock, remove_stale_temporaries


def require_folder_or_nothing(path: Path, what: str = "--out") -> None:
    """A folder to be written may exist only as a folder: say so when it is a file."""
    if path.exists() and not path.is_dir():
        raise VidretError(f"{what} {path}: a file, not a folder; choose a folder to write")


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_temporary_folder(beside: Path, suffix: str) -> Path:
    """A new hidden folder `.NAME.*SUFFIX` beside `beside`, with the mode a plain `mkdir`
    gives (mkdtemp makes 0700, which a server running as another user could not read)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{beside.name}.", suffix=suffix, dir=beside.parent))
    os.chmod(tmp, 0o777 & ~current_umask())
    return tmp


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    The temporary file lives in the same folder so the final `os.replace` is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a plain open would not
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a file for writing that appears at `path` only once it is complete."""
    with atomic_path(path) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def save_npy_atomic(path: Path | str, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, array)


def write_jsonl_atomic(path: Path | str, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_json_atomic(path: Path | str, obj: Any) -> None:
    with atomic_open(path) as f:
        json.dump(rounded(obj), f, indent=2, ensure_ascii=False)
        f.write("\n")


@contextlib.contextmanager
def atomic_directory(path: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name and move it to `path` only when complete.

    With `overwrite`, an existing folder is replaced after the new one is finished, in one
    atomic exchange: at no moment does `path` hold nothing. The folder's lock is held
    throughout (waiting for another writer), and what killed writers left is removed.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise VidretError(f"{path} already exists; choose another folder or pass --overwrite.")
    path.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(path, wait=True) as lock:
        if not lock.nested:  # an outer holder (e.g. `vidret extract`) cleaned at its start
            remove_stale_temporaries(path)
        tmp = make_temporary_folder(path, ".partial")
        try:
            yield tmp
            if path.exists():
                _exchange(tmp, path)  # tmp now holds the old folder
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(new: Path, old: Path) -> None:
    """Swap two folders atomically (Linux `renameat2(RENAME_EXCHANGE)`); elsewhere, or on a
    file system without it, two renames with the old folder parked at `.NAME.old`."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        at_fdcwd = -100
        if renameat2(at_fdcwd, os.fsencode(new), at_fdcwd, os.fsencode(old), _RENAME_EXCHANGE) == 0:
            return
        if ctypes.get_errno() not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(old))
    parked = old.with_name(f".{old.name}.old")
    shutil.rmtree(parked, ignore_errors=True)
    os.replace(old, parked)
    os.replace(new, old)
    os.replace(parked, new)
