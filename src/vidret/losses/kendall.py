"""Binary and continuous label supervision (BCLS, AAA-Zheng/ITM_CLS `RCLoss`): the
triplet loss on the binary labels plus a Kendall ranking loss on continuous pseudo labels
(caption similarity, `vidret.losses.relevance`).

For a query and two candidates j, k where j is more relevant than k by more than `gap`,
the Kendall loss charges [s_k - s_j]_+ (k scored above j); it is the sum over such
ordered pairs of all queries divided by their number, both directions, and

    total = Triplet-HN + w * Kendall      (w: loss.kendall_weight, 1 in the authors' code)

As in the authors' code, the binary part mines the hardest negative (the paper's
abstract names soft negative mining) and the relevance is the raw cosine with the
positives at 1. As for S-NDCG, each direction uses its own relevance (theirs reuses the
image-query rows for caption queries; the same for a symmetric matrix, tested). The
sliding-window sampling and hard-sample mining the paper adds to bound the cost are not
in that code and not here: the pair tensor is [B, B, B] (2M entries at batch 128).
"""

from __future__ import annotations

from torch import Tensor

from vidret.losses.base import LossContext, LossOutput, Objective
from vidret.losses.relevance import caption_relevance
from vidret.losses.triplet import TripletLoss


def kendall_terms(scores: Tensor, relevance: Tensor, gap: float) -> tuple[Tensor, Tensor]:
    """Summed violations and the number of ordered pairs (j more relevant than k by
    more than `gap`) over queries (rows) and their candidates (columns)."""
    more_relevant = (relevance[:, :, None] - relevance[:, None, :]) > gap  # [q, j, k]
    violation = (scores[:, None, :] - scores[:, :, None]).clamp_min(0.0)  # s_k - s_j
    return (violation * more_relevant).sum(), more_relevant.sum()


class KendallRankingLoss(Objective):
    needs_relevance = True

    def __init__(self, margin: float = 0.2, gap: float = 0.3, weight: float = 1.0):
        super().__init__()
        self.gap, self.weight = gap, weight
        self.triplet = TripletLoss(margin, warmup_epochs=0.0)

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        relevance = caption_relevance(ctx).fill_diagonal_(1.0)
        pairwise = self.triplet(sims, ctx).total / 2  # the mean of the two directions
        sum_v, count_v = kendall_terms(sims, relevance, self.gap)  # captions rank videos
        sum_t, count_t = kendall_terms(sims.T, relevance.T, self.gap)  # videos rank captions
        kendall = (sum_v / count_v.clamp_min(1) + sum_t / count_t.clamp_min(1)) / 2
        total = pairwise + self.weight * kendall
        return LossOutput(
            total,
            {
                "loss": total.item(),
                "loss_pairwise": pairwise.item(),
                "loss_kendall": kendall.item(),
            },
        )
