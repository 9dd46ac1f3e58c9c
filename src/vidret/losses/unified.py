"""The unified pair-similarity loss (Zheng et al., "Unified Loss of Pair Similarity
Optimization for Vision-Language Retrieval"): contrastive hard-sample weighting with a
triplet margin, for each query over its negatives j,

    L = (1 / gamma) * log(1 + sum_j exp(gamma * (s_j - s_pos + m)))

both directions (captions querying videos and videos querying captions), averaged.
Its gradient weights each negative by its softmax share, so hard negatives count most
(contrastive learning's hard-sample mining), and the margin m separates pairs as the
triplet loss does. Two special cases (tested):

* gamma -> infinity: max_j [s_j - s_pos + m]_+, the triplet loss with hardest-negative
  mining (Triplet-HN);
* m = 0, gamma = 1 / tau: tau times InfoNCE at temperature tau (log(1 + sum_j e^{(s_j -
  s_pos)/tau}) is exactly the cross-entropy of the positive among all candidates).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vidret.losses.base import LossContext, LossOutput, Objective
from vidret.losses.triplet import negatives_mask, positive_gaps


class UnifiedLoss(Objective):
    def __init__(self, margin: float = 0.2, gamma: float = 32.0):
        super().__init__()
        if gamma <= 0:
            raise ValueError(f"gamma {gamma}: must be > 0")
        self.margin, self.gamma = margin, gamma

    def per_query(
        self, gaps: Tensor, negatives: Tensor, margin: Tensor | float | None = None
    ) -> Tensor:
        """One loss per query (row) from `gaps` = s_j - s_pos: softplus of the log-sum-exp
        over the negatives, computed stably. `margin`: one per pair (row = query), or the
        loss's own."""
        margin = self.margin if margin is None else margin
        logits = (self.gamma * (gaps + margin)).masked_fill(~negatives, -torch.inf)
        return F.softplus(torch.logsumexp(logits, dim=1)) / self.gamma

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        negatives = negatives_mask(sims.shape[0], sims.device)
        gaps_v, gaps_t = positive_gaps(sims)
        loss_v = self.per_query(gaps_v, negatives).mean()  # captions query videos
        loss_t = self.per_query(gaps_t, negatives).mean()  # videos query captions
        total = (loss_v + loss_t) / 2
        return LossOutput(
            total, {"loss": total.item(), "loss_v": loss_v.item(), "loss_t": loss_t.item()}
        )
