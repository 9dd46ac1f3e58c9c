"""Reducers: from a per-pair hinge matrix to one loss per query.

Mining is a reducer, not a flag inside a loss: `HardestNegative` is VSE++'s
max-violation (eq. 3 of the paper), `MeanOverNegatives` averages every negative, and
`SelectiveHardNegative` (RVSEPP, AAA-Zheng/RVSEPP `loss.py`) takes the hardest negative
only where it is clearly separated from the positive, else the mean.

A reducer is an object handed to a loss (`TripletLoss(margin, reducer=...)`, as
pytorch-metric-learning's `reducer=`); the config's `loss.mining`, `loss.reducer` and
`loss.epsilon` pick one in `vidret.losses.registry`. Every reducer is called with
`hinge` [B, B] (row i: query i against each candidate), `negatives` (the mask of
negative candidates) and `gaps` [B, B], the similarity of each candidate minus the
query's positive, which only the selective reducer reads.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

Reducer = Union["HardestNegative", "MeanOverNegatives", "SelectiveHardNegative"]


class HardestNegative:
    name = "hardest"

    def __call__(self, hinge: Tensor, negatives: Tensor, gaps: Tensor | None = None) -> Tensor:
        # Hinges are >= 0, so filling non-negatives with 0 never changes the max.
        return hinge.masked_fill(~negatives, 0.0).amax(dim=1)


class MeanOverNegatives:
    name = "mean"

    def __call__(self, hinge: Tensor, negatives: Tensor, gaps: Tensor | None = None) -> Tensor:
        m = negatives.to(hinge.dtype)
        return (hinge * m).sum(1) / m.sum(1).clamp_min(1.0)


class SelectiveHardNegative:
    """Per query: the hardest negative's hinge where |positive - hardest negative| is at
    least `epsilon`, else the mean over negatives. As in the authors' code, the gap is
    measured without gradient and in absolute value, so a negative that leads the
    positive by more than epsilon is mined too; only near-ties fall back to the mean."""

    name = "selective"

    def __init__(self, epsilon: float = 0.01):
        self.epsilon = epsilon

    def __call__(self, hinge: Tensor, negatives: Tensor, gaps: Tensor | None = None) -> Tensor:
        if gaps is None:
            raise ValueError("the selective reducer needs each candidate's gap to the positive")
        hardest = HardestNegative()(hinge, negatives)
        mean = MeanOverNegatives()(hinge, negatives)
        return torch.where(self._mines(negatives, gaps), hardest, mean)

    def mined(self, negatives: Tensor, gaps: Tensor) -> Tensor:
        """The share of queries that took their hardest negative (for the logs)."""
        return self._mines(negatives, gaps).float().mean()

    def _mines(self, negatives: Tensor, gaps: Tensor) -> Tensor:
        """Per query: is |positive - hardest negative| at least epsilon (no gradient)?"""
        closest = gaps.detach().masked_fill(~negatives, -torch.inf).amax(dim=1)
        return closest.abs() >= self.epsilon


def mining_share(reduce, negatives: Tensor, gaps: Tensor) -> float:
    """For the logs: the share of queries that took their hardest negative."""
    if isinstance(reduce, SelectiveHardNegative):
        return float(reduce.mined(negatives, gaps))
    return float(isinstance(reduce, HardestNegative))
