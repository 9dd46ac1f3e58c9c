"""Score fusion: several trained runs' similarity matrices combined into one ranking.

Each run's similarities are standardized with the mean and standard deviation of its own
validation matrix (runs of different objectives live on different scales: InfoNCE's
cosines crowd near 1, a hard margin's spread out), then summed with weights that add up to
1. `weights="auto"` picks them on the validation split only, by the best validation Rsum
over a grid of the simplex (step 0.1, equal weights tried first so a tie keeps them); the
test split never chooses anything. Runs of one config with different seeds are the
simplest fusion: an ensemble.

For cosine models a weighted sum of similarities is one inner product over the
concatenated, weighted vectors (`vector_scales`): sum_i w_i (t_i.v_i - m_i) / s_i equals
[sqrt(w_i / s_i) t_i]_i . [sqrt(w_i / s_i) v_i]_i minus a constant, the same ranking, which
is how an index serves a fusion with one search.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidret.errors import VidretError

if TYPE_CHECKING:
    from vidret.eval.scoring import RunScores

GRID_STEP = 0.1


@dataclass
class Fusion:
    """Weights and each run's validation statistics: what turns matrices into one."""

    runs: list[str]
    weights: list[float]
    means: list[float]
    stds: list[float]
    chosen_on: str = "given"  # "validation" when weights="auto"
    validation: dict[str, Any] = field(default_factory=dict)  # the fused validation metrics

    def fuse(self, sims: list[np.ndarray]) -> np.ndarray:
        if len(sims) != len(self.weights):
            raise ValueError(f"{len(sims)} matrices for {len(self.weights)} weights")
        out = np.zeros(sims[0].shape, np.float64)
        for S, w, m, s in zip(sims, self.weights, self.means, self.stds, strict=True):
            out += w * (np.asarray(S, np.float64) - m) / s
        return out.astype(np.float32)

    def vector_scales(self) -> list[float]:
        """sqrt(w_i / s_i): scale each run's vectors by it and concatenate, and the inner
        product is the fused score up to a constant (the same ranking)."""
        return [math.sqrt(w / s) for w, s in zip(self.weights, self.stds, strict=True)]

    def describe(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "weights": [round(w, 4) for w in self.weights],
            "weights_chosen_on": self.chosen_on,
            "standardized_by": "each run's validation mean and std",
            "validation_Rsum": self.validation.get("Rsum"),
        }


def standardization(S: np.ndarray) -> tuple[float, float]:
    std = float(np.std(S))
    return float(np.mean(S)), std if std > 0 else 1.0


def simplex_grid(n: int, step: float = GRID_STEP) -> list[list[float]]:
    """Every weight vector of n non-negative multiples of `step` summing to 1, equal
    weights first."""
    units = round(1 / step)
    grid = [[1.0 / n] * n]
    for cut in itertools.combinations(range(units + n - 1), n - 1):
        parts = np.diff([-1, *cut, units + n - 1]) - 1
        grid.append([float(p) / units for p in parts])
    return grid


def parse_weights(text: str, n: int) -> list[float] | None:
    """`auto` -> None; `w1,w2,...` -> the weights normalized to sum 1."""
    if text.strip().lower() == "auto":
        return None
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise VidretError(f"--weights {text!r}: give 'auto' or {n} numbers, e.g. 0.5,0.5") from None
    if len(weights) != n or any(w < 0 or not math.isfinite(w) for w in weights):
        raise VidretError(f"--weights {text!r}: give {n} non-negative numbers, one per run")
    total = sum(weights)
    if total <= 0:
        raise VidretError(f"--weights {text!r}: at least one weight must be above 0")
    return [w / total for w in weights]


def choose_fusion(
    runs: list[str],
    val_sims: list[np.ndarray],
    val_c2v: np.ndarray,
    weights: list[float] | None,
) -> Fusion:
    """Standardize by each validation matrix; weights as given, or (None) the grid point
    with the best validation Rsum."""
    from vidret.eval.metrics import retrieval_metrics

    stats = [standardization(S) for S in val_sims]
    means, stds = [m for m, _ in stats], [s for _, s in stats]
    if weights is not None:
        fusion = Fusion(runs, weights, means, stds)
        fusion.validation = retrieval_metrics(fusion.fuse(val_sims), val_c2v)
        return fusion
    best: Fusion | None = None
    for candidate in simplex_grid(len(runs)):
        fusion = Fusion(runs, candidate, means, stds, chosen_on="validation")
        fusion.validation = retrieval_metrics(fusion.fuse(val_sims), val_c2v)
        if best is None or fusion.validation["Rsum"] > best.validation["Rsum"] + 1e-9:
            best = fusion
    assert best is not None
    return best


def check_same_split(runs: list[Path]) -> None:
    """Runs to fuse must score the same videos: the same data settings (path and experts
    aside)."""
    from vidret.runs.folder import read_run_config

    if len(runs) < 2:
        raise VidretError("fusion needs at least two runs (--runs RUN1,RUN2)")
    splits = [read_run_config(r).data.model_dump(exclude={"path", "experts"}) for r in runs]
    for run, data in zip(runs[1:], splits[1:], strict=True):
        if data != splits[0]:
            differ = sorted(k for k in data if data[k] != splits[0].get(k))
            raise VidretError(
                f"{run} was trained with other data settings than {runs[0]} ({differ}): "
                "fuse runs of the same dataset and split"
            )


def _check_same_matrices(runs: list[Path], scored: list[RunScores]) -> None:
    first = scored[0]
    for run, s in zip(runs[1:], scored[1:], strict=True):
        if s.sims.shape != first.sims.shape or not np.array_equal(
            s.caption_to_video, first.caption_to_video
        ):
            raise VidretError(
                f"{run} scores other videos or captions on split '{s.split}' than "
                f"{runs[0]} ({list(s.sims.shape)} vs {list(first.sims.shape)}): fuse runs "
                "trained on the same data with the same split"
            )


def fusion_of_runs(runs: list[Path], weights: list[float] | None) -> Fusion:
    """The fusion of trained runs: standardized by, and weights given or chosen on, their
    validation split."""
    from vidret.eval.scoring import score_run

    check_same_split(runs)
    val = [score_run(r, split="val") for r in runs]
    _check_same_matrices(runs, val)
    return choose_fusion([str(r) for r in runs], [v.sims for v in val],
                         val[0].caption_to_video, weights)  # fmt: skip


def fuse_runs(
    runs: list[Path], weights: list[float] | None, split: str = "test"
) -> tuple[Fusion, np.ndarray, np.ndarray]:
    """Fuse trained runs of one dataset and split: weights from their validation split
    (given, or chosen there), applied to `split`. Returns the fusion, the fused matrix and
    its caption -> video map."""
    from vidret.eval.scoring import score_run

    fusion = fusion_of_runs(runs, weights)
    scored = [score_run(r, split=split) for r in runs]
    _check_same_matrices(runs, scored)
    return fusion, fusion.fuse([s.sims for s in scored]), scored[0].caption_to_video
