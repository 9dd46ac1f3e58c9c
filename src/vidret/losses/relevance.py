"""Graded relevance of a batch's captions to its videos, from caption similarity.

The listwise (S-NDCG) and Kendall objectives rank negatives by how relevant they are, not
only positives above negatives. The relevance of caption i to video j is the best cosine
similarity between caption i's Sentence-BERT vector and any of video j's own captions (a
video has up to 20; Listwise_ITR and ITM_CLS take the same maximum over an image's 5).

The trainer puts the needed vectors into the loss context's `static` dict under the keys
below, one row per batch caption and per batch video, so that under DDP they are gathered
with the other static vectors and the relevance covers the global batch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidret.losses.base import LossContext

CAPTIONS = "relevance:captions"  # [B, d]: each batch caption's sentence vector
VIDEO_CAPTIONS = "relevance:video_captions"  # [B, K, d]: each batch video's captions
VIDEO_CAPTION_MASK = "relevance:video_caption_mask"  # [B, K]: 1 where a caption is


def caption_relevance(ctx: LossContext) -> Tensor:
    """`[captions, videos]` cosine relevance in [-1, 1] (no gradient)."""
    missing = {CAPTIONS, VIDEO_CAPTIONS, VIDEO_CAPTION_MASK} - set(ctx.static)
    if missing:
        raise ValueError(
            f"this objective ranks by caption relevance and needs {sorted(missing)} in the "
            "loss context (the trainer provides them when the objective sets needs_relevance)"
        )
    captions = F.normalize(ctx.static[CAPTIONS].float(), dim=-1)
    videos = F.normalize(ctx.static[VIDEO_CAPTIONS].float(), dim=-1)
    present = ctx.static[VIDEO_CAPTION_MASK] > 0
    cos = torch.einsum("id,jkd->ijk", captions, videos)
    return cos.masked_fill(~present[None], -torch.inf).amax(dim=-1).detach()


def video_caption_index(caption_video: np.ndarray, num_videos: int) -> np.ndarray:
    """`[num_videos, K]` caption rows of each video, padded with -1 (K: the most any has)."""
    counts = np.bincount(caption_video, minlength=num_videos)
    index = np.full((num_videos, max(1, int(counts.max(initial=0)))), -1, np.int64)
    order = np.argsort(caption_video, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for video in np.flatnonzero(counts):
        index[video, : counts[video]] = order[starts[video] : starts[video] + counts[video]]
    return index


def relevance_vectors(
    sentence: np.ndarray, index: np.ndarray, caption_rows: np.ndarray, video_rows: np.ndarray
) -> dict[str, Tensor]:
    """The static entries for one batch (see the module docstring)."""
    rows = index[video_rows]  # [B, K]
    present = rows >= 0
    videos = sentence[np.where(present, rows, 0)] * present[..., None]
    return {
        CAPTIONS: torch.from_numpy(np.ascontiguousarray(sentence[caption_rows])),
        VIDEO_CAPTIONS: torch.from_numpy(np.ascontiguousarray(videos, dtype=np.float32)),
        VIDEO_CAPTION_MASK: torch.from_numpy(present.astype(np.float32)),
    }
