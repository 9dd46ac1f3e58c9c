"""Runs that reproduce: the same numbers whatever the machine's thread default, the same
numbers after a kill at the worst moment, and no training left running by a killed
experiment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import TINY

REPO = Path(__file__).resolve().parents[1]
# A transformer backbone: its sums are split across threads, so a different thread count
# changes the losses (by ~1e-8 here) and, over a long run, the metrics.
TINY_MMT = [*TINY, "model.backbone=mmt", "loss.name=infonce"]


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def _vidret(args: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "vidret", *args, "--quiet"],
        check=True,
        capture_output=True,
        timeout=600,
        env=env,
    )


def _epochs(run: Path) -> list[dict]:
    """metrics.jsonl without the wall times, which differ between any two runs."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        r.pop("epoch_time_s", None)
        r.pop("val_time_s", None)
    return records


def test_the_same_config_gives_the_same_numbers_whatever_the_default_thread_count(
    tmp_path: Path, demo_dir: Path
) -> None:
    """Two machines whose torch defaults differ (1 and 2 threads here) train the same
    config to bit-identical losses and metrics: the count is the config's, not theirs."""
    runs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        run = tmp_path / f"machine-default-{threads}"
        overrides = [t for t in TINY_MMT if not t.startswith("train.threads")]
        _vidret(["train", "--data", str(demo_dir), "--out", str(run), *_sets(overrides)], env)
        runs.append(run)
    assert _epochs(runs[0]) == _epochs(runs[1])
    first, second = (json.loads((r / "test_metrics.json").read_text()) for r in runs)
    assert first == second
    saved = yaml.safe_load((runs[0] / "config.yaml").read_text())
    assert saved["train"]["threads"] == 1  # recorded with the run, and used on --resume


_KILL_AT_FINAL_TEST = """
import os, signal, sys
from vidret.train import trainer
def killed(self, model, state):
    os.kill(os.getpid(), signal.SIGKILL)
trainer._Trainer._final_test = killed
from vidret.cli import main
sys.argv = ["vidret", *sys.argv[1:]]
main()
"""


def test_a_run_killed_during_its_final_test_resumes_exactly(tmp_path: Path, demo_dir: Path) -> None:
    """Early stopping, then SIGKILL while scoring the test split: the resumed run trains
    no further epoch and ends with the uninterrupted run's numbers."""
    overrides = [*TINY, "train.epochs=12", "train.patience=1"]
    args = ["train", "--data", str(demo_dir), *_sets(overrides), "--quiet"]
    whole = tmp_path / "uninterrupted"
    _vidret([*args[:-1], "--out", str(whole)])
    result = json.loads((whole / "test_metrics.json").read_text())
    assert result["epochs_run"] < 12  # it did stop early, the case under test

    killed = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_AT_FINAL_TEST, *args, "--out", str(killed)],
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "test_metrics.json").exists()
    _vidret(["train", "--out", str(killed), "--resume"])
    assert _epochs(killed) == _epochs(whole)
    assert json.loads((killed / "test_metrics.json").read_text()) == result


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by its parent) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_killing_an_experiment_kills_its_trainings(tmp_path: Path, demo_dir: Path) -> None:
    """SIGKILL to `vidret experiment` (no cleanup of ours runs) ends its `vidret train`
    child too; the re-run resumes that run alone and ends with one line per epoch."""
    base = {}
    for item in [*TINY, "train.epochs=25", "train.patience=null"]:
        key, value = item.split("=")
        section, name = key.split(".")
        base.setdefault(section, {})[name] = yaml.safe_load(value)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    spec = tmp_path / "exp.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "kill",
                "data": str(demo_dir),
                "base": str(tmp_path / "base.yaml"),
                "seeds": [0],
                "variants": [{"name": "only"}],
            }
        )
    )
    out = tmp_path / "out"
    experiment = subprocess.Popen(
        [sys.executable, "-m", "vidret", "experiment", str(spec), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = out / "only" / "seed0"
    lock = run.parent / ".seed0.lock"
    try:
        # The training holds its run folder's lock; the lock file names its pid.
        owner = _wait_for(
            lambda: lock.exists() and lock.read_text().strip(), 120, "the training to start"
        )
        child = int(owner.split()[1])
        _wait_for(lambda: (run / "metrics.jsonl").exists(), 120, "a first epoch")
        experiment.send_signal(signal.SIGKILL)
        experiment.wait()
        _wait_for(lambda: not _alive(child), 15, f"the orphaned training {child} to end")
    finally:
        experiment.kill()
    done = subprocess.run(
        [sys.executable, "-m", "vidret", "experiment", str(spec), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(_epochs(run)) == 25


def test_a_run_killed_in_its_first_epoch_can_be_started_again(
    tmp_path: Path, demo_dir: Path
) -> None:
    """Killed after best.pt but before the first last.pt, a run has nothing to resume; it
    must not be refused as "already holds a run" either (the experiment runner starts
    it again)."""
    args = ["train", "--data", str(demo_dir), *_sets([*TINY, "train.epochs=1"])]
    run = tmp_path / "run"
    _vidret([*args, "--out", str(run)])
    (run / "checkpoints" / "last.pt").unlink()
    (run / "test_metrics.json").unlink()
    _vidret([*args, "--out", str(run)])
    assert len(_epochs(run)) == 1 and (run / "test_metrics.json").exists()
