"""An experiment's fusion rows: for each seed (and fold), the runs of the variants a row
names fused into one ranking (vidret.eval.fusion), scored like any run.

A fusion trains nothing, so it is computed once its runs exist and kept in
`<row>/seed<S>.json`, with the settings hashes of the runs it fused: a retrained member
makes it computed again. Weights are chosen on each seed's validation split (or given), so
a fusion row's validation numbers are those of its own choice; its test numbers are not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vidret.experiments.runner import plan
from vidret.experiments.spec import ExperimentSpec, Variant, config_hash
from vidret.io import write_json_atomic
from vidret.runs.folder import read_run_config


def fused_runs(spec: ExperimentSpec, out: Path) -> list[dict[str, Any]]:
    """One results.json run entry per fusion row x seed x fold whose members are all done."""
    from vidret.eval.fusion import fuse_runs
    from vidret.eval.metrics import retrieval_metrics

    members = {(r.variant.name, r.seed, r.fold): r for r in plan(spec, out)}
    entries = []
    for v in spec.variants:
        if v.fuse is None:
            continue
        for seed in spec.seeds:
            for fold in spec.fold_list:
                runs = [members[(name, seed, fold)] for name in v.fuse]
                if not all(r.done for r in runs):
                    continue
                folder = (
                    out / v.slug / (f"seed{seed}" if fold is None else f"seed{seed}-fold{fold}")
                )
                hashes = [config_hash(read_run_config(r.folder)) for r in runs]
                cached = _read(folder.with_suffix(".json"))
                if cached is None or cached.get("members") != hashes:
                    fusion, S, c2v = fuse_runs([r.folder for r in runs], _weights(v), "test")
                    cached = {
                        "members": hashes,
                        "fusion": fusion.describe(),
                        "val": fusion.validation,
                        "test": retrieval_metrics(S, c2v),
                    }
                    folder.parent.mkdir(parents=True, exist_ok=True)
                    write_json_atomic(folder.with_suffix(".json"), cached)
                entries.append(
                    {
                        "variant": v.name,
                        "seed": seed,
                        "fold": fold,
                        "folder": str(folder),
                        "config_hash": "+".join(hashes),
                        "fusion": cached["fusion"],
                        "val": cached["val"],
                        "test": cached["test"],
                    }
                )
    return entries


def _weights(v: Variant) -> list[float] | None:
    if v.fuse_weights is None:
        return None
    total = sum(v.fuse_weights)
    return [w / total for w in v.fuse_weights]


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None
