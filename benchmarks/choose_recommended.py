"""Choose the recommended single model and fusion by cross-validation (issue 26).

    python benchmarks/choose_recommended.py runs/experiments/backbone-tuning \
        runs/experiments/ce-objective-tuning --members "ce T=0.3" "ce unified T=0.3" \
        "amenet T=0.2" "visern T=0.2" "dual T=0.2" "mmt T=0.2" --out docs/results/recommended-cv

A cross-validation experiment (`vidret experiment FILE --folds 5 --split val`) leaves, for
each variant, one run per fold, all folds cutting the same 700 training videos (the test
videos untouched). Members may come from several such experiments (the first folder that
has the variant), as long as their folds cut the same videos (checked per fold). Runs of
different variants on the same fold share its validation videos, so any set of them can be
fused there (vidret.eval.fusion). Every subset of the members is fused with **equal
weights** (nothing fitted on the fold that scores it: the standardization uses no labels)
and scored by its validation Rsum, mean over folds; a one-member subset is that model
alone. The best single member and the best subset are the recommended model and fusion;
the test split is never read.
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
from pathlib import Path

from vidret.eval.fusion import check_same_split, choose_fusion
from vidret.eval.metrics import retrieval_metrics
from vidret.eval.scoring import score_run
from vidret.experiments.results import paired_difference
from vidret.io import atomic_open, write_json_atomic


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "experiments", type=Path, nargs="+", help="cross-validation experiments' folders"
    )
    parser.add_argument("--members", nargs="+", required=True, help="variant names")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    val: dict[str, list] = {}
    c2v = {}
    fold_runs: dict[int, list[Path]] = {fold: [] for fold in range(args.folds)}
    for member in args.members:
        found = [e / slug(member) for e in args.experiments if (e / slug(member)).is_dir()]
        if not found:
            raise SystemExit(f"no folder {slug(member)!r} in {[str(e) for e in args.experiments]}")
        val[member] = []
        for fold in range(args.folds):
            run = found[0] / f"seed{args.seed}-fold{fold}"
            fold_runs[fold].append(run)
            scores = score_run(run, split="val")
            val[member].append(scores.sims)
            c2v.setdefault(fold, scores.caption_to_video)
    for runs in fold_runs.values() if len(args.members) > 1 else ():
        check_same_split(runs)  # the same validation videos, fold by fold
    rows = []
    for size in range(1, len(args.members) + 1):
        for subset in itertools.combinations(args.members, size):
            per_fold = []
            for fold in range(args.folds):
                sims = [val[m][fold] for m in subset]
                if size == 1:
                    per_fold.append(retrieval_metrics(sims[0], c2v[fold])["Rsum"])
                    continue
                equal = [1.0 / size] * size
                fusion = choose_fusion(list(subset), sims, c2v[fold], equal)
                per_fold.append(fusion.validation["Rsum"])
            rows.append(
                {
                    "members": list(subset),
                    "val_Rsum_mean": statistics.mean(per_fold),
                    "val_Rsum_std": statistics.stdev(per_fold),
                    "per_fold": per_fold,
                }
            )
    rows.sort(key=lambda r: -r["val_Rsum_mean"])
    singles = [r for r in rows if len(r["members"]) == 1]
    best_single = {fold: {"Rsum": x} for fold, x in enumerate(singles[0]["per_fold"])}
    for r in rows:  # how far each subset is from the best single model, fold by fold
        own = {fold: {"Rsum": x} for fold, x in enumerate(r["per_fold"])}
        r["vs_best_single"] = paired_difference(best_single, own)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "results.json", {
        "experiments": [str(e) for e in args.experiments], "folds": args.folds, "seed": args.seed,
        "weights": "equal", "recommended_single": singles[0]["members"][0],
        "recommended_fusion": rows[0]["members"], "subsets": rows,
    })  # fmt: skip
    lines = [
        f"# Recommended model and fusion: {args.folds}-fold cross-validation "
        f"({', '.join(e.name for e in args.experiments)}, seed {args.seed}), validation Rsum",
        "",
        "Every subset of the members fused with equal weights on each fold's validation "
        "videos (each run standardized by its own validation matrix); mean +- std over "
        "folds. The test split is not read.",
        "",
        f"| members | validation Rsum (mean +- std over folds) | vs {singles[0]['members'][0]} "
        "(paired over folds) |",
        "| --- | --- | --- |",
    ]
    for r in rows:
        mean_std = f"{r['val_Rsum_mean']:.1f} +- {r['val_Rsum_std']:.1f}"
        lines.append(f"| {' + '.join(r['members'])} | {mean_std} | {r['vs_best_single']} |")
    lines += ["", f"Recommended single model: **{singles[0]['members'][0]}**; recommended "
              f"fusion: **{' + '.join(rows[0]['members'])}**."]  # fmt: skip
    with atomic_open(args.out / "results.md") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
