"""The adaptive margin (rescale F, experts' distances) and the full CMGSD objective."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidret.losses.adaptive_margin import Z_95, cosine_distances, rescale_margins
from vidret.losses.cmgsd import CMGSDLoss, adaptive_context, lambda_at
from vidret.losses.reducers import HardestNegative, MeanOverNegatives
from vidret.losses.triplet import negatives_mask, triplet_hinges


def off_diagonal(M: torch.Tensor) -> torch.Tensor:
    return M[negatives_mask(M.shape[0], M.device)]


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 60), st.floats(0.0, 0.5), st.floats(0.001, 0.2), st.integers(0, 10**6))
def test_margins_have_mean_alpha_and_spread_beta(
    B: int, alpha: float, beta: float, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    D, _ = cosine_distances(torch.randn(B, 16, generator=g))
    M = off_diagonal(rescale_margins(D, alpha, beta)).double()
    assert M.mean().item() == pytest.approx(alpha, abs=1e-6)
    assert M.std(unbiased=False).item() == pytest.approx(beta / Z_95, rel=1e-4, abs=1e-7)


def test_ninety_percent_within_beta_for_normal_distances() -> None:
    g = torch.Generator().manual_seed(0)
    D, _ = cosine_distances(torch.randn(300, 256, generator=g))  # ~normal cosines
    M = off_diagonal(rescale_margins(D, 0.05, 0.05))
    inside = ((M >= 0.0) & (M <= 0.1)).float().mean().item()  # the paper's Figure 3
    assert inside == pytest.approx(0.90, abs=0.01)


def test_equal_distances_give_alpha_and_never_nan() -> None:
    same = torch.ones(5, 8)
    D, _ = cosine_distances(same)
    assert torch.equal(rescale_margins(D, 0.2, 0.1), torch.full((5, 5), 0.2))
    D2, _ = cosine_distances(torch.randn(2, 8))  # B = 2: one distance, std 0
    assert torch.equal(rescale_margins(D2, 0.2, 0.1), torch.full((2, 2), 0.2))


def test_closer_in_the_experts_space_means_smaller_margin() -> None:
    base = torch.randn(1, 32)
    near = base + 0.05 * torch.randn(1, 32)
    far = -base + 0.05 * torch.randn(1, 32)
    others = torch.randn(6, 32)
    M = rescale_margins(cosine_distances(torch.cat([base, near, far, others]))[0], 0.2, 0.1)
    assert M[0, 1] < M[0, 3:].min() and M[0, 2] > M[0, 3:].max()


def test_no_gradient_flows_through_margins() -> None:
    v = torch.randn(6, 8, requires_grad=True)
    D, _ = cosine_distances(v)
    assert not rescale_margins(D, 0.2, 0.1).requires_grad


def test_multi_expert_distance_is_unweighted_mean_over_shared_experts() -> None:
    e0 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    e1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    present = torch.tensor([[True, True], [True, True], [False, True]])
    D, valid = cosine_distances(torch.stack([e0, e1], 1), present)
    assert D[0, 1].item() == pytest.approx(1 - (1 + 0) / 2)  # both experts shared
    assert D[0, 2].item() == pytest.approx(1 - 0.0)  # only expert 1 shared: cos 0
    assert valid.all()


def test_lambda_schedule() -> None:
    assert lambda_at(10, 20, 50) == 0.0
    assert lambda_at(20, 20, 50) == pytest.approx(0.1)
    assert lambda_at(35, 20, 50) == pytest.approx(0.1 * 10**0.5)
    assert lambda_at(50, 20, 50) == 1.0 and lambda_at(60, 20, 50) == 1.0


def batch(B: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    sims = torch.randn(B, B, generator=g).tanh().requires_grad_(True)
    ctx = adaptive_context(
        epoch=5.0,
        text=torch.randn(B, 3, 8, generator=g),
        video=torch.randn(B, 3, 8, generator=g),
        static_text=torch.randn(B, 16, generator=g),
        static_video={
            "rgb": torch.randn(B, 10, generator=g),
            "audio": torch.randn(B, 4, generator=g),
        },
    )
    return sims, ctx


def test_full_objective_matches_equations_27_to_31() -> None:
    sims, ctx = batch()
    loss = CMGSDLoss(alpha=0.2, beta=0.1, warmup_epochs=1, lambda_start=2, lambda_end=8)
    lam = lambda_at(5.0, 2, 8)
    dynamic, static = loss.margins(ctx)
    assert [n for n, _ in dynamic] == ["dyn_video", "dyn_text"]
    assert [n for n, _ in static] == ["sta_text", "sta_video:audio", "sta_video:rgb"]
    hv, ht = triplet_hinges(sims, 0.2)
    for weight, group in ((lam, dynamic), (1 - lam, static)):
        for _, M in group:
            mv, mt = triplet_hinges(sims, M)
            hv, ht = hv + weight * mv, ht + weight * mt
    neg = negatives_mask(6, sims.device)
    expected = HardestNegative()(hv, neg).mean() + HardestNegative()(ht, neg).mean()
    out = loss(sims, ctx)
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.terms["lambda_"] == pytest.approx(lam)
    out.total.backward()
    assert sims.grad is not None and sims.grad.abs().sum() > 0


def test_warm_up_averages_and_beta_zero_is_a_scaled_hard_margin() -> None:
    sims, ctx = batch()
    ctx.epoch = 0.5
    loss = CMGSDLoss(alpha=0.2, beta=0.0, warmup_epochs=1, lambda_start=2, lambda_end=8)
    hv, ht = triplet_hinges(sims, 0.2)
    neg = negatives_mask(6, sims.device)
    # lambda = 0 here: 1 hard + 3 static hinges, all with margin alpha.
    expected = 4 * (MeanOverNegatives()(hv, neg).mean() + MeanOverNegatives()(ht, neg).mean())
    assert loss(sims, ctx).total.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize(
    ("switches", "dynamic", "static"),
    [
        ({"text_experts": False}, ["dyn_video"], ["sta_video:audio", "sta_video:rgb"]),
        ({"video_experts": False}, ["dyn_text"], ["sta_text"]),
        ({"static": False}, ["dyn_video", "dyn_text"], []),
        ({"dynamic": False}, [], ["sta_text", "sta_video:audio", "sta_video:rgb"]),
    ],
)
def test_ablation_switches_drop_their_terms(switches, dynamic, static) -> None:
    sims, ctx = batch()
    loss = CMGSDLoss(alpha=0.2, beta=0.1, lambda_start=2, lambda_end=8, **switches)
    d, s = loss.margins(ctx)
    assert [n for n, _ in d] == dynamic and [n for n, _ in s] == static
    if switches == {"dynamic": False}:
        assert loss.lambda_(7.0) == 0.0  # static keeps full weight
    assert torch.isfinite(loss(sims, ctx).total)


def test_adaptive_infonce_raises_each_negative_by_its_margin() -> None:
    import torch.nn.functional as F

    from vidret.losses.adaptive_infonce import AdaptiveInfoNCE

    sims, ctx = batch()
    loss = AdaptiveInfoNCE(
        0.1, learn_temperature=False, alpha=0.05, beta=0.02, lambda_start=2, lambda_end=8
    )
    M, lam = loss.source.mixed_margins(sims, ctx)
    assert M.diagonal().abs().sum() == 0 and lam == pytest.approx(lambda_at(5.0, 2, 8))
    target = torch.arange(6)
    expected = (
        F.cross_entropy((sims + M) / 0.1, target) + F.cross_entropy((sims.T + M) / 0.1, target)
    ) / 2
    assert loss(sims, ctx).total.item() == pytest.approx(expected.item(), rel=1e-6)
    # beta = 0: every negative raised by alpha, additive-margin InfoNCE.
    flat = AdaptiveInfoNCE(0.1, False, alpha=0.05, beta=0.0, lambda_start=2, lambda_end=8)
    M0, _ = flat.source.mixed_margins(sims, ctx)
    off = negatives_mask(6, sims.device)
    assert torch.allclose(M0[off], torch.full_like(M0[off], 0.05))


def test_adaptive_unified_by_hand_and_its_fixed_margin_case() -> None:
    """L_i = (1/gamma) log(1 + sum_{j != i} exp(gamma (s_ij - s_ii + M_ij))), captions
    querying videos and videos querying captions with the same M, averaged; beta = 0 makes
    every margin alpha: the unified loss with m = alpha."""
    import math

    from vidret.losses.adaptive_unified import AdaptiveUnifiedLoss
    from vidret.losses.unified import UnifiedLoss

    sims, ctx = batch()
    loss = AdaptiveUnifiedLoss(gamma=5.0, alpha=0.1, beta=0.05, lambda_start=2, lambda_end=8)
    M, lam = loss.source.mixed_margins(sims, ctx)
    assert lam == pytest.approx(lambda_at(5.0, 2, 8)) and M.std() > 0
    S, B = sims.tolist(), sims.shape[0]
    total = 0.0
    for direction in ("v", "t"):
        for i in range(B):
            s = [S[i][j] if direction == "v" else S[j][i] for j in range(B)]
            inner = sum(
                math.exp(5.0 * (s[j] - S[i][i] + float(M[i, j]))) for j in range(B) if j != i
            )
            total += math.log1p(inner) / 5.0 / B
    out = loss(sims, ctx)
    assert out.total.item() == pytest.approx(total / 2, rel=1e-5)
    assert out.terms["lambda_"] == lam

    flat = AdaptiveUnifiedLoss(gamma=5.0, alpha=0.1, beta=0.0, lambda_start=2, lambda_end=8)
    fixed = UnifiedLoss(margin=0.1, gamma=5.0)
    assert flat(sims, ctx).total.item() == pytest.approx(fixed(sims, ctx).total.item(), rel=1e-6)
