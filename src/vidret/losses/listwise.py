"""Smooth-NDCG (Listwise ITR, AAA-Zheng/Listwise_ITR `SNDCGLoss`): a listwise loss that
ranks every candidate by its graded relevance, combined with the triplet loss.

For a query with candidates j, gains 2^r_j - 1 (relevance r in [0, 1], the positive 1,
negatives (1 + cos) / 2 of caption similarity, `vidret.losses.relevance`), the ideal DCG
ranks candidates by relevance; the smooth DCG replaces each candidate's rank by
1 + sum_{k != j} sigmoid((s_k - s_j) / tau). The loss is 1 - DCG / IDCG, both
directions, and the objective is

    (1 - w) * Triplet-HN + w * (1 - S-NDCG)      (w: loss.listwise_weight)

One difference from the authors' code: it ranks the captions of an image and the images
of a caption with the same relevance rows (relevance[image, caption] for both); here
each direction uses its own (a video's relevance to captions, a caption's to videos).
With a symmetric relevance matrix the two agree (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidret.losses.base import LossContext, LossOutput, Objective
from vidret.losses.relevance import caption_relevance
from vidret.losses.triplet import TripletLoss


def smooth_ndcg(scores: Tensor, relevance: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """Per query (row) over its candidates (columns): the smooth NDCG, and the exact one
    (true ranks, for the logs). `relevance` in [0, 1]."""
    n = scores.shape[1]
    gain = 2.0**relevance - 1.0
    ideal_rank = 1 + (relevance[:, None, :] > relevance[:, :, None]).sum(-1)
    idcg = (gain / torch.log2(1.0 + ideal_rank)).sum(-1)
    others = ~torch.eye(n, dtype=torch.bool, device=scores.device)
    ahead = scores[:, None, :] - scores[:, :, None]  # [q, j, k]: s_k - s_j
    smooth_rank = 1 + (torch.sigmoid(ahead / tau) * others).sum(-1)
    true_rank = 1 + ((ahead > 0) & others).sum(-1)
    ndcg = (gain / torch.log2(1.0 + smooth_rank)).sum(-1) / idcg
    exact = (gain / torch.log2(1.0 + true_rank)).sum(-1) / idcg
    return ndcg, exact.detach()


def graded_relevance(ctx: LossContext) -> Tensor:
    """`[captions, videos]` relevance in [0, 1], the positives 1."""
    r = (1.0 + caption_relevance(ctx)) / 2.0
    return r.fill_diagonal_(1.0)


class SmoothNDCGLoss(Objective):
    needs_relevance = True

    def __init__(self, margin: float = 0.2, tau: float = 0.01, weight: float = 0.5):
        super().__init__()
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"listwise weight {weight}: must be within [0, 1]")
        self.tau, self.weight = tau, weight
        self.triplet = TripletLoss(margin, warmup_epochs=0.0)  # hardest negative, as theirs

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        relevance = graded_relevance(ctx)
        pairwise = self.triplet(sims, ctx).total / 2  # the mean of the two directions
        ndcg_v, exact_v = smooth_ndcg(sims, relevance, self.tau)  # captions rank videos
        ndcg_t, exact_t = smooth_ndcg(sims.T, relevance.T, self.tau)  # videos rank captions
        listwise = ((1 - ndcg_v.mean()) + (1 - ndcg_t.mean())) / 2
        total = (1 - self.weight) * pairwise + self.weight * listwise
        return LossOutput(
            total,
            {
                "loss": total.item(),
                "loss_pairwise": pairwise.item(),
                "loss_listwise": listwise.item(),
                "ndcg": ((exact_v.mean() + exact_t.mean()) / 2).item(),
            },
        )
