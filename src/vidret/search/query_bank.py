"""What a search needs from the model's training data: the query bank's per-video
normalizers (test-time normalization, `vidret.eval.normalization`) and a score floor.

Both are computed once, when the index is built, from the run's own dataset:

* the bank: up to `size` training captions (seeded sample); for every indexed video the
  log-sum-exp of its similarities to them, at QB-Norm's beta and at dual softmax's
  temperature, and whether it is among some bank caption's top k (QB-Norm's activation
  set). A query is then normalized against the bank alone, the search-time equivalent of
  the test-split scoring (for dual softmax the bank plus the query itself stands in for
  the other test queries);
* the floor: the 5th percentile of the bank captions' best scores over the indexed videos.
  A query whose best video scores below it finds a weaker match than 95% of real captions
  do in this collection, and the page says so instead of listing weak hits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # normalizing a query runs without PyTorch; building the bank needs it
    from vidret.eval.normalization import Normalization
    from vidret.models.retrieval import RetrievalModel
    from vidret.models.types import Embeddings

BANK_FILE = "query_bank.npz"
DEFAULT_BANK_SIZE = 2_000
FLOOR_PERCENTILE = 5.0
_VIDEO_CHUNK = 4096


@dataclass
class SearchBank:
    lse_qbnorm: np.ndarray  # float64 [videos]: log sum_q exp(beta * s[q, v])
    lse_dual: np.ndarray  # float64 [videos]: log sum_q exp(s[q, v] / T)
    activated: np.ndarray  # bool [videos]: in some bank caption's top k
    settings: dict[str, Any]  # beta, temperature, k, captions
    floor: float | None = None  # FLOOR_PERCENTILE of the bank captions' best scores

    def save(self, folder: Path) -> None:
        np.savez(
            folder / BANK_FILE,
            lse_qbnorm=self.lse_qbnorm,
            lse_dual=self.lse_dual,
            activated=self.activated,
        )

    @classmethod
    def load(cls, folder: Path, settings: dict[str, Any]) -> SearchBank:
        with np.load(folder / BANK_FILE, allow_pickle=False) as z:
            return cls(z["lse_qbnorm"], z["lse_dual"], z["activated"], settings)

    def rescore(self, scores: np.ndarray, ids: np.ndarray, method: str) -> np.ndarray:
        """Normalized scores of one query's candidates `ids` (their similarities `scores`,
        best first) by which the candidates are re-ordered."""
        scores = scores.astype(np.float64)
        if method == "qbnorm":
            if len(ids) == 0 or not self.activated[ids[0]]:
                return scores  # dynamic inverted softmax: the top video is not a hub
            return self.settings["beta"] * scores - self.lse_qbnorm[ids]
        if method == "dual_softmax":
            logits = scores / self.settings["temperature"]
            prior = np.exp(logits - np.logaddexp(logits, self.lse_dual[ids]))
            return scores * prior
        return scores


def text_embeddings(
    model: RetrievalModel, data: Any, caption_rows: np.ndarray, batch: int = 512
) -> Embeddings:
    """The model's embeddings of these captions of a prepared dataset."""
    import torch

    from vidret.batches.prepared import text_batch
    from vidret.models.types import Embeddings

    parts = []
    with torch.inference_mode():
        for i in range(0, len(caption_rows), batch):
            parts.append(model.embed_text(text_batch(data, caption_rows[i : i + batch])))
    return Embeddings(torch.cat([p.vectors for p in parts]), torch.cat([p.weights for p in parts]))


def build_bank(
    bank_text: Embeddings, videos: Embeddings, norm: Normalization, temperature: float
) -> SearchBank:
    """Per-video normalizers of `videos` against the bank captions `bank_text`, in one pass
    over the videos (chunks of `_VIDEO_CHUNK`, so memory stays bank x chunk)."""
    import torch

    from vidret.eval.normalization import column_logsumexp
    from vidret.models.similarity import similarity
    from vidret.models.types import Embeddings

    n = videos.vectors.shape[0]
    k = min(norm.k, n)
    lse_qb, lse_ds = np.empty(n, np.float64), np.empty(n, np.float64)
    rows = np.arange(len(bank_text.vectors))[:, None]
    top_scores = np.full((len(rows), k), -np.inf)  # each bank caption's best k so far
    top_ids = np.zeros((len(rows), k), np.int64)
    with torch.inference_mode():
        for lo in range(0, n, _VIDEO_CHUNK):
            hi = min(n, lo + _VIDEO_CHUNK)
            part = Embeddings(videos.vectors[lo:hi], videos.weights[lo:hi])
            s = similarity(bank_text, part).double().numpy()  # [bank, chunk]
            lse_qb[lo:hi] = column_logsumexp(s, norm.beta)
            lse_ds[lo:hi] = column_logsumexp(s, 1.0 / temperature)
            scores = np.concatenate([top_scores, s], axis=1)
            ids = np.concatenate([top_ids, np.broadcast_to(np.arange(lo, hi), s.shape)], axis=1)
            keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            top_scores, top_ids = scores[rows, keep], ids[rows, keep]
    activated = np.zeros(n, bool)
    activated[top_ids.ravel()] = True
    settings = {"beta": norm.beta, "temperature": temperature, "k": k, "captions": len(rows)}
    floor = float(np.percentile(top_scores.max(axis=1), FLOOR_PERCENTILE))
    return SearchBank(lse_qb, lse_ds, activated, settings, floor)
