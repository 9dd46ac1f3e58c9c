"""S-NDCG (Listwise_ITR) and the Kendall ranking loss (ITM_CLS) against their authors'
computations, written out here as their code computes them; the caption relevance; and
training runs with both."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from helpers import TINY
from vidret.cli import app
from vidret.losses.base import LossContext
from vidret.losses.kendall import KendallRankingLoss, sliding_window_terms
from vidret.losses.listwise import SmoothNDCGLoss, smooth_ndcg
from vidret.losses.relevance import (
    CAPTIONS,
    VIDEO_CAPTION_MASK,
    VIDEO_CAPTIONS,
    caption_relevance,
    relevance_vectors,
    video_caption_index,
)


def reference_triplet_hn(scores: torch.Tensor, margin: float) -> torch.Tensor:
    B = scores.shape[0]
    neg = 1 - torch.eye(B)
    pos = scores.diag().view(B, 1)
    loss_t = ((scores - pos.expand_as(scores) + margin).clamp(min=0) * neg).max(1)[0].mean()
    loss_v = ((scores - pos.t().expand_as(scores) + margin).clamp(min=0) * neg).max(0)[0].mean()
    return (loss_t + loss_v) / 2


def reference_sndcg(scores: torch.Tensor, relevance: torch.Tensor, tau: float) -> torch.Tensor:
    """Listwise_ITR SNDCGLoss after its relevance step (relevance given, [image, caption])."""
    B = scores.shape[0]
    pos_mask, neg_mask = torch.eye(B), 1 - torch.eye(B)
    relevance = relevance * neg_mask + pos_mask
    rel_rep = relevance.unsqueeze(2).repeat(1, 1, B)
    rel_diff = rel_rep.permute(0, 2, 1) - rel_rep
    rk = torch.where(rel_diff > 0, 1.0, 0.0).sum(-1) + 1
    idcg = ((2**relevance - 1) / torch.log2(1 + rk)).sum(-1)

    def direction(s: torch.Tensor) -> torch.Tensor:
        rep = s.unsqueeze(2).repeat(1, 1, B)
        diff = rep.permute(0, 2, 1) - rep
        sg = 1.0 / (1.0 + torch.exp(torch.clamp(-diff / tau, min=-50, max=50)))
        rank = (sg * neg_mask).sum(-1) + 1
        dcg = ((2**relevance - 1) / torch.log2(1 + rank)).sum(-1)
        return (1 - dcg / idcg).mean()

    return (direction(scores) + direction(scores.t())) / 2


def reference_kendall(scores: torch.Tensor, relevance: torch.Tensor, gap: float) -> torch.Tensor:
    """ITM_CLS RCLoss's Kendall part (relevance given, [image, caption], raw cosines)."""
    B = scores.shape[0]
    pos_mask, neg_mask = torch.eye(B), 1 - torch.eye(B)
    relevance = relevance * neg_mask + pos_mask
    rel_rep = relevance.unsqueeze(2).repeat(1, 1, B)
    rel_diff = (rel_rep.permute(0, 2, 1) - rel_rep).clamp(max=0)
    mask = torch.where(rel_diff + gap < 0, 1.0, 0.0)
    num = mask.sum()

    def direction(s: torch.Tensor) -> torch.Tensor:
        rep = s.unsqueeze(2).repeat(1, 1, B)
        return ((rep.permute(0, 2, 1) - rep).clamp(min=0) * mask).sum() / num

    return (direction(scores) + direction(scores.t())) / 2


def context(x: torch.Tensor) -> LossContext:
    """A context where caption i and video i's one caption are the unit vector x[i], so
    the caption relevance is the symmetric matrix x @ x.T."""
    return LossContext(
        epoch=1,
        static={
            CAPTIONS: x,
            VIDEO_CAPTIONS: x[:, None, :],
            VIDEO_CAPTION_MASK: torch.ones(len(x), 1),
        },
    )


def random_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n caption vectors x (unit, positively correlated), their relevance x @ x.T, and
    random similarities in [-1, 1]."""
    torch.manual_seed(seed)
    x = F.normalize(torch.randn(n, 6, generator=torch.Generator().manual_seed(seed)) + 1.5, dim=-1)
    return x, x @ x.T, torch.rand(n, n) * 2 - 1


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_sndcg_matches_listwise_itr(weight: float) -> None:
    x, relevance, sims = random_batch(10, 0)
    ours = SmoothNDCGLoss(margin=0.2, tau=0.05, weight=weight)(sims, context(x)).total
    theirs = (1 - weight) * reference_triplet_hn(sims.T, 0.2) + weight * reference_sndcg(
        sims.T, (1 + relevance) / 2, 0.05
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_sndcg_special_cases() -> None:
    # ranked exactly by relevance with a tiny tau: smooth NDCG -> 1
    relevance = torch.tensor([[1.0, 0.8, 0.2], [0.3, 1.0, 0.6]])
    perfect = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.9, 0.4]])
    ndcg, exact = smooth_ndcg(perfect, relevance, tau=1e-4)
    torch.testing.assert_close(ndcg, torch.ones(2))
    torch.testing.assert_close(exact, torch.ones(2))
    reversed_ = smooth_ndcg(-perfect, relevance, tau=1e-4)[0]
    assert (reversed_ < 0.9).all()


@pytest.mark.parametrize("gap", [0.0, 0.1, 0.3])
def test_kendall_matches_itm_cls(gap: float) -> None:
    x, relevance, sims = random_batch(9, 1)
    ours = KendallRankingLoss(margin=0.2, gap=gap)(sims, context(x))
    theirs_pairwise = reference_triplet_hn(sims.T, 0.2)
    theirs = theirs_pairwise + reference_kendall(sims.T, relevance, gap)
    torch.testing.assert_close(ours.total, theirs, rtol=1e-5, atol=1e-6)
    # scores that follow the relevance exactly violate nothing
    follows = KendallRankingLoss(gap=gap)(relevance.clone(), context(x))
    assert follows.terms["loss_kendall"] == 0.0


def reference_sliding_window(
    scores: torch.Tensor, relevance: torch.Tensor, gap: float, window: int
) -> torch.Tensor:
    """SW-HS as the kendall module's docstring states it, one query and candidate at a
    time: j against the `window` most relevant candidates less relevant than j by more
    than gap, the hardest violation of those; the mean over (query, j) that have one."""
    total, count = 0.0, 0
    for q in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            below = [k for k in range(scores.shape[1]) if relevance[q, j] - relevance[q, k] > gap]
            below = sorted(below, key=lambda k: -float(relevance[q, k]))[:window]
            if below:
                total += max(max(float(scores[q, k] - scores[q, j]), 0.0) for k in below)
                count += 1
    return torch.tensor(total / max(count, 1))


@pytest.mark.parametrize(("gap", "window"), [(0.0, 1), (0.1, 3), (0.3, 2), (0.1, 50)])
def test_kendall_sliding_window_hard_samples(gap: float, window: int) -> None:
    x, relevance, sims = random_batch(9, 2)
    relevance.fill_diagonal_(1.0)
    ours = KendallRankingLoss(margin=0.2, gap=gap, window=window)(sims, context(x))
    theirs = (
        reference_sliding_window(sims, relevance, gap, window)
        + reference_sliding_window(sims.T, relevance.T, gap, window)
    ) / 2
    torch.testing.assert_close(
        torch.tensor(ours.terms["loss_kendall"]), theirs, atol=1e-6, rtol=1e-5
    )
    follows = KendallRankingLoss(gap=gap, window=window)(relevance.clone(), context(x))
    assert follows.terms["loss_kendall"] == 0.0


def test_kendall_sliding_window_by_hand() -> None:
    # one query, relevance 1 > 0.7 > 0.5 > 0.1; gap 0.35, window 1: candidate 0's window is
    # candidate 2 (0.7 is not below 1 by more than the gap), 1's is 3, 2's is 3, 3 has none
    relevance = torch.tensor([[1.0, 0.7, 0.5, 0.1]])
    scores = torch.tensor([[0.2, 0.3, 0.6, 0.5]])

    total, count = sliding_window_terms(scores, relevance, gap=0.35, window=1)
    # violations: s2 - s0 = 0.4, s3 - s1 = 0.2, s3 - s2 < 0 -> 0
    assert count.item() == 3
    torch.testing.assert_close(total, torch.tensor(0.6))
    # window 2: candidate 0 against 2 and 3 (the hardest: 0.4), 1 against 3 only
    total, count = sliding_window_terms(scores, relevance, gap=0.35, window=2)
    torch.testing.assert_close(total, torch.tensor(0.6))


def test_relevance_is_the_best_match_among_a_videos_captions() -> None:
    sentence = np.array(
        [[1, 0, 0], [0, 1, 0], [0.6, 0.8, 0], [0, 0, 1], [0, 0.6, 0.8]], dtype=np.float32
    )
    caption_video = np.array([0, 0, 1, 2, 2])  # video 0 has captions 0, 1; video 2: 3, 4
    index = video_caption_index(caption_video, 3)
    assert index.tolist() == [[0, 1], [2, -1], [3, 4]]
    static = relevance_vectors(sentence, index, np.array([0, 2, 3]), np.array([0, 1, 2]))
    rel = caption_relevance(LossContext(static=static))
    # caption 2 (0.6, 0.8, 0) vs video 0's captions: max(0.6, 0.8); vs video 2: max(0, 0.48)
    torch.testing.assert_close(rel[1], torch.tensor([0.8, 1.0, 0.48]))
    torch.testing.assert_close(rel[0], torch.tensor([1.0, 0.6, 0.0]))
    with pytest.raises(ValueError, match="needs_relevance"):
        caption_relevance(LossContext())


@pytest.mark.parametrize("name", ["sndcg", "bcls"])
def test_training_with_relevance_objectives(tmp_path: Path, demo_dir: Path, name: str) -> None:
    run = tmp_path / name
    args = ["train", "--data", str(demo_dir), "--out", str(run), "--quiet",
            "--config", "configs/meanpool-triplet.yaml"]  # fmt: skip
    for item in [*TINY, "train.epochs=2", f"loss.name={name}"]:
        args += ["--set", item]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    term = "loss_listwise" if name == "sndcg" else "loss_kendall"
    assert all(r["train"][term] > 0 for r in records)


def test_cmgsd_static_text_from_all_captions_of_a_video() -> None:
    """With each video's only caption being the batch caption itself, the relevance is
    the captions' cosine matrix, so the margins equal the paper's caption expert's."""
    from vidret.losses.cmgsd import CMGSDLoss

    torch.manual_seed(3)
    text = torch.randn(8, 16)
    frames = torch.randn(8, 32)
    common = {"text": text, "video:frames": frames}
    paper = CMGSDLoss(alpha=0.2, beta=0.1, dynamic=False)
    ours = CMGSDLoss(alpha=0.2, beta=0.1, dynamic=False, static_text="video_captions")
    assert ours.needs_relevance and not paper.needs_relevance
    relevance = {CAPTIONS: text, VIDEO_CAPTIONS: text[:, None, :],
                 VIDEO_CAPTION_MASK: torch.ones(8, 1)}  # fmt: skip
    _, static_paper = paper.margins(LossContext(static=common))
    _, static_ours = ours.margins(LossContext(static={**common, **relevance}))
    assert [n for n, _ in static_ours] == ["sta_video:frames", "sta_text"]
    by_name = dict(static_paper)
    for name, M in static_ours:
        torch.testing.assert_close(M, by_name[name], rtol=1e-5, atol=1e-6)
    # a second caption per video can only raise the relevance (the best match counts)
    closer = F.normalize(text[:, None, :] + 0.5 * text[None, :, :].mean(1, keepdim=True), dim=-1)
    two = {CAPTIONS: text, VIDEO_CAPTIONS: torch.cat([text[:, None, :], closer], 1),
           VIDEO_CAPTION_MASK: torch.ones(8, 2)}  # fmt: skip
    r1 = caption_relevance(LossContext(static=relevance))
    r2 = caption_relevance(LossContext(static=two))
    assert (r2 >= r1 - 1e-6).all()


@pytest.mark.parametrize("name", ["cmgsd", "adaptive_infonce"])
def test_training_with_the_video_captions_text_expert(
    tmp_path: Path, demo_dir: Path, name: str
) -> None:
    run = tmp_path / name
    base = "configs/meanpool-cmgsd.yaml"
    args = ["train", "--data", str(demo_dir), "--out", str(run), "--quiet", "--config", base]
    for item in [*TINY, "train.epochs=2", f"loss.name={name}", "loss.static_text=video_captions"]:
        args += ["--set", item]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(np.isfinite(r["train"]["loss"]) for r in records)
