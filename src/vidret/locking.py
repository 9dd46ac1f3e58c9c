"""One writer per folder: a lock file beside the folder, held with `flock`.

`vidret train --out RUN`, `vidret extract --out DIR`, `vidret index --out DIR` and every
atomically replaced folder take the lock of their folder, `PARENT/.NAME.lock`. The kernel
releases a `flock` when its process dies, however it dies, so a lock left by a killed
process is stale by construction and simply taken over; the file holds the owner's pid
and command only to say who holds a live one. While a process holds a folder's lock,
the temporaries that vidret writers leave beside or inside that folder when killed
(`.NAME.*.partial`, `.NAME.*.thumbs`, `.NAME.old`, `.FILE.*.tmp`) cannot belong to a
live writer, so `remove_stale_temporaries` deletes them.

Locks are re-entrant within a process: a command that holds its output folder's lock
can call code that takes the same lock again (e.g. each atomic replacement of it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vidret.errors import VidretError

_held: dict[Path, int] = {}  # lock file -> nesting depth, for this process
_held_guard = threading.Lock()

# What `tempfile.mkstemp(prefix=".NAME.", suffix=".tmp")` in `vidret.io` makes.
_TEMP_FILE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


class FolderLockedError(VidretError):
    """Another live process is writing the folder."""


def lock_file(folder: Path) -> Path:
    folder = Path(folder).absolute()
    return folder.parent / f".{folder.name}.lock"


@dataclass(frozen=True)
class HeldLock:
    path: Path  # the lock file
    nested: bool  # this process already held it: the outer holder cleaned up at its start


@contextlib.contextmanager
def folder_lock(folder: Path | str, wait: bool = False, what: str = "writes") -> Iterator[HeldLock]:
    """Hold the lock of `folder` for the duration of the block.

    Without `wait` a folder locked by another live process raises `FolderLockedError`
    naming the owner; with `wait` it blocks until the owner finishes (used for caches,
    which two trainings may both fill).
    """
    path = lock_file(Path(folder))
    key = path.resolve()  # resolves what exists of it, so it names one file however spelled
    with _held_guard:
        if key in _held:
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield HeldLock(path, nested=True)
        finally:
            with _held_guard:
                _held[key] -= 1
        return

    fd = _acquire(path, Path(folder), wait, what)
    with _held_guard:
        _held[key] = 1
    try:
        yield HeldLock(path, nested=False)
    finally:
        with _held_guard:
            del _held[key]
        # Unlink before unlocking: a process that opened the old file sees, once it has
        # the lock, that the name now points elsewhere, and starts over (`_acquire`).
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


def _acquire(path: Path, folder: Path, wait: bool, what: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            raise FolderLockedError(
                f"{folder}: another vidret process {what} this folder ({owner}); wait for it "
                f"to finish or stop it, or choose another folder. (Lock: {path})"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder we waited for removed the file: lock the new one
    os.ftruncate(fd, 0)
    command = " ".join(sys.argv)[:300]
    os.write(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}: {command}\n".encode())
    return fd


def _read_owner(fd: int) -> str:
    try:
        return os.pread(fd, 400, 0).decode("utf-8", "replace").strip() or "pid unknown"
    except OSError:
        return "pid unknown"


def remove_stale_temporaries(folder: Path, inside: tuple[str, ...] = ()) -> list[Path]:
    """Delete what killed vidret writers of `folder` left behind; call with its lock held.

    Beside the folder: `.NAME.*.partial`, `.NAME.*.thumbs` (folders being built) and
    `.NAME.old` (a replaced folder not yet deleted). Inside `folder` and its subfolders
    named in `inside`: `.FILE.XXXXXXXX.tmp` files of interrupted atomic writes.
    """
    folder = Path(folder).absolute()
    removed: list[Path] = []
    parent, name = folder.parent, folder.name
    if parent.is_dir():
        for pattern in (f".{name}.*.partial", f".{name}.*.thumbs", f".{name}.old"):
            for leftover in parent.glob(pattern):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                    removed.append(leftover)
    for sub in (folder, *(folder / s for s in inside)):
        if not sub.is_dir():
            continue
        for leftover in sub.iterdir():
            if _TEMP_FILE.match(leftover.name) and leftover.is_file():
                leftover.unlink(missing_ok=True)
                removed.append(leftover)
    return removed
