"""What flows between the data, the caption encoder, the backbones and the objectives."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class VideoBatch:
    """Per-expert frame features of B videos; `lengths[e][b] == 0` marks a missing expert."""

    features: dict[str, Tensor]  # expert -> [B, frames, dim]
    lengths: dict[str, Tensor]  # expert -> [B] int64
    # expert -> [B, frames] seconds of each frame (NaN unknown), for experts that have them
    times: dict[str, Tensor] = field(default_factory=dict)
    # expert -> [B, frames, regions, dim] region features and [B, frames, regions] bool real
    # regions, for experts that have them, when the model reads regions
    regions: dict[str, Tensor] = field(default_factory=dict)
    region_mask: dict[str, Tensor] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> VideoBatch:
        move = lambda d: {k: v.to(device, non_blocking=True) for k, v in d.items()}  # noqa: E731
        return VideoBatch(
            move(self.features),
            move(self.lengths),
            move(self.times),
            move(self.regions),
            move(self.region_mask),
        )

    def __len__(self) -> int:
        return len(next(iter(self.lengths.values())))


@dataclass
class TextBatch:
    """Captions as the caption encoder needs them: cached vectors, token features or text."""

    sentence: Tensor | None = None  # [B, D] frozen sentence vectors
    tokens: Tensor | None = None  # [B, T, D] frozen token features
    lengths: Tensor | None = None  # [B] valid tokens
    texts: list[str] = field(default_factory=list)  # raw captions (fine-tuning)

    def to(self, device: torch.device | str) -> TextBatch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return TextBatch(move(self.sentence), move(self.tokens), move(self.lengths), self.texts)


@dataclass
class TextFeatures:
    """The caption encoder's output: one vector per caption, and its token sequence."""

    pooled: Tensor  # [B, D]
    tokens: Tensor  # [B, T, D] (a sentence vector is a sequence of one token)
    mask: Tensor  # [B, T] bool, True where a token is valid


@dataclass
class Embeddings:
    """Per-expert unit vectors of one side, with each expert's weight.

    Video side: weights are 1 where the expert is present, 0 where missing.
    Text side: caption-predicted expert weights (a mixture of embedding experts).
    A backbone with one joint space has E = 1.
    """

    vectors: Tensor  # [B, E, d], L2-normalized along d
    weights: Tensor  # [B, E]
    # probabilistic backbones (ProTA), in training: each item's mean token variance and the
    # KL of its token distributions to N(0, I), [B] each; None for point embeddings
    uncertainty: Tensor | None = None
    kl: Tensor | None = None

    @classmethod
    def joint(cls, vectors: Tensor) -> Embeddings:
        """One joint space: `vectors` [B, 1, d], every weight 1."""
        return cls(vectors, torch.ones(vectors.shape[:2], device=vectors.device))
