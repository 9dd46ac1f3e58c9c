"""Per-expert vectors as NumPy arrays: queries and indexed videos on the search path.

A search runs without PyTorch (`vidret.search.query_tower`), so the model's similarity is
computed here in NumPy as `vidret.models.similarity` defines it:

    sim(i, j) = sum_e w_t[i, e] * w_v[j, e] * cos(t[i, e], v[j, e]) / sum_e w_t[i, e] * w_v[j, e]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ExpertVectors:
    vectors: np.ndarray  # float32 [B, E, d], unit vectors
    weights: np.ndarray  # float32 [B, E]

    @classmethod
    def of(cls, embeddings: Any) -> ExpertVectors:
        """From the models' `Embeddings` (PyTorch tensors)."""
        return cls(
            embeddings.vectors.detach().float().cpu().numpy(),
            embeddings.weights.detach().float().cpu().numpy(),
        )

    def rows(self, ids: Any) -> ExpertVectors:
        return ExpertVectors(self.vectors[ids], self.weights[ids])

    def flatten(self) -> np.ndarray:
        """`[B, E * d]` vectors times their weights: FAISS rows and queries."""
        v = self.vectors * self.weights[..., None]
        return np.ascontiguousarray(v.reshape(v.shape[0], -1), dtype=np.float32)


def similarity(text: ExpertVectors, video: ExpertVectors) -> np.ndarray:
    """`[num_texts, num_videos]` similarities in [-1, 1]."""
    if text.vectors.shape[1] == 1:
        return text.vectors[:, 0] @ video.vectors[:, 0].T
    cos = np.einsum("ied,jed->ije", text.vectors, video.vectors)
    w = text.weights[:, None, :] * video.weights[None, :, :]
    return (cos * w).sum(-1) / np.maximum(w.sum(-1), 1e-8)
