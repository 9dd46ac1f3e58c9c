"""Train configs over seeds on a dataset and print mean +- std tables (validation and test).

    python benchmarks/seeds_table.py --data ../shared/data/msrvtt-1k \
        --configs configs/meanpool-infonce.yaml configs/mmt-triplet.yaml --seeds 0 1 2 \
        --out runs/bench --jobs 2 [--set train.epochs=50 ...] [--show val]

Runs already finished in --out are reused, so an interrupted table resumes. This is the
script that produced the tables of issues 3 and 4 in BENCHMARKS.md; for new tables,
`vidret experiment` does the same from an experiment file, with a paired test. Each run is
`vidret train` in its own process (one torch thread each, `--jobs` at a time). Tune with
`--show val`; report test only for settings chosen on validation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vidret.experiments.results import COLUMNS

METRICS = [c for c in COLUMNS if c[0] is not None]  # Rsum is added separately


def run_one(data: str, config: str, seed: int, run: Path, overrides: list[str]) -> Path:
    if (run / "test_metrics.json").exists():
        return run
    args = [
        sys.executable,
        "-m",
        "vidret",
        "train",
        "--data",
        data,
        "--config",
        config,
        "--seed",
        str(seed),
        "--out",
        str(run),
        "--quiet",
        "--set",
        "train.threads=1",
    ]
    if (run / "checkpoints" / "last.pt").exists():
        args = [sys.executable, "-m", "vidret", "train", "--out", str(run), "--resume", "--quiet"]
    for item in overrides:
        args += ["--set", item]
    log = run.with_suffix(".log")
    run.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, check=True)
    return run


def summarize(runs: list[Path], part: str) -> dict[str, str]:
    rows = [json.loads((r / "test_metrics.json").read_text())[part] for r in runs]
    out = {}
    for direction, key in [*METRICS, (None, "Rsum")]:
        values = [r[key] if direction is None else r[direction][key] for r in rows]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        out[key if direction is None else f"{direction} {key}"] = (
            f"{statistics.mean(values):.1f} +- {sd:.1f}"
        )
    epochs = []
    for r in runs:
        lines = [json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()]
        epochs += [x["epoch_time_s"] for x in lines]
    out["s/epoch"] = f"{statistics.median(epochs):.2f}"
    out["epochs"] = (
        f"{statistics.mean(len((r / 'metrics.jsonl').read_text().splitlines()) for r in runs):.0f}"
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--configs", nargs="+", required=True)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=Path("runs/bench"))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--tag", default="", help="suffix of run folder names (for sweeps)")
    p.add_argument("--show", choices=["val", "test", "both"], default="both")
    args = p.parse_args()

    tasks = [
        (c, s, args.out / f"{Path(c).stem}{args.tag}-seed{s}")
        for c in args.configs
        for s in args.seeds
    ]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda t: run_one(args.data, t[0], t[1], t[2], args.overrides), tasks))

    parts = ["val", "test"] if args.show == "both" else [args.show]
    for part in parts:
        print(
            f"\n{part} (best validation epoch), mean +- std over seeds {args.seeds}"
            + (f", overrides {args.overrides}" if args.overrides else "")
        )
        header = None
        for config in args.configs:
            runs = [t[2] for t in tasks if t[0] == config]
            row = summarize(runs, part)
            if header is None:
                header = list(row)
                print("| config | " + " | ".join(header) + " |")
                print("|---" * (len(header) + 1) + "|")
            print(f"| {Path(config).stem} | " + " | ".join(row[h] for h in header) + " |")


if __name__ == "__main__":
    main()
