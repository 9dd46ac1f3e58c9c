"""Which code produced a result: the package version and, in a git checkout, the commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vidret import __version__


def code_version() -> str:
    """`0.1.0+g1a2b3c4` (`.dirty` with uncommitted changes), or the bare version."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit.stdout.strip()}" + (".dirty" if dirty.stdout.strip() else "")
