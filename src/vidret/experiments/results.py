"""An experiment's results: every run in results.json, and the table in results.md.

The table has one row per variant, mean +- std over seeds of the metrics papers report,
the best of each column in bold, and each variant's Rsum difference from the first
variant (or the ones it names in `compare_to`: a column each) with a paired t-test over
seeds (the same seed: the same split, the same initialization of the shared parts, so
pairing removes that variation).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from scipy import stats

from vidret.eval.normalization import Normalization
from vidret.experiments.fused import fused_runs
from vidret.experiments.normalized import read_normalized
from vidret.experiments.runner import TIMING, plan
from vidret.experiments.spec import ExperimentSpec, Variant, config_hash
from vidret.io import atomic_open, write_json_atomic
from vidret.runs.folder import TEST_METRICS, read_model_info, read_run_config

COLUMNS = [
    ("t2v", "R@1"),
    ("t2v", "R@5"),
    ("t2v", "R@10"),
    ("t2v", "MdR"),
    ("v2t", "R@1"),
    ("v2t", "R@5"),
    ("v2t", "R@10"),
    ("v2t", "MdR"),
    (None, "Rsum"),
]
LOWER_IS_BETTER = {"MdR", "MnR"}


def collect(spec: ExperimentSpec, out: Path) -> dict[str, Any]:
    runs = []
    for r in plan(spec, out):
        if not r.done:
            continue
        result = json.loads((r.folder / TEST_METRICS).read_text())
        timing = r.folder / TIMING
        runs.append(
            {
                "variant": r.variant.name,
                "seed": r.seed,
                "fold": r.fold,
                "folder": str(r.folder),
                "config_hash": config_hash(read_run_config(r.folder)),
                "code": read_model_info(r.folder).get("vidret_version"),
                "best_epoch": result["best_epoch"],
                "epochs_run": result["epochs_run"],
                "val": result.get("val"),
                "test": result.get("test"),
                "test_normalized": read_normalized(r.folder) or None,
                "wall_s": json.loads(timing.read_text())["wall_s"] if timing.exists() else None,
            }
        )
    runs += fused_runs(spec, out)
    return {
        "experiment": spec.name,
        "data": spec.data,
        "seeds": spec.seeds,
        "folds": spec.folds,
        "variants": [v.name for v in spec.variants],
        "compare_to": {v.name: v.references(spec.variants[0].name) for v in spec.variants},
        # what each variant is: its base config and the keys it sets over it
        "definitions": {v.name: _definition(spec, v) for v in spec.variants},
        "test_normalization": [n.normalization().describe() for n in spec.test_normalization],
        "paper": None if spec.paper is None else spec.paper.model_dump(),
        "runs": runs,
    }


def _definition(spec: ExperimentSpec, v: Variant) -> dict[str, Any]:
    if v.fuse is not None:
        weights = v.fuse_weights or "chosen on each seed's validation split"
        return {"fuse": v.fuse, "weights": weights}
    return {"base": v.base or spec.base, "set": v.set}


def write_results(spec: ExperimentSpec, out: Path, part: str = "test") -> tuple[Path, Path]:
    results = collect(spec, out)
    write_json_atomic(out / "results.json", results)
    with atomic_open(out / "results.md") as f:
        f.write(results_table(results, part))
    return out / "results.json", out / "results.md"


def _value(metrics: dict[str, Any], direction: str | None, key: str) -> float:
    return metrics[key] if direction is None else metrics[direction][key]


def results_table(results: dict[str, Any], part: str = "test") -> str:
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    references: dict[str, list[str]] = {}
    first = results["variants"][0]
    methods = [n["method"] for n in results.get("test_normalization", [])] if part == "test" else []
    for v in results["variants"]:
        rows[v] = {}
        named = results.get("compare_to", {}).get(v, first)  # a string in older results.json
        references[v] = [named] if isinstance(named, str) else named
        for method in methods:  # a normalized row is tested against its own plain row
            rows[f"{v} + {NORMALIZATION_NAMES[method]}"] = {}
            references[f"{v} + {NORMALIZATION_NAMES[method]}"] = [v]
    folds = results.get("folds") or 0
    # One seed with folds (a tuning grid): the folds are the units, spread and pairing
    # over them; else the folds of a seed are averaged into the seed's number.
    per_fold = bool(folds) and len(results.get("seeds") or []) == 1
    by_unit: dict[str, dict[int, list[dict[str, Any]]]] = {v: {} for v in rows}
    for run in results["runs"]:
        unit = run.get("fold") if per_fold else run["seed"]
        if run.get(part):
            by_unit[run["variant"]].setdefault(unit, []).append(run[part])
        for method in methods:
            scored = (run.get("test_normalized") or {}).get(method)
            if scored:
                row = f"{run['variant']} + {NORMALIZATION_NAMES[method]}"
                by_unit[row].setdefault(unit, []).append(scored)
    for row, units in by_unit.items():  # a seed's folds: their mean is the seed's number
        rows[row] = {unit: _mean_metrics(runs) for unit, runs in units.items()}
    # bold marks the best plain row: normalized numbers are not compared with plain ones
    means = {
        v: {c: statistics.mean(_value(m, *c) for m in by_seed.values()) for c in COLUMNS}
        for v, by_seed in rows.items()
        if by_seed
    }
    plain = [v for v in results["variants"] if v in means]
    best = (
        {c: (min if c[1] in LOWER_IS_BETTER else max)(means[v][c] for v in plain) for c in COLUMNS}
        if plain
        else {}
    )
    one_reference = all(r == [first] for v, r in references.items() if v in results["variants"])
    tests = max(len(r) for r in references.values())
    header = [
        "variant",
        "folds" if per_fold else "seeds",
        *(f"{d} {k}" if d else k for d, k in COLUMNS),
        f"Rsum vs {first} (paired t-test)" if one_reference else "Rsum vs (paired t-test)",
        *(f"Rsum vs (paired t-test {i + 1})" for i in range(1, tests)),
    ]
    if per_fold:
        over = f"{part} split, mean +- std over {folds} folds (one seed; tests paired by fold)"
    elif folds:
        over = f"{part} split, mean over {folds} folds, then mean +- std over seeds"
    else:
        over = f"{part} split, mean +- std over seeds"
    lines = [
        f"# {results['experiment']}: {over}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    if methods:
        settings = "; ".join(_describe(n) for n in results["test_normalization"])
        lines[1:1] = [
            "",
            "Rows marked `+ dual softmax` / `+ QB-Norm` score the same runs' test split with "
            f"test-time normalization ({settings}), each tested against its plain row; "
            "unmarked rows use plain similarities.",
        ]
    for variant, by_seed in rows.items():
        if not by_seed:
            lines.append(f"| {variant} | 0 |" + " |" * (len(header) - 2))
            continue
        cells = [variant, str(len(by_seed))]
        for c in COLUMNS:
            values = [_value(m, *c) for m in by_seed.values()]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            text = f"{statistics.mean(values):.1f} +- {sd:.1f}"
            is_best = variant in plain and abs(means[variant][c] - best[c]) < 1e-9
            cells.append(f"**{text}**" if is_best else text)
        for ref in references[variant]:
            if ref == variant:
                cells.append("")
            else:
                paired = paired_difference(rows[ref], by_seed)
                cells.append(paired if one_reference and ref == first else f"{paired} vs {ref}")
        cells += [""] * (len(header) - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
    if results.get("definitions"):
        lines += ["", "## The variants", ""]
        for name, d in results["definitions"].items():
            if "fuse" in d:
                members = " + ".join(f"*{m}*" for m in d["fuse"])  # names may hold commas
                lines.append(f"- **{name}**: the runs of {members} fused (vidret.eval.fusion), "
                             f"weights {d['weights']}")  # fmt: skip
                continue
            given = ", ".join(f"{k}={json.dumps(v)}" for k, v in d["set"].items()) or "nothing"
            lines.append(f"- **{name}**: `{d['base']}`, setting {given}")
    if results.get("paper"):
        lines += ["", *paper_table(results["paper"], header[: len(COLUMNS) + 2])]
    return "\n".join(lines) + "\n"


def paper_table(paper: dict[str, Any], header: list[str]) -> list[str]:
    """The published numbers for our rows, in the same columns."""
    lines = [
        f"## The paper beside us: {paper['source']}",
        "",
        paper["differs"],
        "",
        "| " + " | ".join(["row", *header[2:]]) + " |",
        "|" + "---|" * (len(header) - 1),
    ]
    for row, values in paper["rows"].items():
        cells = ["-" if v is None else f"{v:.1f}" for v in values]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def _mean_metrics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of several metrics dicts of the same shape (a seed's folds)."""
    if len(runs) == 1:
        return runs[0]
    first = runs[0]
    return {
        k: _mean_metrics([r[k] for r in runs])
        if isinstance(first[k], dict)
        else statistics.mean(r[k] for r in runs)
        for k in first
        if isinstance(first[k], (dict, int, float)) and not isinstance(first[k], bool)
    }


NORMALIZATION_NAMES = {"dual_softmax": "dual softmax", "qbnorm": "QB-Norm"}


def _describe(settings: dict[str, Any]) -> str:
    """A normalization's settings as its label says them, and where its statistics come
    from (the test queries for dual softmax, a training bank for QB-Norm)."""
    label = Normalization(**settings).label()
    if settings["method"] == "dual_softmax":
        return f"{label} over the test queries"
    return f"{label} with a query bank from the run's training captions and videos"


def paired_difference(reference: dict[int, Any], other: dict[int, Any]) -> str:
    """`other`'s mean Rsum minus `reference`'s, with a paired t-test over the seeds (or
    folds) both have: `{seed: {"Rsum": ...}}` each."""
    seeds = sorted(set(reference) & set(other))
    if len(seeds) < 2:
        return "n/a (fewer than 2 shared seeds)"
    a = [reference[s]["Rsum"] for s in seeds]
    b = [other[s]["Rsum"] for s in seeds]
    diff = statistics.mean(b) - statistics.mean(a)
    if all(x == y for x, y in zip(a, b, strict=True)):
        return f"{diff:+.1f} (identical)"
    p = stats.ttest_rel(b, a).pvalue
    few = ": too few seeds for a test" if len(seeds) < 3 else ""
    shown = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"  # not "p = 0.000"
    return f"{diff:+.1f} ({shown}, n = {len(seeds)}{few})"
