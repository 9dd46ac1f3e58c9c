"""Collaborative Experts (Liu et al., BMVC 2019), sized for a CPU: `model.variant: compact`
(the default, `published`, is `vidret.models.ce_published`, true to the authors' code).

Per expert: temporal aggregation (mean and max over valid frames) and a projection;
collaborative gating (each expert is gated by messages from the others it co-occurs
with); a gated embedding unit into the joint space. The caption predicts one embedding
per expert and the weights that mix the per-expert cosines.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidret.config import ModelConfig
from vidret.models.base import Backbone, MixtureTextHead, ModelSignature
from vidret.models.layers import (
    GatedEmbeddingUnit,
    frame_mask,
    masked_max,
    masked_mean,
    mlp,
    normalize,
)
from vidret.models.types import Embeddings, TextFeatures, VideoBatch


class CollaborativeExperts(Backbone):
    def __init__(self, cfg: ModelConfig, signature: ModelSignature):
        super().__init__(cfg, signature)
        h = cfg.hidden_dim
        self.project = nn.ModuleDict(
            {e: nn.Sequential(nn.Linear(2 * d, h), nn.GELU()) for e, d in signature.experts.items()}
        )
        # g: message from expert j to expert i; f: gate of i from the summed messages.
        self.message = mlp(2 * h, h, h, cfg.dropout)
        self.gate = mlp(h, h, h, cfg.dropout)
        self.embed = nn.ModuleDict(
            {e: GatedEmbeddingUnit(h, cfg.embed_dim, cfg.dropout) for e in signature.experts}
        )
        self.text_head = MixtureTextHead(
            signature.text_dim, self.expert_names, cfg.embed_dim, cfg.dropout
        )

    def encode_video(self, video: VideoBatch) -> Embeddings:
        present = self.presence(video)  # [B, E]
        pooled = []
        for name in self.expert_names:
            x, lengths = video.features[name], video.lengths[name]
            mask = frame_mask(lengths, x.shape[1])
            pooled.append(
                self.project[name](torch.cat([masked_mean(x, mask), masked_max(x, mask)], -1))
            )
        x = torch.stack(pooled, dim=1)  # [B, E, h]
        x = x * self._collaborative_gates(x, present)
        vectors = torch.stack(
            [normalize(self.embed[name](x[:, k])) for k, name in enumerate(self.expert_names)],
            dim=1,
        )
        return Embeddings(vectors, present)

    def _collaborative_gates(self, x: Tensor, present: Tensor) -> Tensor:
        """sigmoid(f(sum over present j != i of g([x_i, x_j]))) for every expert i."""
        B, E, h = x.shape
        pairs = torch.cat([x[:, :, None].expand(B, E, E, h), x[:, None].expand(B, E, E, h)], -1)
        messages = self.message(pairs)  # [B, i, j, h]
        allowed = present[:, None, :] * (1 - torch.eye(E, device=x.device))[None]
        summed = (messages * allowed[..., None]).sum(2)
        return torch.sigmoid(self.gate(summed))

    def encode_text(self, text: TextFeatures) -> Embeddings:
        return self.text_head(text)
