"""The seeds' fine-grained backbones (ProTA, ViSERN, AME-Net) and ProTA's loss: hand
computations on tiny inputs, masking, and training with every objective."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import TINY, clip_dataset
from vidret.config import LossConfig, ModelConfig, load_config
from vidret.errors import VidretError
from vidret.losses.base import LossContext
from vidret.losses.infonce import InfoNCE
from vidret.losses.prota import ProTALoss
from vidret.models.amenet import PairRelations
from vidret.models.base import ModelSignature
from vidret.models.registry import build_backbone
from vidret.models.similarity import similarity
from vidret.models.types import Embeddings, TextFeatures, VideoBatch
from vidret.models.visern import RandomWalkGraphConvolution
from vidret.train.trainer import train

B, F, R, D, T = 5, 7, 3, 6, 4


def _model(backbone: str, regions: bool, **cfg) -> nn.Module:
    region_dims = {"frames": [R, D]} if regions else {}
    signature = ModelSignature({"frames": D}, {"frames": F}, 8, region_dims)
    config = ModelConfig(backbone=backbone, hidden_dim=16, embed_dim=8, max_frames=F, layers=1,
                         heads=2, dropout=0.0, **cfg)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_backbone(config, signature).eval()


def _video(regions: bool, pad: float = 0.0) -> VideoBatch:
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([7, 4, 1, 0, 3])
    x = torch.randn(B, F, D, generator=g)
    valid = torch.arange(F)[None] < lengths[:, None]
    video = VideoBatch({"frames": torch.where(valid[..., None], x, pad)}, {"frames": lengths})
    if regions:
        r = torch.randn(B, F, R, D, generator=g)
        mask = valid[..., None].expand(B, F, R).clone()
        mask[1, :, 0] = False  # video 1 lacks region 0 in every frame
        video.regions["frames"] = torch.where(mask[..., None], r, pad)
        video.region_mask["frames"] = mask | (torch.rand(B, F, R, generator=g) > 2)
    return video


@pytest.mark.parametrize("backbone", ["prota", "visern", "amenet"])
@pytest.mark.parametrize("regions", [True, False])
def test_padding_frames_and_missing_regions_change_nothing(backbone: str, regions: bool) -> None:
    model = _model(backbone, regions)
    with torch.no_grad():
        a, b = model.encode_video(_video(regions)), model.encode_video(_video(regions, pad=50.0))
    torch.testing.assert_close(a.vectors, b.vectors)
    torch.testing.assert_close(a.weights, b.weights)
    assert torch.isfinite(a.vectors).all()
    norms = a.vectors.norm(dim=-1)
    assert ((norms - 1).abs() < 1e-4).logical_or(norms == 0).all()


def test_random_walk_step_by_hand() -> None:
    """Three regions, the third masked: transition = row softmax of phi(h) psi(h)^T / sqrt(d)
    over the two real ones; h' = LayerNorm((1 - a) GELU(P h W) + a h0), zero where masked."""
    torch.manual_seed(0)
    step = RandomWalkGraphConvolution(2, restart=0.25)
    h = torch.tensor([[1.0, 0.0], [0.0, 2.0], [9.0, 9.0]])
    h0 = torch.tensor([[0.5, 0.5], [1.0, -1.0], [3.0, 3.0]])
    mask = torch.tensor([True, True, False])
    torch.set_grad_enabled(False)
    out = step(h, h0, mask)
    phi, psi, w = step.phi(h[:2]), step.psi(h[:2]), step.weight(h[:2])
    rows = []
    for i in range(2):
        scores = [float(phi[i] @ psi[j]) / math.sqrt(2) for j in range(2)]
        p = [math.exp(s) / sum(math.exp(t) for t in scores) for s in scores]
        walked = nn.functional.gelu(p[0] * w[0] + p[1] * w[1])
        rows.append(step.norm(0.75 * walked + 0.25 * h0[i]))
    torch.testing.assert_close(out[:2], torch.stack(rows))
    assert out[2].abs().sum() == 0
    # a restart share of 1: the walk is ignored, the region keeps its own content
    step.restart = 1.0
    torch.testing.assert_close(step(h, h0, mask)[:2], step.norm(h0[:2]))
    torch.set_grad_enabled(True)


@pytest.mark.parametrize("regions", [False, True])
def test_visern_graph_is_inert_with_one_region_a_frame(regions: bool) -> None:
    """What the msrvtt-1k rows measure (issue 27): with one region a frame the walk has one
    vertex, so the affinity weights (phi, psi) change nothing; with several they do."""
    model = _model("visern", regions, restart=0.2)
    with torch.no_grad():
        before = model.encode_video(_video(regions)).vectors
        for step in model.modules():
            if isinstance(step, RandomWalkGraphConvolution):
                for layer in (step.phi, step.psi):
                    layer.weight.normal_(0.0, 3.0)
        after = model.encode_video(_video(regions)).vectors
    change = float((after - before).abs().max())
    assert (change > 1e-3) if regions else (change == 0.0), change


def test_relation_pairs_by_hand() -> None:
    """Two regions a frame: pairs (0,1), (1,0) within frame t and the 4 pairs (i of t, j of
    t + 1); the last frame has only its within pairs; a masked region is in no pair."""
    torch.manual_seed(0)
    rel = PairRelations(3, 4)
    regions = torch.randn(1, 3, 2, 3)
    mask = torch.tensor([[[True, True], [True, True], [True, False]]])
    out, has_pairs = rel(regions, mask)
    h = rel.project(regions)[0]

    def g(i: tuple[int, int], j: tuple[int, int]) -> torch.Tensor:
        return torch.relu(rel.left(h[i]) + rel.right(h[j]))

    for t in range(3):
        real = [(t, k) for k in range(2) if mask[0, t, k]]
        nxt = [(t + 1, k) for k in range(2) if t + 1 < 3 and mask[0, t + 1, k]]
        pairs = [(i, j) for i in real for j in real if i != j] + [(i, j) for i in real for j in nxt]
        want = rel.out(torch.stack([g(i, j) for i, j in pairs]).mean(0)) if pairs else None
        assert bool(has_pairs[0, t]) == bool(pairs)
        if want is not None:
            torch.testing.assert_close(out[0, t], want)
    assert not has_pairs[0, 2]  # frame 2: one real region, no next frame


def test_one_region_a_frame_relates_consecutive_frames() -> None:
    rel = PairRelations(3, 4)
    regions = torch.randn(1, 4, 1, 3)
    out, has_pairs = rel(regions, torch.ones(1, 4, 1, dtype=torch.bool))
    assert has_pairs[0].tolist() == [True, True, True, False]
    h = rel.project(regions)[0, :, 0]
    torch.testing.assert_close(out[0, 1], rel.out(torch.relu(rel.left(h[1]) + rel.right(h[2]))))


def test_prota_slots_and_samples() -> None:
    model = _model("prota", False, slots=3, samples=5)
    text = TextFeatures(torch.randn(B, 8), torch.randn(B, T, 8), torch.ones(B, T, dtype=torch.bool))
    with torch.no_grad():
        video = model.encode_video(_video(False))
        caption = model.encode_text(text)
    assert video.vectors.shape == (B, 6, 8)  # 3 slots in each of 2 spaces
    assert video.vectors[:, :3, 2:].abs().max() == 0  # the low space (8 // 4 = 2) is padded
    assert video.uncertainty is None and video.kl is None  # eval: the means only
    # masses: each token's assignment over the 3 slots and the null slot sums to 1, so the
    # slots of a video with frames receive at most all of it, and a video without frames
    # nothing
    low_mass = video.weights[:, :3].sum(1)
    assert (low_mass <= 1 + 1e-5).all() and (low_mass[:3] > 0.05).all()
    assert (video.weights[3] <= 1e-6).all()
    model.train()
    sampled = model.encode_video(_video(False))
    assert sampled.vectors.shape == (B, 30, 8) and sampled.uncertainty.shape == (B,)
    assert (sampled.kl >= 0).all()
    # with the smallest variance the sampled similarity is the means' similarity
    for module in model.modules():
        if hasattr(module, "log_var"):
            nn.init.zeros_(module.log_var.weight)
            nn.init.constant_(module.log_var.bias, -10.0)
    with torch.no_grad():
        s_train = similarity(model.encode_text(text), model.encode_video(_video(False)))
        model.eval()
        s_eval = similarity(model.encode_text(text), model.encode_video(_video(False)))
    torch.testing.assert_close(s_train, s_eval, atol=0.02, rtol=0)
    assert caption.vectors.shape == (B, 6, 8)


def test_prota_starts_nearly_deterministic() -> None:
    # A sampled similarity at initialization must still rank like the means': with unit
    # variance the samples' cosines are noise (correlation ~0.1) and training crawls.
    torch.manual_seed(0)
    signature = ModelSignature({"frames": 32}, {"frames": 8}, 24, {})
    config = ModelConfig(backbone="prota", hidden_dim=64, embed_dim=64, max_frames=8, layers=1,
                         heads=2, dropout=0.0)  # fmt: skip
    model = build_backbone(config, signature)
    video = VideoBatch({"frames": torch.randn(16, 8, 32)}, {"frames": torch.full((16,), 8)})
    text = TextFeatures(torch.randn(16, 24), torch.randn(16, 6, 24), torch.ones(16, 6).bool())
    with torch.no_grad():
        means = similarity(model.eval().encode_text(text), model.encode_video(video))
        sampled = similarity(model.train().encode_text(text), model.encode_video(video))
    assert torch.corrcoef(torch.stack([means.flatten(), sampled.flatten()]))[0, 1] > 0.6


def test_prota_loss_by_hand() -> None:
    sims = torch.tensor([[0.8, 0.1], [0.3, 0.5]])
    u_text, u_video = torch.tensor([0.2, 0.6]), torch.tensor([0.4, 0.0])
    kl_text, kl_video = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])
    ctx = LossContext(
        text=Embeddings(torch.zeros(2, 1, 1), torch.ones(2, 1), u_text, kl_text),
        video=Embeddings(torch.zeros(2, 1, 1), torch.ones(2, 1), u_video, kl_video),
    )
    loss = ProTALoss(temperature=0.1, learn_temperature=False, uncertainty_margin=0.5,
                     kl_weight=0.01)  # fmt: skip
    out = loss(sims, ctx)
    # positives lowered by 0.5 x mean uncertainty: 0.8 - 0.5 * 0.3 = 0.65, 0.5 - 0.5 * 0.3 = 0.35
    m = [[0.65, 0.1], [0.3, 0.35]]

    def ce(row: list[float], target: int) -> float:
        return -math.log(math.exp(row[target] / 0.1) / sum(math.exp(x / 0.1) for x in row))

    caption_side = (ce(m[0], 0) + ce(m[1], 1)) / 2
    video_side = (ce([m[0][0], m[1][0]], 0) + ce([m[0][1], m[1][1]], 1)) / 2
    kl = ((1.0 + 2.0) / 2 + (3.0 + 2.0) / 2) / 2
    assert out.total.item() == pytest.approx((caption_side + video_side) / 2 + 0.01 * kl, rel=1e-5)
    assert out.terms["uncertainty"] == pytest.approx(0.3)

    # special cases: point embeddings (no uncertainty) or a zero margin and KL weight: InfoNCE
    plain = InfoNCE(0.1, learn_temperature=False)(sims, LossContext()).total
    torch.testing.assert_close(loss(sims, LossContext()).total, plain)
    neutral = ProTALoss(0.1, False, uncertainty_margin=0.0, kl_weight=0.0)
    torch.testing.assert_close(neutral(sims, ctx).total, plain)


OBJECTIVES = ["triplet", "infonce", "cmgsd", "adaptive_infonce", "unified", "sndcg", "bcls",
              "prota"]  # fmt: skip


@pytest.mark.parametrize("backbone", ["prota", "visern", "amenet"])
def test_every_objective_trains_each_new_backbone(backbone: str, tmp_path: Path) -> None:
    data = clip_dataset(tmp_path / "d", with_times=True)
    for objective in OBJECTIVES:
        run = tmp_path / objective
        settings = [f"model.backbone={backbone}", f"loss.name={objective}", "train.epochs=1",
                    "data.sizes=16/4/4", "train.batch_size=8"]  # fmt: skip
        cfg = load_config(None, [*TINY, *settings])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = train(cfg, run, data, progress=False)
        assert math.isfinite(result["test"]["Rsum"]), (backbone, objective)
        lines = (run / "metrics.jsonl").read_text().splitlines()
        assert math.isfinite(json.loads(lines[-1])["train"]["loss"])


def test_config_errors_are_clear() -> None:
    with pytest.raises(VidretError, match=r"must not exceed model\.embed_dim"):
        load_config(None, ["model.backbone=prota", "model.embed_dim=16", "model.low_dim=32"])
    assert LossConfig(name="prota").kl_weight > 0
