"""Queries against a video index: embed the text with the index's own model, then search."""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidret.errors import VidretError
from vidret.models.similarity import similarity
from vidret.models.types import Embeddings, TextBatch
from vidret.search.index import VideoIndex, checkpoint_digest, flatten
from vidret.text.onnx_encoder import OnnxSentenceEncoder
from vidret.text.sentence_bert import encode_texts
from vidret.train.run import load_trained_model

MAX_QUERY_CHARS = 500
MAX_K = 1000  # the CLI's and the HTTP API's limit alike
SEARCH_NORMALIZATIONS = ("none", "dual_softmax", "qbnorm")


@dataclass
class Hit:
    rank: int  # 1 = best
    score: float  # the model's similarity, in [-1, 1]
    video: dict[str, Any]  # the index's metadata of the video (video_id, path, ...)

    @property
    def video_id(self) -> str:
        return self.video["video_id"]


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    encode_ms: float
    search_ms: float
    normalization: str = "none"  # the test-time normalization that ordered the hits
    floor: float | None = None  # the index's weak-match floor (vidret.search.query_bank)

    @property
    def below_floor(self) -> bool:
        """The best hit scores below the index's floor: a weaker best match than 95% of the
        model's training captions find in this collection."""
        return self.floor is not None and (not self.hits or self.hits[0].score < self.floor)


class QueryEncoder:
    """A trained run's caption side: query text -> the model's caption embedding."""

    def __init__(self, run_dir: Path, backend: str = "onnx"):
        self.cfg, self.model, info = load_trained_model(run_dir)
        if self.cfg.text.source is not None:
            raise VidretError(
                f"{run_dir}: this model reads captions as the dataset's own features "
                f"(text.source={self.cfg.text.source}), so it cannot embed a new query; "
                "to search, train with text.encoder sentence, tokens or finetune"
            )
        self.experts = list(info["signature"]["experts"])
        self.text_model = Path(info["text_model"])
        self._onnx = None
        if backend == "onnx" and self.cfg.text.encoder != "finetune":
            # One onnxruntime thread: a short query gains little from two (5.2 vs 6.3 ms
            # here), and spinning pool threads slow PyTorch's text head beside them.
            self._onnx = OnnxSentenceEncoder.try_load(self.text_model, threads=1)
        self.embed("warm up")  # load the caption model now, not on the first query

    def embed(self, query: str) -> Embeddings:
        text = self.cfg.text
        with_tokens = text.encoder == "tokens"
        if text.encoder == "finetune":  # the model holds its own transformer
            batch = TextBatch(texts=[query])
        else:
            enc = (
                self._onnx.encode([query], with_tokens, text.max_tokens)
                if self._onnx is not None
                else encode_texts(
                    [query], self.text_model, with_tokens, text.max_tokens, progress=False
                )
            )
            batch = TextBatch(
                sentence=torch.from_numpy(enc.sentence),
                tokens=None if enc.tokens is None else torch.from_numpy(enc.tokens.astype("f4")),
                lengths=None if enc.lengths is None else torch.from_numpy(enc.lengths),
                texts=[query],
            )
        with torch.inference_mode():
            return self.model.embed_text(batch)


class SearchEngine:
    """An index and the model that built it. Thread-safe for concurrent `search` calls."""

    def __init__(self, index_dir: Path):
        self.index = VideoIndex.load(index_dir)
        ref = self.index.info["model"]
        checkpoint = Path(ref["checkpoint"])
        if not checkpoint.exists():
            raise VidretError(
                f"{index_dir}: built with the model {checkpoint}, which no longer exists; "
                "rebuild the index with `vidret index`"
            )
        if checkpoint_digest(checkpoint) != ref["checkpoint_sha256"]:
            raise VidretError(
                f"{index_dir}: built by a different model than the one now at {checkpoint} "
                "(the checkpoint changed since, e.g. the run was trained again); its vectors "
                "would not match the queries: rebuild it with `vidret index`"
            )
        self.encoder = QueryEncoder(Path(ref["run"]))
        if self.encoder.experts != ref["experts"]:
            raise VidretError(f"{index_dir}: the run's experts differ from the index's")

    @property
    def size(self) -> int:
        return self.index.size

    def search(self, query: str, k: int = 10, normalize: str = "none") -> SearchResult:
        query = check_query(query)
        check_k(k)
        self.check_normalize(normalize)
        k = min(k, self.size)
        t0 = time.perf_counter()
        embedded = self.encoder.embed(query)
        t1 = time.perf_counter()
        experts = self.index.experts
        # Several experts, or a normalization: FAISS proposes candidates, the model's
        # formula (and the normalization) orders them.
        pool = k if experts is None else min(self.size, max(4 * k, 64))
        if normalize != "none":
            pool = min(self.size, max(10 * k, 100))
        scores, ids = self.index.index.search(flatten(embedded), pool)
        scores, ids = scores[0], ids[0]
        keep = ids >= 0  # FAISS pads with -1 when it finds fewer
        scores, ids = scores[keep], ids[keep]
        if experts is not None and len(ids):
            candidates = Embeddings(experts.vectors[ids], experts.weights[ids])
            scores = similarity(embedded, candidates)[0].numpy()
            order = np.argsort(-scores, kind="stable")
            scores, ids = scores[order], ids[order]
        if normalize != "none" and len(ids):
            order = np.argsort(-self.index.bank.rescore(scores, ids, normalize), kind="stable")
            scores, ids = scores[order], ids[order]
        scores, ids = scores[:k], ids[:k]
        t2 = time.perf_counter()
        hits = [
            Hit(rank=r + 1, score=float(s), video=self.index.videos[int(i)])
            for r, (s, i) in enumerate(zip(scores, ids, strict=True))
        ]
        floor = self.index.info.get("score_floor")
        return SearchResult(query, hits, (t1 - t0) * 1000, (t2 - t1) * 1000, normalize, floor)

    def check_normalize(self, normalize: str) -> None:
        check_normalization_name(normalize)
        if normalize != "none" and self.index.bank is None:
            raise VidretError(
                f"{self.index.folder}: built without a query bank, so it cannot --normalize; "
                "rebuild it with `vidret index ... --query-bank 2000` where the run's "
                "training data is at hand"
            )


def check_query(query: str) -> str:
    """The query cleaned of invisible characters; a clear error for one with nothing to
    search for (empty, only spaces, control or zero-width characters, emoji, NUL) or an
    over-long one."""
    visible = "".join(c for c in query if unicodedata.category(c)[0] != "C")
    cleaned = " ".join(visible.split())
    if not any(unicodedata.category(c)[0] in "LN" for c in cleaned):
        raise VidretError(
            "the query is empty (no letters or digits): describe the video you are looking for"
        )
    if len(cleaned) > MAX_QUERY_CHARS:
        raise VidretError(f"the query is {len(cleaned)} characters long; at most {MAX_QUERY_CHARS}")
    return cleaned


def check_normalization_name(normalize: str) -> None:
    if normalize not in SEARCH_NORMALIZATIONS:
        raise VidretError(
            f"--normalize {normalize!r}: choose one of {', '.join(SEARCH_NORMALIZATIONS)}"
        )


def check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise VidretError(f"-k {k}: ask for between 1 and {MAX_K} results")
