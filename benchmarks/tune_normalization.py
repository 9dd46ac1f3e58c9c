"""Tune test-time normalization on the validation split of an experiment's runs.

    python benchmarks/tune_normalization.py runs/experiments/test-time-normalization

For every finished run of the experiment folder, the validation split is scored once
(with QB-Norm's query bank from the run's training part) and then normalized with each
setting of the grid; the table gives each variant's mean validation Rsum per setting,
and the best setting per method over all variants (one setting for all backbones, as a
user would ship it). The test split is never read.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from vidret.eval.normalization import Normalization
from vidret.eval.scoring import score_run

GRID = [Normalization()]
GRID += [Normalization("dual_softmax", temperature=t) for t in (0.005, 0.01, 0.02, 0.05, 0.1)]
GRID += [Normalization("qbnorm", beta=b) for b in (5.0, 10.0, 20.0, 40.0)]
GRID += [Normalization("qbnorm", beta=b, dynamic=False) for b in (10.0, 20.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, help="an experiment's --out folder")
    args = parser.parse_args()

    rsum: dict[str, dict[str, list[float]]] = {}
    for run in sorted(p.parent for p in args.experiment.glob("*/seed*/test_metrics.json")):
        scores = score_run(run, split="val", with_bank=True)
        variant = rsum.setdefault(run.parent.name, {})
        for norm in GRID:
            variant.setdefault(norm.label(), []).append(scores.metrics(norm)["Rsum"])
    labels = [n.label() for n in GRID]
    print("| setting | " + " | ".join(rsum) + " | mean |")
    print("|---|" + "---|" * (len(rsum) + 1))
    means = {}
    for label in labels:
        cells = [statistics.mean(rsum[v][label]) for v in rsum]
        means[label] = statistics.mean(cells)
        print(f"| {label} | " + " | ".join(f"{c:.1f}" for c in cells) + f" | {means[label]:.1f} |")
    best = {}
    for method in ("dual_softmax", "qbnorm"):
        candidates = [n for n in GRID if n.method == method]
        best[method] = max(candidates, key=lambda n: means[n.label()]).describe()
    print(json.dumps({"runs_per_variant": {v: len(r[labels[0]]) for v, r in rsum.items()},
                      "best_on_validation": best}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
