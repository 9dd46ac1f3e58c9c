"""The unified pair-similarity loss with CMGSD's adaptive margins (issue 26).

The unified loss (vidret.losses.unified) is InfoNCE's hard-sample weighting with one fixed
triplet margin m. Here negative j of query i gets its own margin M[i, j], CMGSD's (the
same supervision experts, rescale to alpha +- beta and lambda schedule as
vidret.losses.adaptive_infonce):

    L_i = (1 / gamma) * log(1 + sum_{j != i} exp(gamma * (s_ij - s_ii + M[i, j])))

for caption queries over videos and video queries over captions (s transposed, the same
M), averaged. With beta = 0 every margin is alpha and this is the unified loss with
m = alpha (tested): the question it answers is whether adaptive margins help the
strongest objective.
"""

from __future__ import annotations

from torch import Tensor

from vidret.losses.base import LossContext, LossOutput
from vidret.losses.cmgsd import CMGSDLoss
from vidret.losses.triplet import negatives_mask, positive_gaps
from vidret.losses.unified import UnifiedLoss


class AdaptiveUnifiedLoss(UnifiedLoss):
    needs_static = True

    def __init__(self, gamma: float = 5.0, **margin_options: object):
        source = CMGSDLoss(**margin_options)  # type: ignore[arg-type]
        super().__init__(source.alpha, gamma)
        # Only its margins and lambda are used: the same experts and schedule as CMGSD.
        self.source = source

    @property
    def needs_relevance(self) -> bool:
        return self.source.needs_relevance

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        M, lam = self.source.mixed_margins(sims, ctx)
        negatives = negatives_mask(sims.shape[0], sims.device)
        gaps_v, gaps_t = positive_gaps(sims)
        loss_v = self.per_query(gaps_v, negatives, M).mean()  # captions query videos
        loss_t = self.per_query(gaps_t, negatives, M).mean()  # videos query captions
        total = (loss_v + loss_t) / 2
        terms = {"loss": total.item(), "loss_v": loss_v.item(), "loss_t": loss_t.item()}
        return LossOutput(total, {**terms, "lambda_": lam})
