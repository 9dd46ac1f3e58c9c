"""The baseline: mean and max pooling of every expert, and one MLP per side."""

from __future__ import annotations

import torch

from vidret.config import ModelConfig
from vidret.models.base import Backbone, ModelSignature
from vidret.models.layers import frame_mask, masked_max, masked_mean, mlp, normalize
from vidret.models.types import Embeddings, TextFeatures, VideoBatch


class MeanPool(Backbone):
    def __init__(self, cfg: ModelConfig, signature: ModelSignature):
        super().__init__(cfg, signature)
        # Per expert: mean and max pooled features, plus a presence flag.
        video_in = sum(2 * d + 1 for d in signature.experts.values())
        self.video_mlp = mlp(video_in, cfg.hidden_dim, cfg.embed_dim, cfg.dropout)
        self.text_mlp = mlp(signature.text_dim, cfg.hidden_dim, cfg.embed_dim, cfg.dropout)

    def encode_video(self, video: VideoBatch) -> Embeddings:
        parts = []
        for name in self.expert_names:
            x, lengths = video.features[name], video.lengths[name]
            mask = frame_mask(lengths, x.shape[1])
            present = (lengths > 0).to(x.dtype)[:, None]
            parts += [masked_mean(x, mask), masked_max(x, mask), present]
        vec = normalize(self.video_mlp(torch.cat(parts, dim=-1)))[:, None]
        return Embeddings.joint(vec)

    def encode_text(self, text: TextFeatures) -> Embeddings:
        vec = normalize(self.text_mlp(text.pooled))[:, None]
        return Embeddings.joint(vec)
