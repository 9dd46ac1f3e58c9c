"""Frames per second embedded by `vidret extract` on this machine (issue 5: at least 60).

    python benchmarks/bench_extract.py                  # 24 clips of 10 s, 640x360, 25 fps
    python benchmarks/bench_extract.py --videos 8 --frames 32
    python benchmarks/bench_extract.py --backends onnx --ray 2   # + `extract --ray`, 2 actors
    python benchmarks/bench_extract.py --backends onnx --regions 9  # + `extract --regions 9`

Writes real H.264 files from generated frames (vidret.video.synthetic), then measures:
the frame encoder alone (batches of --frames, onnxruntime and PyTorch), and the whole
`extract_dataset` (decode + sample + embed + thumbnails + write) with each backend, and
with `--ray N` the same files through Ray Data with N frame-encoder actors on a local Ray
(its wall time includes starting Ray and its actors, as a user's run does). With
`--regions N` each backend also runs with N region features a frame (`extract --regions`),
on the same files, and the output gives the size of the region file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vidret.video.decode import Sampling
from vidret.video.extract import extract_dataset
from vidret.video.frame_encoder import EfficientNetLite0
from vidret.video.synthetic import SCENES, write_video


def encoder_fps(backend: str, threads: int, batch: int, repeats: int, regions: int = 0) -> float:
    encoder = EfficientNetLite0(backend, threads=threads, regions=regions)  # type: ignore[arg-type]
    frames = np.random.default_rng(0).integers(0, 255, (batch, 224, 224, 3), dtype=np.uint8)
    encoder.encode(frames)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.encode(frames)
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backends", nargs="+", default=["onnx", "torch"])
    parser.add_argument("--ray", type=int, default=0, help="Ray actors (0: no Ray run)")
    parser.add_argument("--regions", type=int, default=0, help="also with N regions a frame")
    args = parser.parse_args()

    result: dict = {"machine": f"{platform.processor() or platform.machine()}, "
                    f"{os.cpu_count()} cores", "threads": args.threads}  # fmt: skip
    for backend in args.backends:
        result[f"encoder_only_{backend}_fps"] = round(
            encoder_fps(backend, args.threads, args.frames, 5), 1
        )
        if args.regions:
            result[f"encoder_only_{backend}_regions_{args.regions}_fps"] = round(
                encoder_fps(backend, args.threads, args.frames, 5, args.regions), 1
            )

    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        scenes = list(SCENES)
        for i in range(args.videos):
            write_video(videos / f"clip{i:03d}.mp4", scenes[i % len(scenes)], args.seconds,
                        fps=25, size=(360, 640))  # fmt: skip

        def timed(label: str, encoder: EfficientNetLite0, **ray: object) -> None:
            start = time.perf_counter()
            report = extract_dataset(
                videos, Path(tmp) / label, Sampling(frames=args.frames), encoder=encoder,
                progress=False, **ray,  # type: ignore[arg-type]
            )  # fmt: skip
            wall = time.perf_counter() - start
            result[label] = {
                "videos": len(report.added),
                "frames": report.frames,
                "wall_s": round(wall, 2),
                "frames_per_s": round(report.frames / wall, 1),
            }
            regions = Path(tmp) / label / "efficientnet_lite0.regions.npy"
            if regions.exists():
                result[label]["regions_file_mb"] = round(regions.stat().st_size / 2**20, 1)

        for backend in args.backends:
            timed(f"extract_{backend}", EfficientNetLite0(backend, threads=args.threads))  # type: ignore[arg-type]
            if args.regions:
                encoder = EfficientNetLite0(backend, threads=args.threads, regions=args.regions)  # type: ignore[arg-type]
                timed(f"extract_{backend}_regions_{args.regions}", encoder)
        if args.ray:
            ray = {"ray_address": "local", "ray_workers": args.ray}
            timed(f"extract_ray_{args.ray}_workers", EfficientNetLite0("onnx", threads=1), **ray)
    result["videos"] = f"{args.videos} x {args.seconds:g} s, 640x360, 25 fps, H.264"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
