"""Time and peak extra memory of `retrieval_metrics` at the MSR-VTT full-split shape.

    python benchmarks/bench_metrics.py            # 59,800 captions x 2,990 videos
    python benchmarks/bench_metrics.py --threads 1

The matrix is random (seeded), float32, 20 captions per video. Extra memory is what the
metric code allocates beyond the input matrix, measured with tracemalloc (NumPy reports
its allocations to it). Targets (issue 2): under 0.8 s, under 1 GB extra.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np

from vidret.eval.metrics import retrieval_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2990)
    parser.add_argument("--captions-per-video", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n = args.videos * args.captions_per_video
    sims = rng.standard_normal((n, args.videos), dtype=np.float32)
    c2v = np.repeat(np.arange(args.videos), args.captions_per_video)

    t0 = time.perf_counter()
    float(sims.sum())
    read_once = time.perf_counter() - t0

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        retrieval_metrics(sims, c2v, threads=args.threads)
        times.append(time.perf_counter() - t0)

    tracemalloc.start()
    retrieval_metrics(sims, c2v, threads=args.threads)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    result = {
        "benchmark": "retrieval_metrics",
        "shape": [n, args.videos],
        "threads": args.threads or len(os.sched_getaffinity(0)),
        "median_s": round(statistics.median(times), 3),
        "best_s": round(min(times), 3),
        "read_matrix_once_s": round(read_once, 3),
        "peak_extra_mb": round(peak / 2**20, 1),
        "matrix_mb": round(sims.nbytes / 2**20, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
