"""Cost of test-time normalization at the MSR-VTT full-split shape, against plain metrics.

    python benchmarks/bench_normalization.py          # 59,800 captions x 2,990 videos
    python benchmarks/bench_normalization.py --bank 5000

The similarities are random (seeded) cosines, float32, 20 captions per video, the
positives raised so the ranks are not chance. QB-Norm's banks are random too: `--bank`
training captions x the test videos (t2v) and the test captions x `--bank` training
videos (v2t); building the banks (embedding the training queries) is not timed, only
what `normalized_metrics` does with them. Each normalization runs in a process of its
own; its extra memory is that process's peak resident memory minus what it held once
the inputs were made.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

from vidret.eval.normalization import Normalization, QueryBank, normalized_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2990)
    parser.add_argument("--captions-per-video", type=int, default=20)
    parser.add_argument("--bank", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", help=argparse.SUPPRESS)  # the child's one measurement
    args = parser.parse_args()
    if args.method:
        print(json.dumps(measure(args)))
        return
    rows = []
    for method in ("none", "dual_softmax", "qbnorm"):
        child = [sys.executable, __file__, *sys.argv[1:], "--method", method]
        out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out))
    for row in rows:
        row["x_plain"] = round(row["median_s"] / rows[0]["median_s"], 1)
    n = args.videos * args.captions_per_video
    print(
        json.dumps(
            {
                "benchmark": "test-time normalization",
                "shape": [n, args.videos],
                "bank": args.bank,
                "cpus": len(os.sched_getaffinity(0)),
                "machine": platform.processor() or platform.machine(),
                "rows": rows,
            },
            indent=2,
        )
    )


def measure(args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(0)
    n = args.videos * args.captions_per_video
    c2v = np.repeat(np.arange(args.videos), args.captions_per_video)
    sims = _cosines(rng, (n, args.videos))
    sims[np.arange(n), c2v] += 0.2
    bank = QueryBank(_cosines(rng, (args.bank, args.videos)), _cosines(rng, (n, args.bank)))
    held_kb = _resident_kb()
    norm = Normalization(args.method)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        metrics = normalized_metrics(sims, c2v, norm, bank)
        times.append(time.perf_counter() - t0)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "normalization": norm.method,
        "median_s": round(statistics.median(times), 2),
        "extra_peak_gb": round(max(0, peak_kb - held_kb) / 2**20, 2),
        "Rsum": round(metrics["Rsum"], 1),
    }


def _cosines(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Uniform in [-0.3, 0.5), float32, made in place (no float64 temporary to inflate
    the peak memory measured after)."""
    out = rng.random(shape, dtype=np.float32)
    out *= 0.8
    out -= 0.3
    return out


def _resident_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


if __name__ == "__main__":
    main()
