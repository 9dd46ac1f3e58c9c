"""Objectives against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vidret.losses.base import LossContext
from vidret.losses.infonce import InfoNCE
from vidret.losses.reducers import HardestNegative, MeanOverNegatives, SelectiveHardNegative
from vidret.losses.triplet import TripletLoss, negatives_mask, triplet_hinges

S = torch.tensor([[0.9, 0.5, 0.1], [0.8, 0.6, 0.7], [0.2, 0.3, 0.4]])


def test_hinges_follow_equations_1_and_2() -> None:
    hv, ht = triplet_hinges(S, 0.2)
    # l_v(i, j) = [S[i, j] - S[i, i] + m]_+ ; l_t(i, j) = [S[j, i] - S[i, i] + m]_+
    for i in range(3):
        for j in range(3):
            assert hv[i, j] == pytest.approx(max(0.0, S[i, j] - S[i, i] + 0.2))
            assert ht[i, j] == pytest.approx(max(0.0, S[j, i] - S[i, i] + 0.2))


def test_margin_matrix_is_used_for_both_directions() -> None:
    M = torch.tensor([[0.0, 0.1, 0.2], [0.3, 0.0, 0.4], [0.5, 0.6, 0.0]])
    hv, ht = triplet_hinges(S, M)
    assert hv[1, 2] == pytest.approx(max(0.0, S[1, 2] - S[1, 1] + M[1, 2]))
    assert ht[1, 2] == pytest.approx(max(0.0, S[2, 1] - S[1, 1] + M[1, 2]))


def test_reducers() -> None:
    hinge = torch.tensor([[9.0, 1.0, 3.0], [2.0, 9.0, 0.0], [0.5, 0.25, 9.0]])
    neg = negatives_mask(3, torch.device("cpu"))
    assert HardestNegative()(hinge, neg).tolist() == [3.0, 2.0, 0.5]
    assert MeanOverNegatives()(hinge, neg).tolist() == [2.0, 1.0, 0.375]


def test_triplet_warms_up_with_the_mean_then_mines() -> None:
    loss = TripletLoss(0.2, warmup_epochs=1.0)
    hv, ht = triplet_hinges(S, 0.2)
    neg = negatives_mask(3, torch.device("cpu"))
    mean = MeanOverNegatives()(hv, neg).mean() + MeanOverNegatives()(ht, neg).mean()
    hard = HardestNegative()(hv, neg).mean() + HardestNegative()(ht, neg).mean()
    assert loss(S, LossContext(epoch=0.99)).total.item() == pytest.approx(mean.item())
    out = loss(S, LossContext(epoch=1.0))
    assert out.total.item() == pytest.approx(hard.item()) and out.terms["mining"] == 1.0
    no_mining = TripletLoss(0.2, reducer=MeanOverNegatives(), warmup_epochs=1.0)
    assert no_mining(S, LossContext(epoch=5)).total.item() == pytest.approx(mean.item())


def test_perfect_separation_costs_nothing() -> None:
    sims = torch.eye(4)
    assert TripletLoss(0.2)(sims, LossContext(epoch=3)).total.item() == 0.0


def test_infonce_is_symmetric_cross_entropy() -> None:
    loss = InfoNCE(temperature=0.1, learn_temperature=False)
    target = torch.arange(3)
    expected = (F.cross_entropy(S / 0.1, target) + F.cross_entropy(S.T / 0.1, target)) / 2
    assert loss(S, LossContext()).total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert not list(loss.parameters())


def test_infonce_learns_its_temperature_within_bounds() -> None:
    loss = InfoNCE(temperature=0.05, learn_temperature=True)
    assert [p.shape for p in loss.parameters()] == [torch.Size([])]
    sims = S.clone().requires_grad_(True)
    loss(sims, LossContext()).total.backward()
    assert loss.log_temperature.grad is not None
    with torch.no_grad():
        loss.log_temperature.fill_(math.log(1e-5))
    assert loss.temperature.item() == pytest.approx(0.01)


def rvsepp_selhn(scores: torch.Tensor, margin: float, epsilon: float) -> torch.Tensor:
    """RVSEPP's TripletSelHNLoss as its authors compute it (AAA-Zheng/RVSEPP loss.py),
    written out here: `scores` rows are images (our videos), columns captions; their loss
    is the mean of the two directions, ours the sum."""
    B = scores.shape[0]
    pos_mask = torch.eye(B)
    neg_mask = 1 - pos_mask
    pos = scores.diag().view(B, 1)
    loss_t = (scores - pos.expand_as(scores) + margin).clamp(min=0) * neg_mask
    loss_v = (scores - pos.t().expand_as(scores) + margin).clamp(min=0) * neg_mask
    avg_t, avg_v = loss_t.sum(1) / (B - 1), loss_v.sum(0) / (B - 1)
    max_t, max_v = loss_t.max(1)[0], loss_v.max(0)[0]
    neg_scores = scores.detach() * neg_mask - pos_mask
    diff_t = (scores.diag() - neg_scores.max(1)[0]).abs()
    diff_v = (scores.diag() - neg_scores.max(0)[0]).abs()
    loss_t = torch.where(diff_t < epsilon, avg_t, max_t).mean()
    loss_v = torch.where(diff_v < epsilon, avg_v, max_v).mean()
    return (loss_t + loss_v) / 2


@pytest.mark.parametrize("epsilon", [0.0, 0.05, 0.3, 10.0])
def test_selective_hard_negatives_match_the_authors_loss(epsilon: float) -> None:
    torch.manual_seed(0)
    # cosines in [0, 1) (the authors' code fills the diagonal with -1 before its max,
    # so its hardest negative is right only for similarities above -1)
    sims = torch.rand(12, 12)
    sims[3, 5] = sims[3, 3] + 0.01  # a near-tie: the mean for caption 3 at epsilon 0.05
    loss = TripletLoss(0.2, reducer=SelectiveHardNegative(epsilon), warmup_epochs=0.0)
    ours = loss(sims, LossContext(epoch=1)).total
    # our sims are [captions, videos]; theirs [images, captions]
    torch.testing.assert_close(ours / 2, rvsepp_selhn(sims.T, 0.2, epsilon))
    # special cases: epsilon 0 is hardest-negative mining, a huge epsilon the mean
    if epsilon in (0.0, 10.0):
        reducer = HardestNegative() if epsilon == 0.0 else MeanOverNegatives()
        other = TripletLoss(0.2, reducer=reducer, warmup_epochs=0.0)
        torch.testing.assert_close(ours, other(sims, LossContext(epoch=1)).total)


def test_selective_reducer_by_hand() -> None:
    hinge = torch.tensor([[0.0, 0.3, 0.1], [0.2, 0.0, 0.0], [0.5, 0.1, 0.0]])
    gaps = torch.tensor([[0.0, 0.05, -0.4], [-0.5, 0.0, -0.6], [0.3, -0.1, 0.0]])
    negatives = negatives_mask(3, torch.device("cpu"))
    got = SelectiveHardNegative(epsilon=0.1)(hinge, negatives, gaps)
    # query 0: closest negative 0.05 from the positive (< 0.1): mean (0.3 + 0.1) / 2
    # query 1: closest -0.5 (|.| >= 0.1): hardest 0.2; query 2: a negative leads by 0.3:
    # hardest too (the authors' absolute gap), 0.5
    torch.testing.assert_close(got, torch.tensor([0.2, 0.2, 0.5]))
    with pytest.raises(ValueError, match="gap"):
        SelectiveHardNegative()(hinge, negatives)


def test_cmgsd_takes_the_selective_reducer() -> None:
    from vidret.config import LossConfig
    from vidret.losses.registry import build_objective

    cfg = LossConfig(name="cmgsd", reducer="selective", epsilon=0.02)
    objective = build_objective(cfg, epochs=10)
    assert isinstance(objective.reducer, SelectiveHardNegative)
    assert objective.reducer.epsilon == 0.02


def test_unified_loss_by_hand_and_its_two_special_cases() -> None:
    from vidret.losses.unified import UnifiedLoss

    torch.manual_seed(1)
    sims = torch.rand(6, 6) * 2 - 1
    ctx = LossContext(epoch=2)
    # by hand: caption 0 against its 5 negative videos, gamma 4, margin 0.1
    loss = UnifiedLoss(margin=0.1, gamma=4.0)
    gaps = sims[0] - sims[0, 0]
    expected = math.log(1 + sum(math.exp(4 * (g + 0.1)) for g in gaps[1:].tolist())) / 4
    negatives = negatives_mask(6, torch.device("cpu"))
    got = loss.per_query((sims - sims.diagonal()[:, None]), negatives)[0]
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # gamma -> infinity: Triplet-HN (hardest negative, margin 0.2), here half its sum
    hn = TripletLoss(0.2, warmup_epochs=0.0)(sims, ctx).total
    big = UnifiedLoss(margin=0.2, gamma=1e4)(sims, ctx).total
    assert big.item() == pytest.approx(hn.item() / 2, abs=1e-3)
    # margin 0, gamma = 1 / tau: tau * InfoNCE at temperature tau
    tau = 0.07
    nce = InfoNCE(tau, learn_temperature=False)(sims, ctx).total
    uni = UnifiedLoss(margin=0.0, gamma=1 / tau)(sims, ctx).total
    assert uni.item() == pytest.approx(tau * nce.item(), rel=1e-5)
    with pytest.raises(ValueError, match="gamma"):
        UnifiedLoss(gamma=0.0)
