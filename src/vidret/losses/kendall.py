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
image-query rows for caption queries; the same for a symmetric matrix, tested).

All pairs make a [B, B, B] tensor (2M entries at batch 128). The paper bounds this with
sliding-window sampling and hard-sample mining (SW-HS); its abstract says no more and the
authors' code has neither, so this is our reading (`loss.window` = W > 0): each query's
candidates are sorted by relevance; candidate j is compared only with the window of the W
most relevant candidates that are less relevant than j by more than `gap` (the window
slides down the list with j), and of those pairs only the hardest counts (the largest
s_k - s_j). One term per (query, candidate): the triplet loss's order, B x B x W to find
them. W >= B keeps every candidate and only mines (tested against loops).
"""

from __future__ import annotations

import torch
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


def sliding_window_terms(
    scores: Tensor, relevance: Tensor, gap: float, window: int
) -> tuple[Tensor, Tensor]:
    """SW-HS: summed hardest violations and the number of (query, candidate) pairs that
    have a window, each candidate against the `window` most relevant candidates below it
    by more than `gap`."""
    queries, candidates = relevance.shape
    relevance_sorted, order = relevance.sort(dim=1, descending=True)
    scores_sorted = scores.gather(1, order)
    # ascending keys for searchsorted: the window of position p starts at the first
    # position whose relevance is below relevance[p] - gap
    keys = (-relevance_sorted).contiguous()
    start = torch.searchsorted(keys, (keys + gap).contiguous(), right=True)  # [q, B]
    positions = start[:, :, None] + torch.arange(window, device=scores.device)  # [q, B, W]
    inside = positions < candidates
    others = scores_sorted.gather(1, positions.clamp(max=candidates - 1).view(queries, -1))
    violation = (others.view(queries, candidates, window) - scores_sorted[:, :, None]).clamp_min(
        0.0
    )
    hardest = (violation * inside).amax(dim=2)
    has_window = inside[:, :, 0]
    return (hardest * has_window).sum(), has_window.sum()


class KendallRankingLoss(Objective):
    needs_relevance = True

    def __init__(self, margin: float = 0.2, gap: float = 0.3, weight: float = 1.0, window: int = 0):
        super().__init__()
        self.gap, self.weight, self.window = gap, weight, window
        self.triplet = TripletLoss(margin, warmup_epochs=0.0)

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        relevance = caption_relevance(ctx).fill_diagonal_(1.0)
        pairwise = self.triplet(sims, ctx).total / 2  # the mean of the two directions
        if self.window:
            sum_v, count_v = sliding_window_terms(sims, relevance, self.gap, self.window)
            sum_t, count_t = sliding_window_terms(sims.T, relevance.T, self.gap, self.window)
        else:
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
