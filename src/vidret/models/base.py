"""The contract every backbone keeps, and what it is built from."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from vidret.config import ModelConfig
from vidret.models.layers import GatedEmbeddingUnit, normalize
from vidret.models.types import Embeddings, TextFeatures, VideoBatch


@dataclass(frozen=True)
class ModelSignature:
    """The input shapes a model is built for; saved with a run so eval can check data."""

    experts: dict[str, int]  # expert name -> feature dim, in a fixed order
    frames: dict[str, int]  # expert name -> frames per video in the training data
    text_dim: int
    # expert -> [regions per frame, region dim] for the experts whose region features the
    # model reads (region backbones on data that has them); empty otherwise
    regions: dict[str, list[int]] = field(default_factory=dict)


class Backbone(nn.Module):
    """Maps videos and captions to per-expert embeddings (see `Embeddings`).

    `encode_video(...).vectors` are the model's own video embeddings (one per expert, or
    one joint) and `encode_text(...).vectors` its caption embeddings: CMGSD's dynamic
    supervision experts read them.
    """

    # reads the regions of each frame (`<expert>.regions.npy`) where the data has them
    reads_regions: bool = False

    def __init__(self, cfg: ModelConfig, signature: ModelSignature):
        super().__init__()
        self.cfg = cfg
        self.signature = signature
        self.expert_names = list(signature.experts)

    def encode_video(self, video: VideoBatch) -> Embeddings:
        raise NotImplementedError

    def encode_text(self, text: TextFeatures) -> Embeddings:
        raise NotImplementedError

    def presence(self, video: VideoBatch) -> Tensor:
        """[B, E] float: 1 where the video has that expert."""
        return torch.stack([(video.lengths[e] > 0).float() for e in self.expert_names], dim=1)


class MixtureTextHead(nn.Module):
    """Per-expert caption embeddings and caption-predicted expert weights (MoEE, CE, MMT)."""

    def __init__(
        self,
        text_dim: int,
        experts: list[str],
        embed_dim: int,
        dropout: float,
        batch_norm: bool = False,
    ):
        super().__init__()
        self.heads = nn.ModuleList(
            GatedEmbeddingUnit(text_dim, embed_dim, dropout, batch_norm) for _ in experts
        )
        self.weights = nn.Linear(text_dim, len(experts))

    def forward(self, text: TextFeatures) -> Embeddings:
        vectors = torch.stack([normalize(h(text.pooled)) for h in self.heads], dim=1)
        return Embeddings(vectors, torch.softmax(self.weights(text.pooled), dim=-1))
