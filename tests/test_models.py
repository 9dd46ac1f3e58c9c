"""Backbones: shapes, gradients, one or several experts, and missing experts masked."""

from __future__ import annotations

import pytest
import torch

from vidret.config import ModelConfig, RunConfig
from vidret.models.base import ModelSignature
from vidret.models.registry import BACKBONES, build_backbone
from vidret.models.retrieval import build_model
from vidret.models.similarity import similarity
from vidret.models.types import Embeddings, TextBatch, TextFeatures, VideoBatch

SIG = ModelSignature(experts={"rgb": 12, "audio": 6}, frames={"rgb": 7, "audio": 5}, text_dim=16)
CFG = ModelConfig(embed_dim=8, hidden_dim=16, heads=2, layers=1, max_frames=4, dropout=0.0)


def video(B: int = 5, seed: int = 0, audio_lengths: list[int] | None = None) -> VideoBatch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(audio_lengths or [5, 3, 0, 1, 5][:B])
    audio = torch.randn(B, 5, 6, generator=g)
    audio[torch.arange(5)[None, :] >= lengths[:, None]] = 0.0
    return VideoBatch(
        {"rgb": torch.randn(B, 7, 12, generator=g), "audio": audio},
        {"rgb": torch.tensor([7, 2, 7, 4, 7][:B]), "audio": lengths},
    )


def text(B: int = 5, seed: int = 1) -> TextFeatures:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(B, 6, 16, generator=g)
    mask = torch.arange(6)[None] < torch.tensor([6, 2, 4, 1, 3][:B])[:, None]
    return TextFeatures(pooled=tokens.mean(1), tokens=tokens, mask=mask)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_shapes_norms_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = build_backbone(CFG.model_copy(update={"backbone": name}), SIG)
    v, t = model.encode_video(video()), model.encode_text(text())
    assert v.vectors.shape[0] == 5 and v.vectors.shape[2] == 8
    assert torch.allclose(v.vectors.norm(dim=-1), torch.ones(v.vectors.shape[:2]), atol=1e-5)
    sims = similarity(t, v)
    assert sims.shape == (5, 5) and sims.abs().max() <= 1 + 1e-5
    sims.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert sum(g is not None and g.abs().sum() > 0 for g in grads) > len(grads) // 2


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_a_missing_expert_is_ignored(name: str) -> None:
    # Video 2 has no audio: whatever its (padding) audio features hold, nothing changes.
    torch.manual_seed(0)
    model = build_backbone(CFG.model_copy(update={"backbone": name}), SIG).eval()
    a = video()
    b = video()
    b.features["audio"][2] = 123.0
    with torch.no_grad():
        sa = similarity(model.encode_text(text()), model.encode_video(a))
        sb = similarity(model.encode_text(text()), model.encode_video(b))
    assert torch.allclose(sa[:, 2], sb[:, 2], atol=1e-5)
    assert torch.allclose(sa, sb, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_padding_frames_are_ignored(name: str) -> None:
    torch.manual_seed(0)
    model = build_backbone(CFG.model_copy(update={"backbone": name}), SIG).eval()
    a, b = video(), video()
    b.features["rgb"][1, 2:] = 50.0  # video 1 has 2 valid rgb frames
    with torch.no_grad():
        va, vb = model.encode_video(a).vectors, model.encode_video(b).vectors
    assert torch.allclose(va, vb, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_single_expert(name: str) -> None:
    sig = ModelSignature(experts={"rgb": 12}, frames={"rgb": 7}, text_dim=16)
    model = build_backbone(CFG.model_copy(update={"backbone": name}), sig)
    v = video()
    v = VideoBatch({"rgb": v.features["rgb"]}, {"rgb": v.lengths["rgb"]})
    assert similarity(model.encode_text(text()), model.encode_video(v)).shape == (5, 5)


def test_similarity_renormalizes_weights_over_present_experts() -> None:
    t = Embeddings(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), torch.tensor([[0.25, 0.75]]))
    v = Embeddings(
        torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]]),
        torch.tensor([[1.0, 1.0], [0.0, 1.0]]),
    )
    sims = similarity(t, v)
    # video 0: 0.25*1 + 0.75*0 ; video 1 lacks expert 0, so only expert 1 counts: cos = 1
    assert sims.tolist() == [[0.25, 1.0]]


def test_sentence_model_end_to_end() -> None:
    cfg = RunConfig.model_validate({"model": CFG.model_dump() | {"backbone": "mmt"}})
    model = build_model(cfg, SIG, text_model_path="unused-for-sentence-vectors")
    batch = TextBatch(sentence=torch.randn(5, 16))
    out = model(batch, video())
    assert out.sims.shape == (5, 5) and out.video.vectors.shape == (5, 2, 8)
