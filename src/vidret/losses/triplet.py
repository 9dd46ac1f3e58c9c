"""The hard-margin triplet (ranking) loss of METHOD.md section 1, both directions.

    l_v(i, j; m) = [S[i, j] - S[i, i] + m]_+    caption i against negative video j
    l_t(i, j; m) = [S[j, i] - S[i, i] + m]_+    video i against negative caption j

`m` is a number or an [B, B] margin matrix M used for both directions (eq. 16), which is
how CMGSD's adaptive margins plug in. The two directions' batch means are summed, as
VSE++ and the paper do; RVSEPP's selective loss averages them, so with the selective
reducer this loss is twice RVSEPP's (same gradients' direction, twice the scale; tested).
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidret.losses.base import LossContext, LossOutput, Objective
from vidret.losses.reducers import HardestNegative, MeanOverNegatives, Reducer, mining_share


def triplet_hinges(sims: Tensor, margin: float | Tensor) -> tuple[Tensor, Tensor]:
    """Per-pair hinges `(l_v, l_t)`, each [B, B] with row i = query i; diagonal meaningless."""
    positive = sims.diagonal()
    hinge_v = (sims - positive[:, None] + margin).clamp_min(0.0)
    hinge_t = (sims.T - positive[:, None] + margin).clamp_min(0.0)
    return hinge_v, hinge_t


def positive_gaps(sims: Tensor) -> tuple[Tensor, Tensor]:
    """Each candidate's similarity minus the query's positive: caption queries (rows of
    `sims`) and video queries (its columns), each [B, B] with row i = query i."""
    positive = sims.diagonal()[:, None]
    return sims - positive, sims.T - positive


def negatives_mask(batch: int, device: torch.device) -> Tensor:
    return ~torch.eye(batch, dtype=torch.bool, device=device)


class TripletLoss(Objective):
    """Hinge with margin alpha; mean over negatives during the warm-up, then the reducer."""

    def __init__(self, margin: float, reducer: Reducer | None = None, warmup_epochs: float = 1.0):
        """`reducer`: over the negatives after the warm-up (default `HardestNegative`, VSE++'s
        mining; `MeanOverNegatives` is no mining; `SelectiveHardNegative` RVSEPP's)."""
        super().__init__()
        self.margin = margin
        self.warmup_epochs = warmup_epochs
        self.reducer: Reducer = reducer if reducer is not None else HardestNegative()
        self.warmup_reducer = MeanOverNegatives()

    def reducer_at(self, epoch: float):
        return self.warmup_reducer if epoch < self.warmup_epochs else self.reducer

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        reduce = self.reducer_at(ctx.epoch)
        negatives = negatives_mask(sims.shape[0], sims.device)
        hinge_v, hinge_t = triplet_hinges(sims, self.margin)
        gaps_v, gaps_t = positive_gaps(sims)
        loss_v = reduce(hinge_v, negatives, gaps_v).mean()
        loss_t = reduce(hinge_t, negatives, gaps_t).mean()
        total = loss_v + loss_t
        return LossOutput(
            total,
            {
                "loss": total.item(),
                "loss_v": loss_v.item(),
                "loss_t": loss_t.item(),
                "mining": mining_share(reduce, negatives, gaps_v),
            },
        )
