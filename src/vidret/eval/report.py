"""`vidret report`: look at a run or an experiment: curves and tables as PNG and Markdown."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from vidret.errors import VidretError
from vidret.eval import figures
from vidret.io import require_folder_or_nothing
from vidret.runs.logger import read_metrics


def report(folder: Path, out: Path | None = None, say: Callable[[str], None] = print) -> list[Path]:
    """A run folder gets its training curves; an experiment folder its table, its per-run
    results.json, a bar chart of Rsum per variant and the validation curves of every
    variant (runs whose folders are gone, e.g. rows merged from another experiment, are
    left out of the curves, and `say` tells which)."""
    is_run = (folder / "metrics.jsonl").is_file()
    if not folder.is_dir():
        raise VidretError(f"{folder}: no such folder; give a run folder or an experiment folder")
    if not is_run and not (folder / "results.json").is_file():
        raise VidretError(
            f"{folder}: neither a run folder (metrics.jsonl) nor an experiment folder "
            "(results.json)"
        )
    out = out or folder / "report"
    require_folder_or_nothing(out)
    out.mkdir(parents=True, exist_ok=True)
    if is_run:
        records = read_metrics(folder)
        if not records:
            raise VidretError(f"{folder}: the run has not finished an epoch yet")
        return [figures.training_curves(records, out / "training_curves.png")]
    results = json.loads((folder / "results.json").read_text())
    paths = [figures.variants_bar(results, out / "rsum.png")]
    curves: dict[str, list[list[float]]] = {}
    gone = []
    for run in results["runs"]:
        if "fusion" in run:  # a fusion row trained nothing: no curve
            continue
        if not (Path(run["folder"]) / "metrics.jsonl").is_file():
            gone.append(run["folder"])
            continue
        records = read_metrics(Path(run["folder"]))
        if records and "val" in records[0]:
            curves.setdefault(run["variant"], []).append([r["val"]["Rsum"] for r in records])
    if gone:
        say(
            f"validation curves: {len(gone)} run folder(s) are not here (e.g. {gone[0]}); "
            "their curves are left out (the table and the Rsum chart keep their numbers)"
        )
    if curves:
        paths.append(figures.variants_curves(curves, out / "validation_curves.png"))
    for name in ("results.md", "results.json"):  # the table, and every run's numbers
        shutil.copyfile(folder / name, out / name)
        paths.append(out / name)
    return paths
