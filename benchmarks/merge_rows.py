"""Add one experiment's rows to another's table, when both ran the same protocol.

A variant that one experiment already ran (same data, split, seeds and settings) need not
be trained again to stand in another experiment's table: its runs are copied from the
source results.json into the target's, with the source named in the variant's definition,
and results.md is written again, paired tests included (pairs are by seed).

    python benchmarks/merge_rows.py docs/results/objectives/results.json \
        docs/results/seed-models --variant "ce, InfoNCE" \
        --compare-to "meanpool, InfoNCE" "mmt, InfoNCE" "amenet, InfoNCE"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidret.experiments.results import results_table
from vidret.io import atomic_open, write_json_atomic


def merge_rows(
    source: Path,
    target: Path,
    variant: str,
    compare_to: list[str],
    spec: Path | None = None,
    as_name: str | None = None,
    compared_by: list[str] | None = None,
    split: str = "test",
) -> None:
    """Copy `variant`'s runs from `source` into `target`'s table (named `as_name` there).
    `spec`: an experiment file to start `target` from when it has no results.json yet (its
    variants and definitions, no runs). `compared_by`: rows of `target` to test against
    the copied row too (their paired difference is theirs minus its). `split`: the part
    results.md reports (val for a tuning grid run with `--split val`)."""
    if spec is not None and not (target / "results.json").exists():
        from vidret.experiments.results import write_results
        from vidret.experiments.spec import load_experiment

        target.mkdir(parents=True, exist_ok=True)
        write_results(load_experiment(spec), target)
    src = json.loads(source.read_text())
    dst = json.loads((target / "results.json").read_text())
    name = as_name or variant
    runs = [{**r, "variant": name} for r in src["runs"] if r["variant"] == variant]
    if not runs:
        raise SystemExit(f"{source}: no runs of variant {variant!r} (it has {src['variants']})")
    if src["data"] != dst["data"] or src.get("folds") != dst.get("folds"):
        raise SystemExit(f"{source} and {target}: other data or folds; rows would not compare")
    missing = sorted(set(dst["seeds"]) - {r["seed"] for r in runs})
    if missing:
        raise SystemExit(f"{source}: {variant!r} has no runs for seeds {missing}")
    unknown = [c for c in compare_to if c not in dst["variants"] and c != name]  # self: no test
    if unknown:
        raise SystemExit(f"{target}: no variant {unknown[0]!r} to compare with")
    dst["runs"] = [r for r in dst["runs"] if r["variant"] != name] + runs
    if name not in dst["variants"]:
        dst["variants"].append(name)
    if compare_to or name not in dst.get("compare_to", {}):
        dst.setdefault("compare_to", {})[name] = compare_to or [dst["variants"][0]]
    for other in compared_by or []:
        if other not in dst["variants"]:
            raise SystemExit(f"{target}: no variant {other!r} to test against {name!r}")
        tests = dst["compare_to"].get(other) or []
        dst["compare_to"][other] = [*(c for c in tests if c not in (other, name)), name]
    definition = (dst.get("definitions") or {}).get(name) or (src.get("definitions") or {}).get(
        variant
    )
    origin = f"{source}, variant {variant!r}"
    if definition is not None and "set" in definition:
        dst.setdefault("definitions", {})[name] = {
            **definition,
            "set": {**definition["set"], "(runs from)": origin},
        }
    else:  # a source written before results.json kept definitions: name where it is from
        dst.setdefault("definitions", {})[name] = {
            "base": "as defined in the source experiment",
            "set": {"(runs from)": origin},
        }
    write_json_atomic(target / "results.json", dst)
    with atomic_open(target / "results.md") as f:
        f.write(results_table(dst, split))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="results.json holding the variant's runs")
    parser.add_argument("target", type=Path, help="experiment results folder to add it to")
    parser.add_argument("--variant", required=True)
    parser.add_argument("--compare-to", nargs="*", default=[])
    parser.add_argument("--spec", type=Path, help="experiment file to start a new target from")
    parser.add_argument("--as", dest="as_name", help="the row's name in the target")
    parser.add_argument(
        "--compared-by", nargs="*", default=[], help="rows of the target to test against it"
    )
    parser.add_argument(
        "--split", choices=["val", "test"], default="test", help="the part results.md reports"
    )
    args = parser.parse_args()
    merge_rows(
        args.source, args.target, args.variant, args.compare_to, args.spec, args.as_name,
        args.compared_by, args.split,
    )  # fmt: skip
    print(f"{args.target / 'results.md'}: {args.as_name or args.variant!r} added")


if __name__ == "__main__":
    main()
