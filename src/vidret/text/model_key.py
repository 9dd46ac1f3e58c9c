"""A model folder's name in vidret's caches: the caption cache, the ONNX exports, the
static tables distilled from it, the concept names it encoded."""

from __future__ import annotations

import hashlib
from pathlib import Path


def model_key(model_path: Path) -> str:
    """A readable, collision-safe name for a model folder: its name plus a hash of its config."""
    config = model_path / "config.json"
    digest = hashlib.sha1(str(model_path.resolve()).encode())
    if config.exists():
        digest = hashlib.sha1(config.read_bytes())
    return (
        f"{model_path.name if model_path.name != 'model' else model_path.parent.name}-"
        + (digest.hexdigest()[:8])
    )
