"""`model.variant: published` for ce against albanie/collaborative-experts `model/model.py`
(`CEModule` with use_ce pairwise, include_self 1, use_mish 1, use_bn_reason 1,
num_g_layers 3, num_h_layers 0) and `model/net_vlad.py`; each test names the behaviour."""

from __future__ import annotations

import torch

from vidret.config import ModelConfig
from vidret.models.base import ModelSignature
from vidret.models.ce_published import PublishedCE
from vidret.models.registry import build_backbone
from vidret.models.types import TextFeatures, VideoBatch

SIG = ModelSignature(
    experts={"rgb": 10, "audio": 6, "face": 4}, frames={"rgb": 5, "audio": 7, "face": 1}, text_dim=8
)


def model() -> PublishedCE:
    cfg = ModelConfig(backbone="ce", hidden_dim=16, embed_dim=16, dropout=0.0, vlad_clusters=3)
    torch.manual_seed(0)
    m = build_backbone(cfg, SIG)
    assert isinstance(m, PublishedCE)
    return m.eval()


def batch() -> VideoBatch:
    g = torch.Generator().manual_seed(2)
    feats = {
        "rgb": torch.randn(4, 5, 10, generator=g),
        "audio": torch.randn(4, 7, 6, generator=g),
        "face": torch.randn(4, 1, 4, generator=g),
    }
    lengths = {
        "rgb": torch.tensor([5, 5, 3, 5]),
        "audio": torch.tensor([7, 0, 4, 0]),
        "face": torch.tensor([1, 0, 1, 0]),
    }
    return VideoBatch(feats, lengths)


def test_message_function_is_linear_then_batch_norm_mish_linear_twice() -> None:
    """g_reason_1 (2d -> d), then g_reason_shared = [BN, Mish, Linear] x (num_g_layers - 1)."""
    kinds = [type(layer).__name__ for layer in model().message]
    assert kinds == ["Linear", "BatchNorm1d", "Mish", "Linear", "BatchNorm1d", "Mish", "Linear"]


def test_gating_includes_the_expert_itself() -> None:
    """include_self: itertools.product(experts, repeat=2), so a video with one expert still
    receives the message g([x_i, x_i]); changing g changes its embedding (without the self
    pair it would have no available pair and a zero message)."""
    m, b = model(), batch()
    before = m.encode_video(b).vectors[3, 0]  # video 3: rgb only
    with torch.no_grad():
        m.message[-1].bias += 1.0
    assert not torch.allclose(before, m.encode_video(b).vectors[3, 0])


def test_missing_experts_drop_out_of_the_similarity() -> None:
    """keep_missing_modalities false: availability times the caption's weights,
    renormalised; the video side carries 0 for a missing expert."""
    out = model().encode_video(batch())
    assert out.weights.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 1], [1, 0, 0]]


def test_variable_length_experts_are_netvlad_pooled_without_their_padding() -> None:
    """CE pools audio, speech and OCR with NetVLAD: a set pooling, so the order of the
    frames does not matter; vidret also leaves padded frames out of the assignment."""
    m, b = model(), batch()
    assert set(m.vlad) == {"audio"}
    shuffled = VideoBatch(dict(b.features), b.lengths)
    shuffled.features["audio"] = b.features["audio"].clone()
    shuffled.features["audio"][0] = b.features["audio"][0].flip(0)  # all 7 frames valid
    shuffled.features["audio"][2, 4:] += 9.0  # video 2: only 4 valid frames
    torch.testing.assert_close(m.encode_video(b).vectors, m.encode_video(shuffled).vectors)


def test_caption_is_netvlad_of_its_words_then_gated_units_with_batch_norm() -> None:
    """CENet: text_pooling = NetVLAD over word features; text_GU = GatedEmbeddingUnit(use_bn);
    moe_fc + softmax gives the expert weights."""
    m = model()
    tokens = torch.randn(3, 6, 8)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]] * 3, dtype=torch.bool)
    out = m.encode_text(TextFeatures(tokens.mean(1), tokens, mask))
    permuted = tokens[:, [3, 1, 0, 2, 5, 4]]
    permuted[:, 4:] = 7.0  # padding
    again = m.encode_text(TextFeatures(permuted.mean(1), permuted, mask))
    torch.testing.assert_close(out.vectors, again.vectors)
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(3))
    assert all(isinstance(u.gate.norm, torch.nn.BatchNorm1d) for u in m.text_units)


def test_a_missing_expert_enters_reduce_dim_as_zeros() -> None:
    """CE's `drop_nans` sets a missing expert's features to 0 before ReduceDim (fc, then
    F.normalize), so what its reasoning unit and batch norm see is normalize(bias), not a
    zero vector (which shifts the batch-norm statistics)."""
    m, b = model(), batch()
    seen: dict[str, torch.Tensor] = {}
    for name in ("audio", "face"):
        m.reason_fc[name].register_forward_hook(
            lambda module, inputs, output, name=name: seen.__setitem__(name, inputs[0])
        )
    m.encode_video(b)
    for name in ("audio", "face"):
        missing = b.lengths[name] == 0
        expected = torch.nn.functional.normalize(m.reduce[name].bias, dim=0)
        assert torch.allclose(seen[name][missing], expected.expand(int(missing.sum()), -1))
        assert not torch.allclose(seen[name][~missing][0], expected)
