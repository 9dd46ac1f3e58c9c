"""An experiment's test-time normalization rows: each finished run's test split scored
again with every normalization the experiment names, saved beside its plain metrics.

Normalization changes no training, so a run is scored once per setting and the result is
kept (`test_normalized.json`); a changed setting is scored again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vidret.experiments.runner import PlannedRun, plan
from vidret.experiments.spec import ExperimentSpec
from vidret.io import write_json_atomic
from vidret.progress import progress_bar

NORMALIZED = "test_normalized.json"  # {method: metrics with their `normalization` settings}


def read_normalized(folder: Path) -> dict[str, Any]:
    path = folder / NORMALIZED
    return json.loads(path.read_text()) if path.exists() else {}


def score_normalized(spec: ExperimentSpec, out: Path, progress: bool = True) -> None:
    """Score every finished run with each of `spec.test_normalization` not yet scored."""
    wanted = [n.normalization() for n in spec.test_normalization]
    if not wanted:
        return
    todo: list[tuple[PlannedRun, dict[str, Any]]] = []
    for r in plan(spec, out):
        if not r.done:
            continue
        have = read_normalized(r.folder)
        if any(have.get(n.method, {}).get("normalization") != n.describe() for n in wanted):
            todo.append((r, have))
    if not todo:
        return
    from vidret.eval.scoring import score_run

    for r, have in progress_bar(todo, enabled=progress, desc="test-time normalization", unit="run"):
        scores = score_run(
            r.folder, split="test", with_bank=any(n.method == "qbnorm" for n in wanted)
        )
        for n in wanted:
            have[n.method] = scores.metrics(n)
        write_json_atomic(r.folder / NORMALIZED, have)
