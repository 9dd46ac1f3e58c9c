"""Decode a video file with PyAV (FFmpeg) and sample frames evenly in time.

Frames come out as RGB uint8 `[N, size, size, 3]`: the shorter side scaled to `size`,
then a centre crop, the usual ImageNet framing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidret.data.format import VIDEO_EXTENSIONS
from vidret.errors import VidretError


class UnreadableVideoError(Exception):
    """A file that is not a decodable video (corrupt, empty, no video stream, no frames)."""


# Most frames of one video with --frames (evenly spaced over any length).
MAX_FRAMES = 1024
# Most frames of one video with --fps: a day at 1 frame/s. Frames are decoded and
# embedded in chunks of CHUNK_FRAMES (150 kB each at 224 x 224), so memory stays bounded
# however long the video; only its features (2.5 kB a frame) are kept.
MAX_STREAMED_FRAMES = 86_400
CHUNK_FRAMES = 128
# Targets further apart than this are reached by seeking to the keyframe before each:
# decoding from there costs at most one keyframe interval (commonly 1-10 s), decoding
# through costs the whole gap. Where keyframes are further apart than the targets, the
# first seek lands behind what was decoded and seeking stops (one interval lost, once).
SEEK_GAP_SECONDS = 2.0


@dataclass(frozen=True)
class Sampling:
    """Which frames to take: `frames` evenly spaced, or `fps` per second (at most
    `max_frames`, thinned evenly for long videos). Never more than the video has."""

    frames: int | None = 16
    fps: float | None = None
    max_frames: int = 64

    def __post_init__(self) -> None:
        if self.fps is not None and not (0 < self.fps <= 1000):
            raise VidretError(f"--fps {self.fps}: give a rate above 0 and at most 1000")
        if self.frames is not None and not 1 <= self.frames <= MAX_FRAMES:
            raise VidretError(
                f"--frames {self.frames}: give between 1 and {MAX_FRAMES} frames per video "
                "(for long videos, --fps F with --max-frames bounds what is kept)"
            )
        if not 1 <= self.max_frames <= MAX_STREAMED_FRAMES:
            raise VidretError(
                f"--max-frames {self.max_frames}: give between 1 and {MAX_STREAMED_FRAMES} "
                "frames per video (a day at 1 frame/s)"
            )

    def times(self, duration: float, available: int | None = None) -> np.ndarray:
        """Timestamps (seconds) at the middle of equal slices of the video; at most
        `available` of them (the video's frame count, when known): no frame twice."""
        if self.fps is not None:
            count = max(1, int(duration * self.fps))
            count = min(count, self.max_frames)
        else:
            count = int(self.frames or 1)
        if available:
            count = max(1, min(count, available))
        return (np.arange(count) + 0.5) * (duration / count)

    def describe(self) -> dict[str, float | int]:
        if self.fps is not None:
            return {"fps": self.fps, "max_frames": self.max_frames}
        return {"frames": int(self.frames or 1)}


@dataclass
class DecodedVideo:
    frames: np.ndarray  # uint8 [N, size, size, 3]
    times: np.ndarray  # float64 [N] seconds of each frame
    duration: float
    fps: float
    width: int
    height: int


@dataclass(frozen=True)
class VideoHeader:
    """What is known of a video once it is opened: its properties and how many frames
    the sampling takes from it."""

    duration: float
    fps: float
    width: int
    height: int
    frames: int  # frames the stream will yield


def read_frames(path: Path, sampling: Sampling, size: int = 224) -> DecodedVideo:
    """All sampled frames of `path` at once (`stream_frames` collected)."""
    chunks = list(stream_frames(path, sampling, size))  # never empty: it raises instead
    header = chunks[0][0]
    return DecodedVideo(
        np.concatenate([frames for _, frames, _ in chunks]),
        np.concatenate([times for _, _, times in chunks]),
        header.duration,
        header.fps,
        header.width,
        header.height,
    )


def stream_frames(
    path: Path,
    sampling: Sampling,
    size: int = 224,
    chunk: int = CHUNK_FRAMES,
    seek_gap: float | None = SEEK_GAP_SECONDS,
) -> Iterator[tuple[VideoHeader, np.ndarray, np.ndarray]]:
    """Decode `path` front to back, keeping the first frame at or after each target time;
    yield them `chunk` at a time as (header, RGB uint8 [n, size, size, 3], seconds [n]), so
    a long video is never held whole. Where the next target is more than `seek_gap`
    seconds past the last frame decoded, jump to the keyframe before it instead of
    decoding everything between (the same frames: decoding from a keyframe gives what
    decoding up to it would; None: never). Raises `UnreadableVideoError` with the
    reason for anything that is not a video (possibly after some chunks: the caller
    discards what it had of this file)."""
    import av

    if path.stat().st_size == 0:
        raise UnreadableVideoError("empty file (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UnreadableVideoError("no video stream")
            stream = container.streams.video[0]
            # FFmpeg's default (slice) threading: frame threading costs more CPU on short
            # clips, and extraction already decodes beside the frame model.
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            duration = _duration(container, stream)
            if duration is None:  # no header duration: one cheap pass over the packets
                duration = _demuxed_duration(path)
            targets = sampling.times(duration, _frame_count(stream, duration, fps))
            width, height = stream.codec_context.width, stream.codec_context.height
            header = VideoHeader(duration, fps, width, height, len(targets))
            frames: list[np.ndarray] = []
            times: list[float] = []
            taken = 0  # frames yielded or waiting in `frames`
            index = 0
            last = None  # the last frame decoded, and its time
            seeking = seek_gap is not None
            sought = -1  # the target last sought: once per target, then decode up to it
            decoded = container.decode(stream)
            while taken < len(targets):
                far = last is not None and targets[taken] - last[1] > (seek_gap or 0)
                if seeking and far and sought != taken:
                    decoded, seeking = _seek(container, stream, targets[taken], last[1])
                    sought = taken
                frame = next(decoded, None)
                if frame is None:
                    break
                if frame.time is None:
                    seeking = False  # no timestamps to seek by
                t = frame.time if frame.time is not None else index / max(fps, 1e-6)
                index += 1
                last = (frame, t)
                while taken < len(targets) and t >= targets[taken] - 1e-6:
                    frames.append(_square_rgb(frame, size))
                    times.append(t)
                    taken += 1
                    if len(frames) == chunk:
                        yield header, np.stack(frames), np.asarray(times)
                        frames, times = [], []
            if index == 0:
                raise UnreadableVideoError("no frames could be decoded")
            # A duration header a little longer than the stream (or a one-frame video
            # whose only frame comes before the first target): fill with the last frame.
            if last is not None and taken < len(targets):
                filler = _square_rgb(last[0], size)
                while taken < len(targets):
                    frames.append(filler)
                    times.append(last[1])
                    taken += 1
                    if len(frames) == chunk:
                        yield header, np.stack(frames), np.asarray(times)
                        frames, times = [], []
            if frames:
                yield header, np.stack(frames), np.asarray(times)
    except av.error.FFmpegError as e:
        raise UnreadableVideoError(f"cannot decode ({e})") from None


def _seek(container, stream, target: float, reached: float) -> tuple[Iterator, bool]:
    """Frames from the keyframe at or before `target`, and whether to go on seeking: not
    once a seek lands at or before `reached` (keyframes further apart than the gap, or a
    file that cannot seek): from there decoding goes on front to back, never twice over
    the same stretch again."""
    try:
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
    except Exception:  # a container that cannot seek: decode on from where it lands
        return container.decode(stream), False
    decoded = container.decode(stream)
    first = next(decoded, None)
    if first is None or first.time is None or first.time > target + 1e-6:
        # Nothing, no timestamps, or past the target: back to what was reached, and on.
        container.seek(int(reached / stream.time_base), stream=stream, backward=True)
        return container.decode(stream), False
    return itertools.chain([first], decoded), first.time > reached


def _frame_count(stream, duration: float, fps: float) -> int | None:
    """Frames in the stream: the header's count, else duration x rate; None if unknown."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    if fps > 0 and duration > 0:
        return max(1, round(duration * fps))
    return None


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return seconds
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000  # av.time_base: microseconds
    return None


def _demuxed_duration(path: Path) -> float:
    import av

    last = 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base is not None:
                last = max(last, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    if last <= 0:
        raise UnreadableVideoError("no timestamps: cannot tell the duration")
    return last


def _square_rgb(frame, size: int) -> np.ndarray:
    """Shorter side to `size` (FFmpeg's scaler), then the centre `size` x `size`."""
    scale = size / min(frame.width, frame.height)
    width = max(size, round(frame.width * scale))
    height = max(size, round(frame.height * scale))
    rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(rgb[top : top + size, left : left + size])


def find_videos(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Video files under `folder` (recursively, by extension, links to folders not
    followed), in a stable order, and (name, reason) for what had to be left out: a
    subfolder that cannot be read, a file name that is not valid UTF-8 (it could not be
    written to videos.jsonl; named with its bytes escaped)."""
    files: list[Path] = []
    left_out: list[tuple[str, str]] = []

    def unreadable(error: OSError) -> None:
        where = Path(error.filename or folder)
        rel = where.relative_to(folder).as_posix() if where.is_relative_to(folder) else where
        left_out.append((f"{_printable(str(rel))}/", f"folder not readable ({error.strerror})"))

    for parent, dirs, names in os.walk(folder, onerror=unreadable):
        dirs.sort()
        for name in names:
            path = Path(parent, name)
            if path.suffix.lower() not in VIDEO_EXTENSIONS or not path.is_file():
                continue
            rel = path.relative_to(folder).as_posix()
            if _printable(rel) != rel:
                left_out.append((_printable(rel), "file name is not valid UTF-8: rename the file"))
                continue
            files.append(path)
    return sorted(files), left_out


def _printable(name: str) -> str:
    """`name` with bytes that are not UTF-8 (held as surrogates) shown as \\xNN."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")
