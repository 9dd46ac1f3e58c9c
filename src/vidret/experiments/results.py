"""An experiment's results: every run in results.json, and the table in results.md.

The table has one row per variant, mean +- std over seeds of the metrics papers report,
the best of each column in bold, and each variant's Rsum difference from the first
variant (or the one it names in `compare_to`) with a paired t-test over seeds (the same
seed: the same split, the same initialization of the shared parts, so pairing removes
that variation).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from scipy import stats

from vidret.experiments.runner import TIMING, plan
from vidret.experiments.spec import ExperimentSpec, config_hash
from vidret.io import atomic_open, write_json_atomic
from vidret.train.run import TEST_METRICS, read_model_info, read_run_config

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
                "folder": str(r.folder),
                "config_hash": config_hash(read_run_config(r.folder)),
                "code": read_model_info(r.folder).get("vidret_version"),
                "best_epoch": result["best_epoch"],
                "epochs_run": result["epochs_run"],
                "val": result.get("val"),
                "test": result.get("test"),
                "wall_s": json.loads(timing.read_text())["wall_s"] if timing.exists() else None,
            }
        )
    return {
        "experiment": spec.name,
        "data": spec.data,
        "seeds": spec.seeds,
        "variants": [v.name for v in spec.variants],
        "compare_to": {v.name: v.compare_to or spec.variants[0].name for v in spec.variants},
        "runs": runs,
    }


def write_results(spec: ExperimentSpec, out: Path, part: str = "test") -> tuple[Path, Path]:
    results = collect(spec, out)
    write_json_atomic(out / "results.json", results)
    with atomic_open(out / "results.md") as f:
        f.write(results_table(results, part))
    return out / "results.json", out / "results.md"


def _value(metrics: dict[str, Any], direction: str | None, key: str) -> float:
    return metrics[key] if direction is None else metrics[direction][key]


def results_table(results: dict[str, Any], part: str = "test") -> str:
    rows: dict[str, dict[int, dict[str, Any]]] = {v: {} for v in results["variants"]}
    for run in results["runs"]:
        if run.get(part):
            rows[run["variant"]][run["seed"]] = run[part]
    means = {
        v: {c: statistics.mean(_value(m, *c) for m in by_seed.values()) for c in COLUMNS}
        for v, by_seed in rows.items()
        if by_seed
    }
    best = (
        {
            c: (min if c[1] in LOWER_IS_BETTER else max)(m[c] for m in means.values())
            for c in COLUMNS
        }
        if means
        else {}
    )
    first = results["variants"][0]
    reference = {v: results.get("compare_to", {}).get(v, first) for v in results["variants"]}
    one_reference = all(r == first for r in reference.values())
    header = [
        "variant",
        "seeds",
        *(f"{d} {k}" if d else k for d, k in COLUMNS),
        f"Rsum vs {first} (paired t-test)" if one_reference else "Rsum vs (paired t-test)",
    ]
    lines = [
        f"# {results['experiment']}: {part} split, mean +- std over seeds",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
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
            cells.append(f"**{text}**" if abs(means[variant][c] - best[c]) < 1e-9 else text)
        ref = reference[variant]
        if ref == variant:
            cells.append("")
        else:
            paired = _paired(rows[ref], by_seed)
            cells.append(paired if one_reference else f"{paired} vs {ref}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _paired(reference: dict[int, Any], other: dict[int, Any]) -> str:
    seeds = sorted(set(reference) & set(other))
    if len(seeds) < 2:
        return "n/a (fewer than 2 shared seeds)"
    a = [reference[s]["Rsum"] for s in seeds]
    b = [other[s]["Rsum"] for s in seeds]
    diff = statistics.mean(b) - statistics.mean(a)
    if all(x == y for x, y in zip(a, b, strict=True)):
        return f"{diff:+.1f} (identical)"
    p = stats.ttest_rel(b, a).pvalue
    return f"{diff:+.1f} (p = {p:.3f}, n = {len(seeds)})"
