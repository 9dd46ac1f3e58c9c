"""Moment retrieval on a moment benchmark: CDNet and the sliding-window baseline over
several trained runs (seeds), beside windows drawn at random (issue 13).

    vidret data moments ../shared/data/msrvtt-1k data/msrvtt-moments --clips 4
    for s in 0 1 2 3 4; do vidret train --config configs/cdnet.yaml \
        --data data/msrvtt-moments --out runs/cdnet/seed$s --seed $s; done
    python benchmarks/bench_moments.py --data data/msrvtt-moments \
        --runs runs/experiments/beyond-infonce/meanpool-infonce/seed{0,1,2,3,4} \
        --cdnet-runs runs/cdnet/seed{0,1,2,3,4}

Each run localizes every test moment caption in its own long video (`vidret eval`'s
moment metrics: R1/R5 at IoU 0.3/0.5/0.7, mIoU); the runs must have been trained on the
benchmark's source with its default split (data.seed 0), so no test clip was seen. The
random reference ranks the same candidate windows in a seeded random order (then the
same suppression): what the windows alone give.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from vidret.data.dataset import VideoDataset
from vidret.data.moments import video_duration
from vidret.data.splits import load_named_split
from vidret.data.timeline import window_spans
from vidret.eval.temporal import moment_metrics, non_maximum_suppression
from vidret.moments.localize import localize_with_cdnet
from vidret.moments.windows import localize_with_windows
from vidret.runs.folder import read_run_config


def random_windows(data: Path, seed: int) -> dict[str, float]:
    dataset = VideoDataset.open(data)
    moments = dataset.moments
    assert moments is not None
    index = dataset.video_index()
    rows = sorted({index[v] for v in load_named_split(data, "test", set(index))})
    rng = np.random.default_rng(seed)
    spans, truth = [], []
    for row in rows:
        windows = window_spans(video_duration(dataset.videos[row]) or 0.0)
        for i in np.flatnonzero(moments.video == row):
            spans.append(non_maximum_suppression(windows, rng.random(len(windows))))
            truth.append((moments.start[i], moments.end[i]))
    return moment_metrics(np.stack(spans), np.asarray(truth))


def summarize(results: list[dict[str, float]]) -> dict[str, str]:
    keys = list(results[0])
    out = {}
    for k in keys:
        values = [r[k] for r in results]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        out[k] = f"{statistics.mean(values):.1f} +- {sd:.1f}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--cdnet-runs", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    cdnet = []
    for run in args.cdnet_runs:  # trained on the benchmark's own training long videos
        found = localize_with_cdnet(run, args.data, "test")
        cdnet.append(moment_metrics(found.spans, found.truth))
        print(run, json.dumps({k: round(v, 2) for k, v in cdnet[-1].items()}))
    per_run, queries = [], 0
    for run in args.runs:
        cfg = read_run_config(run)
        if cfg.data.split != "random" or cfg.data.seed != 0:
            raise SystemExit(f"{run}: not trained on the default split (data.seed 0)")
        found = localize_with_windows(run, args.data, "test")
        per_run.append(moment_metrics(found.spans, found.truth))
        queries = len(found.truth)
        print(run, json.dumps({k: round(v, 2) for k, v in per_run[-1].items()}))
    chance = [random_windows(args.data, seed) for seed in range(len(args.runs))]
    report = {
        "data": str(args.data),
        "test moments": queries,
        **({"cdnet": summarize(cdnet)} if cdnet else {}),
        "sliding windows": summarize(per_run),
        "random windows": summarize(chance),
        "runs": [str(r) for r in args.runs],
        "cdnet runs": [str(r) for r in args.cdnet_runs],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
