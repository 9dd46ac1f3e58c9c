"""A compact multi-modal transformer over the frames of all experts (`model.variant:
compact`; the default, `published`, is `vidret.models.mmt_published`, true to gabeur/mmt).

Each expert contributes an aggregation token (initialized from its max-pooled projected
frames) and up to `max_frames` frame tokens; every token carries an expert-type and a
temporal embedding. A transformer encoder lets experts and moments attend to each
other, and the output at each aggregation token is that expert's video embedding. The
caption predicts one embedding per expert and mixture weights, as in MMT.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidret.config import ModelConfig
from vidret.models.base import Backbone, MixtureTextHead, ModelSignature
from vidret.models.layers import (
    GatedEmbeddingUnit,
    even_frames,
    gather_frames,
    masked_max,
    normalize,
)
from vidret.models.types import Embeddings, TextFeatures, VideoBatch


class MultiModalTransformer(Backbone):
    def __init__(self, cfg: ModelConfig, signature: ModelSignature):
        super().__init__(cfg, signature)
        d = cfg.hidden_dim
        if d % cfg.heads:
            raise ValueError(f"model.hidden_dim ({d}) must be divisible by model.heads")
        self.project = nn.ModuleDict({e: nn.Linear(dim, d) for e, dim in signature.experts.items()})
        self.expert_type = nn.Embedding(len(signature.experts), d)
        self.temporal = nn.Embedding(cfg.max_frames + 1, d)  # 0: the aggregation token
        layer = nn.TransformerEncoderLayer(
            d,
            cfg.heads,
            dim_feedforward=cfg.ffn_dim or 2 * d,
            dropout=cfg.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.embed = nn.ModuleDict(
            {e: GatedEmbeddingUnit(d, cfg.embed_dim, cfg.dropout) for e in signature.experts}
        )
        self.text_head = MixtureTextHead(
            signature.text_dim, self.expert_names, cfg.embed_dim, cfg.dropout
        )

    def encode_video(self, video: VideoBatch) -> Embeddings:
        tokens, pads, agg_index = [], [], []
        for k, name in enumerate(self.expert_names):
            frames, valid = sample_frames(
                video.features[name], video.lengths[name], self.cfg.max_frames
            )
            x = self.project[name](frames)  # [B, K, d]
            K = x.shape[1]
            x = x + self.temporal(torch.arange(1, K + 1, device=x.device))[None]
            agg = masked_max(x, valid)[:, None] + self.temporal.weight[0]
            expert = self.expert_type.weight[k]
            agg_index.append(sum(t.shape[1] for t in tokens))
            tokens.append(torch.cat([agg, x], dim=1) + expert)
            # The aggregation token is never padding, so no row is ever fully masked.
            pads.append(torch.cat([torch.zeros_like(valid[:, :1]), ~valid], dim=1))
        out = self.norm(self.encoder(torch.cat(tokens, 1), src_key_padding_mask=torch.cat(pads, 1)))
        vectors = torch.stack(
            [
                normalize(self.embed[name](out[:, i]))
                for name, i in zip(self.expert_names, agg_index, strict=True)
            ],
            dim=1,
        )
        return Embeddings(vectors, self.presence(video))

    def encode_text(self, text: TextFeatures) -> Embeddings:
        return self.text_head(text)


def sample_frames(x: Tensor, lengths: Tensor, max_frames: int) -> tuple[Tensor, Tensor]:
    """At most `max_frames` evenly spaced valid frames per video, and their validity mask."""
    index, valid = even_frames(lengths, x.shape[1], max_frames)
    return gather_frames(x, index), valid
