"""One video file -> its frame features, thumbnail and times: decoded a chunk of frames at a
time and embedded as the chunks come, so memory does not grow with the video. Used by
`vidret extract` in this process (`embedded_here`: decoding in a thread while this one
embeds) and by its Ray actors (`embed_file`)."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidret.video.decode import (
    DecodedVideo,
    Sampling,
    UnreadableVideoError,
    VideoHeader,
    stream_frames,
)


@dataclass
class EmbeddedVideo:
    """A decoded and embedded video: what the dataset keeps of it (the frames go)."""

    features: np.ndarray  # float16 [frames, dim]
    thumbnail: np.ndarray  # uint8 [size, size, 3]: the middle frame
    decoded: DecodedVideo  # its times and properties; `frames` emptied
    regions: np.ndarray | None = None  # float16 [frames, regions, dim] (`--regions N`)


class _Assembler:
    """One video's chunks of frames embedded as they come; the frames are not kept."""

    def __init__(self, size: int):
        self.size = size
        self.features: list[np.ndarray] = []
        self.regions: list[np.ndarray] = []
        self.times: list[np.ndarray] = []
        self.thumbnail: np.ndarray | None = None
        self.header: VideoHeader | None = None
        self.count = 0

    def add(
        self,
        header: VideoHeader,
        frames: np.ndarray,
        times: np.ndarray,
        embedded: tuple[np.ndarray, np.ndarray | None],
    ) -> None:
        """One chunk of frames and their `embed_chunk` output."""
        self.header = header
        middle = header.frames // 2  # the thumbnail: the video's middle sampled frame
        if self.count <= middle < self.count + len(frames):
            self.thumbnail = frames[middle - self.count].copy()
        features, regions = embedded
        if regions is not None:
            self.regions.append(regions)
        self.features.append(features)
        self.times.append(times)
        self.count += len(frames)

    def finish(self) -> EmbeddedVideo:
        h = self.header
        assert h is not None and self.thumbnail is not None
        empty = np.zeros((0, self.size, self.size, 3), np.uint8)
        decoded = DecodedVideo(
            empty, np.concatenate(self.times), h.duration, h.fps, h.width, h.height
        )
        regions = np.concatenate(self.regions) if self.regions else None
        return EmbeddedVideo(np.concatenate(self.features), self.thumbnail, decoded, regions)


def embed_chunk(encoder: Any, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Features of `frames` as stored (float16), and their region features with `--regions`."""
    if getattr(encoder, "regions", 0):
        features, regions = encoder.encode_regions(frames)
        return features.astype(np.float16), regions.astype(np.float16)
    return encoder.encode(frames).astype(np.float16), None


def embed_file(
    path: Path, sampling: Sampling, encoder: Any
) -> EmbeddedVideo | UnreadableVideoError:
    """Decode and embed one file, a chunk of frames at a time, in this thread (Ray's
    actors); or why it cannot be read: one odd file must not end the extraction."""
    assembler = _Assembler(encoder.size)
    try:
        for header, frames, times in stream_frames(path, sampling, encoder.size):
            assembler.add(header, frames, times, embed_chunk(encoder, frames))
    except Exception as e:
        return unreadable(e)
    return assembler.finish()


def unreadable(error: Exception) -> UnreadableVideoError:
    """Why a file could not be extracted, whatever the decoder raised."""
    if isinstance(error, UnreadableVideoError):
        return error
    if isinstance(error, OSError):
        return UnreadableVideoError(f"cannot read ({error.strerror or error})")
    return UnreadableVideoError(f"cannot decode ({type(error).__name__}: {error})")


Extracted = tuple[Path, EmbeddedVideo | UnreadableVideoError]


def embedded_here(paths: list[Path], sampling: Sampling, encoder: Any) -> Iterator[Extracted]:
    """Three stages at once: decoding in a background thread (FFmpeg releases the GIL),
    the frame model on the newest chunk in another, and this thread assembling and
    handing on the chunk before it, so the model does not wait for what is done with
    its output."""
    assembler: _Assembler | None = None

    def hand_on(path: Path, item: Any, features: Future | None) -> Iterator[Extracted]:
        nonlocal assembler
        if isinstance(item, UnreadableVideoError):
            yield path, item  # what was embedded of it is dropped
            assembler = None
        elif item is None:  # the file's last chunk has come
            assert assembler is not None
            yield path, assembler.finish()
            assembler = None
        else:
            assert features is not None
            assembler = assembler or _Assembler(encoder.size)
            assembler.add(*item, features.result())

    # (path, a decoded chunk or None at its file's end or why it failed, the chunk's features)
    waiting: deque[tuple[Path, Any, Future | None]] = deque()
    with ThreadPoolExecutor(1, "vidret-embed") as model:
        for path, item in _decoded_chunks(paths, sampling, encoder.size):
            chunk = isinstance(item, tuple)
            features = model.submit(embed_chunk, encoder, item[1]) if chunk else None
            waiting.append((path, item, features))
            if len(waiting) > 1:  # the newest stays with the model
                yield from hand_on(*waiting.popleft())
        while waiting:
            yield from hand_on(*waiting.popleft())


AHEAD_CHUNKS = 2  # decoded chunks waiting for the frame model, at most
_DONE = object()


def _decoded_chunks(
    paths: list[Path], sampling: Sampling, size: int, ahead: int = AHEAD_CHUNKS
) -> Iterator[tuple[Path, Any]]:
    """(path, (header, frames, times)) for each chunk of each file, then (path, None) at
    its end, or (path, UnreadableVideoError) where it fails; decoded in a thread that
    runs at most `ahead` chunks ahead, so memory stays bounded however long a video is."""
    chunks: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the reader has gone

    def produce() -> None:
        try:
            for path in paths:
                end: UnreadableVideoError | None = None
                try:
                    for chunk in stream_frames(path, sampling, size):
                        if not put((path, chunk)):
                            return
                except Exception as e:
                    end = unreadable(e)
                if not put((path, end)):
                    return
        finally:
            put(_DONE)

    thread = threading.Thread(target=produce, name="vidret-decode", daemon=True)
    thread.start()
    try:
        while (item := chunks.get()) is not _DONE:
            yield item
    finally:
        stop.set()
        thread.join()
