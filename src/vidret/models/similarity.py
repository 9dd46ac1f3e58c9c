"""Caption-video similarity: the weighted mean of per-expert cosines, as MMT and CE use.

    sim(i, j) = sum_e w_t[i, e] * w_v[j, e] * cos(t[i, e], v[j, e]) / sum_e w_t[i, e] * w_v[j, e]

so an expert missing from video j drops out and the caption's weights renormalize over
the experts that video has.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidret.models.types import Embeddings


def similarity(text: Embeddings, video: Embeddings) -> Tensor:
    """`[num_captions, num_videos]` similarities in [-1, 1]."""
    if text.vectors.shape[1] == 1:
        return text.vectors[:, 0] @ video.vectors[:, 0].T
    cos = torch.einsum("ied,jed->ije", text.vectors, video.vectors)
    w = text.weights[:, None, :] * video.weights[None, :, :]
    return (cos * w).sum(-1) / w.sum(-1).clamp_min(1e-8)
