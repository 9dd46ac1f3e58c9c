"""`model.variant: published` against gabeur/mmt's `CENet` + `BertModel`, point by point:
each test states the reference behaviour it checks (model/model.py, model/bert.py,
base/base_dataset.py of gabeur/mmt)."""

from __future__ import annotations

import math

import torch

from vidret.config import ModelConfig
from vidret.models.base import ModelSignature
from vidret.models.mmt_published import PublishedMMT, _positions
from vidret.models.registry import build_backbone
from vidret.models.types import VideoBatch

SIG = ModelSignature(experts={"rgb": 12, "audio": 6}, frames={"rgb": 10, "audio": 4}, text_dim=8)


def model(**overrides: object) -> PublishedMMT:
    settings = {"hidden_dim": 16, "embed_dim": 16, "heads": 2, "layers": 2, "max_frames": 4,
                "dropout": 0.0, **overrides}  # fmt: skip
    cfg = ModelConfig(backbone="mmt", **settings)
    torch.manual_seed(0)
    m = build_backbone(cfg, SIG)
    assert isinstance(m, PublishedMMT)
    return m.eval()


def batch(B: int = 3, times: bool = False) -> VideoBatch:
    g = torch.Generator().manual_seed(1)
    feats = {"rgb": torch.randn(B, 10, 12, generator=g), "audio": torch.randn(B, 4, 6, generator=g)}
    lengths = {"rgb": torch.tensor([10, 7, 10][:B]), "audio": torch.tensor([4, 0, 2][:B])}
    t = {"rgb": torch.arange(10.0).repeat(B, 1) * 0.2} if times else {}
    return VideoBatch(feats, lengths, t)


def test_encoder_is_bert_post_norm_with_gelu_and_wide_feed_forward() -> None:
    """BertLayer: attention -> add & LayerNorm -> dense(intermediate) -> gelu -> dense ->
    add & LayerNorm; eps 1e-12; intermediate 3,072 at d 512 (6 x d)."""
    layer = model().encoder.layers[0]
    assert layer.norm_first is False
    assert layer.activation_relu_or_gelu == 2  # gelu
    assert layer.linear1.out_features == 6 * 16 and layer.norm1.eps == 1e-12
    assert model(ffn_dim=40).encoder.layers[0].linear1.out_features == 40


def test_reduce_dim_normalises_so_feature_scale_does_not_matter() -> None:
    """ReduceDim = Linear then L2 normalisation; with BERT's init (zero biases) a feature
    scaled by 10 reduces to the same unit vector, so the embeddings do not change."""
    m, b = model(), batch()
    scaled = VideoBatch({k: v * 10 for k, v in b.features.items()}, b.lengths)
    torch.testing.assert_close(m.encode_video(b).vectors, m.encode_video(scaled).vectors)


def test_a_missing_experts_aggregation_token_is_masked() -> None:
    """attention_mask of [AGG] = ind[modality]: the features of an expert the video lacks
    reach no other token; the video side keeps every expert's weight at 1."""
    m, b = model(), batch()
    changed = VideoBatch(dict(b.features), b.lengths)
    changed.features["audio"] = b.features["audio"].clone()
    changed.features["audio"][1] += 100.0  # video 1 has no audio (length 0)
    before, after = m.encode_video(b), m.encode_video(changed)
    torch.testing.assert_close(before.vectors[1], after.vectors[1])
    assert torch.equal(before.weights, torch.ones(3, 2))
    changed.features["audio"][0] += 100.0  # video 0 has audio: the rgb output moves
    assert not torch.allclose(before.vectors[0, 0], m.encode_video(changed).vectors[0, 0])


def test_aggregation_token_is_the_max_pool_of_all_raw_frames() -> None:
    """`out_tok: mxp`: the [AGG] feature is ReduceDim(max over every frame of the expert),
    computed before the frames are cut to max_expert_tokens; a frame not among the 4 kept
    still changes the embedding through the max."""
    m, b = model(), batch()
    changed = VideoBatch({k: v.clone() for k, v in b.features.items()}, b.lengths)
    changed.features["rgb"][0, 3] += 50.0  # kept frames of a 10-frame video: 0, 2, 5, 7
    assert not torch.allclose(m.encode_video(b).vectors[0], m.encode_video(changed).vectors[0])


def test_positions_follow_mmt_times() -> None:
    """Loader: features_t + 2 (temporal window 1, clip from 0); model: clamp to
    [0, max_position_embeddings - 1] then .long(); frames without a time are 1."""
    times = torch.tensor([[0.1, 1.7, float("nan"), 40.0]])
    ids = _positions(times, torch.arange(4)[None], 32)  # MMT's MSR-VTT configs
    assert ids.tolist() == [[2, 3, 1, 31]]
    assert _positions(times, torch.arange(4)[None], 102).tolist() == [[2, 3, 1, 42]]  # ActivityNet
    ordered = _positions(None, torch.arange(4)[None], 32)
    assert ordered.tolist() == [[1, 2, 3, 4]]  # `ordr` when the data has no times
    wide = ModelConfig(backbone="mmt", hidden_dim=16, embed_dim=16, heads=2, positions=102)
    assert build_backbone(wide, SIG).position.num_embeddings == 102
    m = model()
    assert not torch.allclose(
        m.encode_video(batch(times=True)).vectors, m.encode_video(batch()).vectors
    )


def test_text_side_is_gated_units_with_batch_norm_and_softmax_weights() -> None:
    """`txt_pro: gbn` (GatedEmbeddingUnit with BatchNorm in its context gating) per expert;
    `txt_wgh: emb` softmax weights over experts from the caption."""
    from vidret.models.types import TextFeatures

    m = model()
    assert all(isinstance(h.gate.norm, torch.nn.BatchNorm1d) for h in m.text_head.heads)
    text = TextFeatures(torch.randn(5, 8), torch.randn(5, 1, 8), torch.ones(5, 1, dtype=torch.bool))
    out = m.encode_text(text)
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(5))
    torch.testing.assert_close(out.vectors.norm(dim=-1), torch.ones(5, 2))


def test_bert_initialisation() -> None:
    """BertModel._init_weights: N(0, 0.02) weights, zero biases, LayerNorm at (1, 0)."""
    m = model(hidden_dim=64, embed_dim=64)
    w = m.encoder.layers[0].linear1.weight
    assert abs(w.std().item() - 0.02) < 0.003 and m.encoder.layers[0].linear1.bias.abs().max() == 0
    assert math.isclose(m.position.weight.std().item(), 0.02, rel_tol=0.2)
