"""The zero-shot index's settings and their defaults, apart from the model code so that
`vidret index --help` shows them without importing PyTorch."""

from __future__ import annotations

from vidret.errors import VidretError

POOLINGS: tuple[str, ...] = ("max", "mean", "top3")  # a video's evidence over its frames
# Chosen on a validation set of clips and queries of their own, written before scoring
# (benchmarks/tune_zero_shot.py; BENCHMARKS.md, "Zero-shot settings chosen on validation").
DEFAULT_POOLING = "mean"
DEFAULT_TOP = 3  # concepts a query is mapped to


def check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise VidretError(f"--pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")
