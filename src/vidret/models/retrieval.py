"""The retrieval model: a caption encoder and a backbone, scored by `similarity`.

This is all that runs at test time; training objectives (including CMGSD's adaptive
margin) only read its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from vidret.config import RunConfig
from vidret.models.base import Backbone, ModelSignature
from vidret.models.registry import build_backbone
from vidret.models.similarity import similarity
from vidret.models.text_encoders import build_text_encoder
from vidret.models.types import Embeddings, TextBatch, VideoBatch


@dataclass
class ForwardOutput:
    """A batch's similarities and the embeddings they came from (what objectives read)."""

    sims: Tensor  # [num_captions, num_videos]
    text: Embeddings
    video: Embeddings
    caption: Tensor  # [num_captions, D] the caption encoder's output, before the heads


class RetrievalModel(nn.Module):
    def __init__(self, text_encoder: nn.Module, backbone: Backbone):
        super().__init__()
        self.text_encoder = text_encoder
        self.backbone = backbone

    def embed_text(self, batch: TextBatch) -> Embeddings:
        return self.backbone.encode_text(self.text_encoder(batch))

    def embed_video(self, batch: VideoBatch) -> Embeddings:
        return self.backbone.encode_video(batch)

    def forward(self, text: TextBatch, video: VideoBatch) -> ForwardOutput:
        features = self.text_encoder(text)
        t, v = self.backbone.encode_text(features), self.embed_video(video)
        return ForwardOutput(similarity(t, v), t, v, features.pooled)


def build_model(cfg: RunConfig, signature: ModelSignature, text_model_path: str) -> RetrievalModel:
    return RetrievalModel(
        build_text_encoder(cfg.text, signature.text_dim, text_model_path),
        build_backbone(cfg.model, signature),
    )
