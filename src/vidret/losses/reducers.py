"""Reducers: from a per-pair hinge matrix to one loss per query.

Mining is a reducer, not a flag inside a loss: `HardestNegative` is VSE++'s
max-violation (eq. 3 of the paper), `MeanOverNegatives` averages every negative.
"""

from __future__ import annotations

from torch import Tensor


class HardestNegative:
    name = "hardest"

    def __call__(self, hinge: Tensor, negatives: Tensor) -> Tensor:
        # Hinges are >= 0, so filling non-negatives with 0 never changes the max.
        return hinge.masked_fill(~negatives, 0.0).amax(dim=1)


class MeanOverNegatives:
    name = "mean"

    def __call__(self, hinge: Tensor, negatives: Tensor) -> Tensor:
        m = negatives.to(hinge.dtype)
        return (hinge * m).sum(1) / m.sum(1).clamp_min(1.0)
