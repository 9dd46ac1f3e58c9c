"""Run logs: one JSON line per epoch in metrics.jsonl, and TensorBoard scalars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vidret.json_output import dumps
from vidret.progress import note


class RunLogger:
    def __init__(self, run_dir: Path, resume_after_epoch: int | None = None):
        self.path = run_dir / "metrics.jsonl"
        if resume_after_epoch is not None and self.path.exists():
            # Drop lines of epochs the checkpoint does not contain (written before a kill).
            keep = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["epoch"] <= resume_after_epoch
            ]
            self.path.write_text("".join(line + "\n" for line in keep))
        elif resume_after_epoch is None:
            self.path.write_text("")
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_after_epoch is None else resume_after_epoch + 1
            self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)
        except ImportError:  # TensorBoard is optional; metrics.jsonl has everything
            pass

    def log_epoch(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(dumps(record) + "\n")
        if self._tb is not None:
            for key, value in _flatten(record).items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, record["epoch"])
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def say_epoch(
    epoch: int,
    epochs: int,
    loss: float,
    seconds: float,
    validation: tuple[str, float, float, int] | None = None,
    extra: str = "",
) -> None:
    """One line per epoch, the same for every trainer (a log file gets these instead of
    progress bars): loss, then `validation` = (metric, value, best so far, its epoch)."""
    line = f"epoch {epoch}/{epochs}  loss {loss:.4f}"
    if validation is not None:
        metric, value, best, best_epoch = validation
        line += f"  val {metric} {value:.2f}  (best {best:.2f} at epoch {best_epoch})"
    note(line + extra + f"  {seconds:.1f} s")


def say_early_stop(metric: str, stale: int, patience: int | None, best_epoch: int) -> None:
    note(
        f"stopping early: validation {metric} has not improved for {stale} epochs "
        f"(train.patience={patience}); testing the best epoch, {best_epoch}"
    )
