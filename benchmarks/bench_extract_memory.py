"""Peak memory of `vidret extract` on one long video (issue 15: bounded whatever is asked).

    python benchmarks/bench_extract_memory.py                     # a 1-hour video
    python benchmarks/bench_extract_memory.py --minutes 10

Writes one long H.264 file from generated frames (160x120 at 5 fps, cached in the temp
folder between runs), then runs `vidret extract` on it in a fresh process per setting and
reports that process's peak resident memory (`ru_maxrss` of the child) and wall time:
`--fps 1` (capped by the default --max-frames 64), `--fps 1 --max-frames 1024` and
`--fps 1 --max-frames 3600` (every second of the hour: frames are decoded and embedded in
chunks of 128, so memory does not grow with the frames kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vidret.video.synthetic import write_video

sys.path.insert(0, str(Path(__file__).parent))
from measure import measured_vidret

SETTINGS = {
    "fps 1 (max-frames 64)": ["--fps", "1"],
    "fps 1, max-frames 1024": ["--fps", "1", "--max-frames", "1024"],
    "fps 1, max-frames 3600 (streamed: every second of the hour)": [
        "--fps",
        "1",
        "--max-frames",
        "3600",
    ],
}


def long_video(minutes: float) -> Path:
    cache = Path(tempfile.gettempdir())
    path = cache / f"vidret-bench-long-{minutes:g}min" / "long.mp4"
    if not path.exists():
        started = time.perf_counter()
        partial = write_video(cache / f".long-{minutes:g}.mp4", "red", minutes * 60, 5, (120, 160))
        path.parent.mkdir(exist_ok=True)
        partial.rename(path)  # only a complete file is taken from the cache
        took = time.perf_counter() - started
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {took:.0f} s")
    return path


def extract_peak(video: Path, options: list[str]) -> dict[str, float]:
    """`vidret extract` of the video's folder in a fresh process: wall, peak RSS, frames."""
    out = Path(tempfile.mkdtemp(prefix="vidret-bench-out-")) / "dataset"
    result = measured_vidret(["extract", str(video.parent), "--out", str(out), *options])
    result["frames"] = int(np.load(out / "efficientnet_lite0.lengths.npy")[0])
    shutil.rmtree(out.parent, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    video = long_video(args.minutes)
    results = {name: extract_peak(video, options) for name, options in SETTINGS.items()}
    print(
        json.dumps(
            {
                "video": {
                    "minutes": args.minutes,
                    "size": "160x120",
                    "fps": 5,
                    "file_mb": round(video.stat().st_size / 1e6, 1),
                },
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
