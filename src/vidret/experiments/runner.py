"""Run every variant x seed of an experiment; finished runs are skipped, killed ones resumed.

Each run is `vidret train` in a process of its own (one torch thread, `jobs` at a time),
so an experiment survives a crash of one run and uses the cores of the machine. The
children end with the experiment, however it ends (`vidret.child_process`), and one
experiment at a time writes a folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from vidret.child_process import child_environment
from vidret.config import load_config
from vidret.errors import VidretError
from vidret.experiments.spec import ExperimentSpec, Variant, config_hash
from vidret.io import require_folder_or_nothing, write_json_atomic
from vidret.locking import folder_lock
from vidret.progress import note, on_terminal, progress_bar
from vidret.runs.folder import CONFIG, LAST, TEST_METRICS, read_run_config

# Every run of an experiment gets these on top of its variant's overrides.
RUN_OVERRIDES = ["train.threads=1"]

TIMING = "experiment_run.json"


@dataclass(frozen=True)
class PlannedRun:
    variant: Variant
    seed: int
    folder: Path
    fold: int | None = None  # with cross-validation (--folds)

    @property
    def done(self) -> bool:
        return (self.folder / TEST_METRICS).exists()


def plan(spec: ExperimentSpec, out: Path) -> list[PlannedRun]:
    return [
        PlannedRun(v, s, out / v.slug / (f"seed{s}" if f is None else f"seed{s}-fold{f}"), f)
        for v in spec.trained
        for s in spec.seeds
        for f in spec.fold_list
    ]


def run_experiment(
    spec: ExperimentSpec, out: Path, jobs: int = 1, progress: bool = True
) -> list[str]:
    """Train what is missing; returns the errors of failed runs (empty when all succeeded)."""
    require_folder_or_nothing(out)
    with folder_lock(out, what="runs an experiment in"):
        return _run_all(spec, out, jobs, progress)


def _run_all(spec: ExperimentSpec, out: Path, jobs: int, progress: bool) -> list[str]:
    runs = plan(spec, out)
    check_not_stale(spec, runs)
    todo = [r for r in runs if not r.done]
    errors: list[str] = []
    bar = progress_bar(
        total=len(runs),
        initial=len(runs) - len(todo),
        unit="run",
        enabled=progress,
        desc=spec.name,
    )
    children: set[subprocess.Popen] = set()
    finished = len(runs) - len(todo)
    try:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            futures = {pool.submit(_train_one, spec, r, children): r for r in todo}
            for future in as_completed(futures):
                r = futures[future]
                error = future.result()
                if error:
                    errors.append(f"{r.variant.name} / {r.folder.name}: {error}")
                bar.set_postfix_str(f"last: {r.variant.slug} {r.folder.name}")
                bar.update(1)
                finished += 1  # a disabled bar does not count, so count here
                if not on_terminal():
                    status = f"failed: {error}" if error else "done"
                    note(f"[{finished}/{len(runs)}] {r.variant.slug} {r.folder.name}: {status}")
    finally:
        for child in list(children):  # an exception or Ctrl-C here: stop the trainings
            child.terminate()
    bar.close()
    return errors


def run_settings(spec: ExperimentSpec, r: PlannedRun) -> tuple[str, list[str]]:
    """The config file and `--set` overrides this run is trained with."""
    overrides = spec.overrides(r.variant, r.seed, r.fold)
    return r.variant.base or spec.base, [*RUN_OVERRIDES, *overrides]


def check_not_stale(spec: ExperimentSpec, runs: list[PlannedRun]) -> None:
    """Refuse to reuse (or resume) a run whose settings are no longer the experiment's:
    after an edit of the experiment file its rows would silently mix old and new."""
    stale = []
    for r in runs:
        if not (r.folder / CONFIG).exists():
            continue
        expected = config_hash(load_config(*run_settings(spec, r)))
        if config_hash(read_run_config(r.folder)) != expected:
            stale.append(str(r.folder))
    if stale:
        raise VidretError(
            f"{len(stale)} run folder(s) were trained with other settings than the experiment "
            f"file now gives (first: {stale[0]}); delete them, or use another --out"
        )


def _train_one(spec: ExperimentSpec, r: PlannedRun, children: set[subprocess.Popen]) -> str | None:
    r.folder.parent.mkdir(parents=True, exist_ok=True)
    if (r.folder / LAST).exists():
        args = ["train", "--out", str(r.folder), "--resume"]
    else:
        base, overrides = run_settings(spec, r)
        args = ["train", "--data", str(spec.data_path()), "--config", base, "--out", str(r.folder)]
        for item in overrides:
            args += ["--set", item]
    log = r.folder.parent / f"{r.folder.name}.log"
    started = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vidret", *args, "--quiet"],
            stdout=f,
            stderr=subprocess.STDOUT,
            env=child_environment(),
        )
        children.add(proc)
        try:
            proc.wait()
        finally:
            children.discard(proc)
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        return f"exit {proc.returncode}: {tail[0]} (log: {log})"
    timing = r.folder / TIMING
    previous = json.loads(timing.read_text())["wall_s"] if timing.exists() else 0.0
    write_json_atomic(timing, {"wall_s": previous + time.perf_counter() - started})
    return None
