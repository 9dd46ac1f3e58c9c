"""Serve a file the index points at without a window between checking it and reading it.

Checking a path and then handing the path to a response that opens it later can be raced:
swap the file for a symlink to `/etc/passwd` between the two and the check passed for a
file that is not the one served. So the server opens the file once, walking from its
allowed folder one component at a time without following any symlink (`O_NOFOLLOW`), checks
what it opened (`fstat`: a regular file on the folder's device), and streams that open
descriptor (`DescriptorResponse`, with the single byte ranges a video player asks for).

What this cannot tell apart: a hard link inside the folder is the file it links to. Whoever
can create one there chooses what is served under that name (on the same device, of an
allowed type), as they could by copying the file in.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from starlette.responses import StreamingResponse

_CHUNK = 256 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class NotServableError(OSError):
    """The file is gone, was swapped for a link, or is not a regular file of the folder."""


def open_inside(path: Path, root: Path) -> int:
    """An open read-only descriptor of `path` (already resolved, inside resolved `root`),
    reached from `root` with no symlink followed; raises `NotServableError`."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        raise NotServableError(f"{path} is outside {root}") from None
    if not rel.parts:
        raise NotServableError(f"{path} is the folder itself")
    nofollow = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise NotServableError(f"{root}: {e.strerror}") from None
    try:
        root_device = os.fstat(folder).st_dev
        for part in rel.parts[:-1]:
            inner = os.open(part, nofollow | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = inner
        # O_NONBLOCK: a FIFO put in the file's place must not hang the worker
        fd = os.open(rel.parts[-1], nofollow | os.O_NONBLOCK, dir_fd=folder)
    except OSError as e:  # ELOOP: a component is a symlink now; ENOENT: gone
        raise NotServableError(f"{path}: {e.strerror}") from None
    finally:
        os.close(folder)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_dev != root_device:
        os.close(fd)
        raise NotServableError(f"{path} is not a regular file of {root}")
    return fd


class DescriptorResponse(StreamingResponse):
    """The bytes of an open file descriptor (closed when the response ends, however it
    ends), whole or one `Range: bytes=a-b`; `name` gives the media type."""

    def __init__(self, fd: int, name: str, range_header: str | None = None) -> None:
        info = os.fstat(fd)
        size = info.st_size
        start, end = 0, size - 1
        status = 200
        headers = {
            "accept-ranges": "bytes",
            "last-modified": email.utils.formatdate(info.st_mtime, usegmt=True),
        }
        wanted = _byte_range(range_header, size) if range_header else None
        if wanted == "unsatisfiable":
            os.close(fd)
            super().__init__(
                iter([b""]), status_code=416, headers={"content-range": f"bytes */{size}"}
            )
            return
        if wanted is not None:
            start, end = wanted
            status = 206
            headers["content-range"] = f"bytes {start}-{end}/{size}"
        headers["content-length"] = str(max(0, end - start + 1))
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        super().__init__(
            _read(fd, start, end + 1), status_code=status, headers=headers, media_type=media_type
        )


async def _read(fd: int, start: int, stop: int) -> AsyncIterator[bytes]:
    try:
        offset = start
        while offset < stop:
            chunk = await anyio.to_thread.run_sync(os.pread, fd, min(_CHUNK, stop - offset), offset)
            if not chunk:  # the file shrank since: end here, as a truncated read
                return
            offset += len(chunk)
            yield chunk
    finally:
        os.close(fd)


def _byte_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(first, last) byte of one `bytes=a-b` range; None to send the whole file (several
    ranges, or a header we do not read); "unsatisfiable" past the end."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        n = int(last)
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else "unsatisfiable"
    start = int(first)
    if start >= size:
        return "unsatisfiable"
    stop = min(int(last), size - 1) if last else size - 1
    return (start, stop) if stop >= start else None
