"""Decoding the sampled frames of a long video: front to back against seeking to the
keyframe before each far target (issue 23).

    python benchmarks/bench_extract_seek.py                 # 10 minutes, 640x360, 25 fps
    python benchmarks/bench_extract_seek.py --minutes 30

Writes one long H.264 video per keyframe interval (2 s, as phones and streaming services
encode, and libx264's default of 250 frames, 10 s at 25 fps), cached in the temp folder,
then times `stream_frames` (decode, sample, scale to 224 x 224; the best of 3) with and
without seeking for `--frames 16`, `--fps 1` (64 frames at most, the default) and `--fps 1
--max-frames 600` (a frame a second: nothing to seek), and checks that both give the same
frames. Decoding only: the frame model's share is the same either way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from vidret.video.decode import SEEK_GAP_SECONDS, Sampling, stream_frames
from vidret.video.synthetic import SCENES, write_scenes

SAMPLINGS = {
    "--frames 16": Sampling(frames=16),  # 37.5 s apart
    "--fps 1": Sampling(frames=None, fps=1.0),  # 64 frames at most: 9.4 s apart
    "--fps 1 --max-frames 600": Sampling(frames=None, fps=1.0, max_frames=600),  # 1 s: no seek
}
REPEATS = 3  # the best of three: the machine's other work only ever adds


def long_video(minutes: float, keyframe_every: int) -> Path:
    path = Path(tempfile.gettempdir()) / f"vidret-bench-seek-{minutes:g}min-k{keyframe_every}.mp4"
    if not path.exists():
        scenes = [(name, 30.0) for name in SCENES] * int(minutes * 60 / 30 / len(SCENES) + 1)
        scenes = scenes[: int(minutes * 2)]
        partial = path.with_name(f".{path.name}")
        write_scenes(partial, scenes, fps=25, size=(360, 640), keyframe_every=keyframe_every)
        partial.rename(path)  # only a complete file is taken from the cache
    return path


def decoded(video: Path, sampling: Sampling, seek_gap: float | None) -> tuple[float, np.ndarray]:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        frames = [f for _, f, _ in stream_frames(video, sampling, seek_gap=seek_gap)]
        best = min(best, time.perf_counter() - start)
    return best, np.concatenate(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    result: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "video": f"{args.minutes:g} min, 640x360, 25 fps, H.264 (generated scenes)",
        "seek_gap_s": SEEK_GAP_SECONDS,
    }
    for keyframe_every in (50, 250):
        video = long_video(args.minutes, keyframe_every)
        for name, sampling in SAMPLINGS.items():
            through_s, through = decoded(video, sampling, None)
            seek_s, jumped = decoded(video, sampling, SEEK_GAP_SECONDS)
            result[f"keyframe every {keyframe_every} frames, {name}"] = {
                "frames": len(through),
                "front_to_back_s": round(through_s, 2),
                "seeking_s": round(seek_s, 2),
                "same_frames": bool(np.array_equal(through, jumped)),
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
