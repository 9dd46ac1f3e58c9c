"""Where vidret keeps what it computes once: exported models, assembled caption models,
the demo data, caption features of read-only datasets."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """vidret's own cache folder: `$VIDRET_CACHE_DIR`, else `~/.cache/vidret`."""
    return Path(os.environ.get("VIDRET_CACHE_DIR") or Path.home() / ".cache" / "vidret")
