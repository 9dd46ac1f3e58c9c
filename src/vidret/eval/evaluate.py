"""Score a model on a set of videos: embed everything once, then compute every similarity."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vidret.batches.prepared import PreparedData, text_batch, video_batch
from vidret.errors import VidretError
from vidret.eval.metrics import retrieval_metrics
from vidret.eval.normalization import QueryBank
from vidret.models.retrieval import RetrievalModel
from vidret.models.similarity import similarity
from vidret.models.types import Embeddings


@torch.inference_mode()
def similarity_matrix(
    model: RetrievalModel,
    data: PreparedData,
    video_rows: np.ndarray,
    batch: int = 512,
    device: torch.device | str = "cpu",
    captions: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`[captions, videos]` similarities of all captions of `video_rows` (or of the caption
    rows `captions`, e.g. a split's scored captions), and each caption's video column."""
    was_training = model.training
    model.eval()
    caption_rows, columns = data.caption_rows(video_rows, captions)
    videos = _cat(
        [
            model.embed_video(video_batch(data, video_rows[i : i + batch]).to(device))
            for i in range(0, len(video_rows), batch)
        ]
    )
    sims = np.empty((len(caption_rows), len(video_rows)), np.float32)
    for i in range(0, len(caption_rows), batch):
        text = model.embed_text(text_batch(data, caption_rows[i : i + batch]).to(device))
        sims[i : i + batch] = similarity(text, videos).float().cpu().numpy()
    model.train(was_training)
    return sims, columns


def evaluate(
    model: RetrievalModel,
    data: PreparedData,
    video_rows: np.ndarray,
    batch: int = 512,
    device: torch.device | str = "cpu",
    captions: np.ndarray | None = None,
) -> dict[str, Any]:
    sims, columns = similarity_matrix(model, data, video_rows, batch, device, captions)
    return retrieval_metrics(sims, columns)


# Bank sizes: QB-Norm's gains saturate well below the full MSR-VTT training set.
BANK_SIZE = 10_000


def query_bank(
    model: RetrievalModel,
    data: PreparedData,
    test_videos: np.ndarray,
    test_captions: np.ndarray | None = None,
    bank_videos: np.ndarray | None = None,
    size: int = BANK_SIZE,
    seed: int = 0,
    batch: int = 512,
    device: torch.device | str = "cpu",
) -> QueryBank:
    """QB-Norm's query bank from the training part: at most `size` of its captions (seeded
    sample) against the test videos, and the test captions against at most `size` of its
    videos. The test queries themselves are never in it."""
    train = data.splits["train"] if bank_videos is None else bank_videos
    if len(train) == 0:
        raise VidretError("QB-Norm needs training videos for its query bank; this run has none")
    rng = np.random.default_rng(seed)
    bank_captions = sample_rows(data.caption_rows(train)[0], size, rng)
    train = sample_rows(train, size, rng)
    text_bank, _ = similarity_matrix(model, data, test_videos, batch, device, bank_captions)
    test_caption_rows, _ = data.caption_rows(test_videos, test_captions)
    video_bank, _ = similarity_matrix(model, data, train, batch, device, test_caption_rows)
    return QueryBank(text_to_test_videos=text_bank, test_captions_to_videos=video_bank)


def sample_rows(rows: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """At most `size` of `rows`, a seeded sample kept in row order (all when fewer)."""
    if len(rows) <= size:
        return rows
    return np.sort(rng.choice(rows, size, replace=False))


def _cat(parts: list[Embeddings]) -> Embeddings:
    return Embeddings(torch.cat([p.vectors for p in parts]), torch.cat([p.weights for p in parts]))
