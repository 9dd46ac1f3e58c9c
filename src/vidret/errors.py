"""Errors a user can act on: each names the file, line or key and says what to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class VidretError(Exception):
    """An error caused by input the user controls; the CLI prints it without a traceback."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can."""

    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


class DatasetError(VidretError):
    """A dataset folder that cannot be used; carries every problem found, not just the first."""

    def __init__(self, root: Path, problems: Sequence[Problem], shown: int = 50):
        self.root = root
        self.problems = list(problems)
        lines = [f"{len(self.problems)} problem(s) in dataset folder {root}:"]
        lines += [f"  {p}" for p in self.problems[:shown]]
        if len(self.problems) > shown:
            lines.append(f"  ... and {len(self.problems) - shown} more")
        lines.append(f"Run `vidret data check {root}` for a full report; see docs/datasets.md.")
        super().__init__("\n".join(lines))
