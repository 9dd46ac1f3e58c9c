"""Queries against a video index: embed the text with the index's own model, then search.

An index of a trained model carries its query side as an ONNX graph
(`vidret.search.query_tower`): such a search imports no PyTorch. Zero-shot, fused and
older indexes, and `--refine`, load their PyTorch parts when asked for.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidret.errors import VidretError
from vidret.search.index import VideoIndex, checkpoint_digest
from vidret.search.query_cache import QueryCache
from vidret.search.query_tower import QueryTower, has_tower
from vidret.search.segments import merge_hits
from vidret.search.vectors import ExpertVectors, similarity

MAX_QUERY_CHARS = 500
MAX_K = 1000  # the CLI's and the HTTP API's limit alike
SEARCH_NORMALIZATIONS = ("none", "dual_softmax", "qbnorm")
EVIDENCE_HITS = 10  # zero-shot hits explained (frame and concept) per search


@dataclass
class Hit:
    rank: int  # 1 = best
    # what the hits are ordered by: the model's similarity, or with test-time
    # normalization the normalized score
    score: float
    video: dict[str, Any]  # the index's metadata of the video (video_id, path, ...)
    similarity: float  # the model's similarity in [-1, 1] (== score without normalization)
    # a zero-shot hit: the frame and concept that matched (vidret.search.evidence)
    evidence: dict[str, Any] | None = None

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
    # a zero-shot index: the concepts the query was mapped to, with their weights
    concepts: list[tuple[str, float]] | None = None

    @property
    def below_floor(self) -> bool:
        """The best hit scores below the index's floor: a weaker best match than 95% of the
        model's training captions find in this collection."""
        best = self.best_similarity
        return self.floor is not None and (best is None or best < self.floor)

    @property
    def best_similarity(self) -> float | None:
        """The highest model similarity among the hits (None without hits)."""
        return max((h.similarity for h in self.hits), default=None)


@dataclass(frozen=True)
class SearchRequest:
    query: str  # as the user typed it; cleaned by `check`
    k: int = 10
    normalize: str = "none"


class SearchEngine:
    """An index and the model that built it. Thread-safe for concurrent `search` calls.

    `search_many` serves several queries with one pass of the caption encoder and one
    FAISS call per candidate-pool size (the batching server's path; each result is the one
    `search` gives, tested). Query embeddings are kept in an LRU cache of `cache_size`
    queries (0: none), so a repeated query skips the encoder.
    """

    def __init__(self, index_dir: Path, cache_size: int = 0, refine: Path | None = None):
        self.index = VideoIndex.load(index_dir)
        self.cache = QueryCache(cache_size)
        self.refiner: Any = None  # vidret.search.refine.MomentRefiner
        self.evidence: Any = None  # vidret.search.evidence.ConceptEvidence
        if refine is not None:  # CDNet places each moment hit's start and end
            from vidret.runs.folder import require_run_folder
            from vidret.search.refine import MomentRefiner

            require_run_folder(refine)  # a file or a typo: said first, as what it is
            if not self.segmented:
                raise VidretError(
                    f"--refine: {index_dir} indexes whole videos; CDNet refines moments of "
                    "an index of segments (`vidret index --segment-seconds S`)"
                )
            self.refiner = MomentRefiner(refine, Path(self.index.info["dataset"]))
        ref = self.index.info["model"]
        # query text -> its concepts and their weights (zero-shot and fused indexes)
        self._describe: Callable[[np.ndarray], list[tuple[str, float]]] | None = None
        self.encoder = self._query_encoder(index_dir, ref)

    def _query_encoder(self, index_dir: Path, ref: dict[str, Any]) -> Any:
        """What embeds queries as the index's videos were embedded: `embed_many(queries)`
        -> ExpertVectors."""
        tower = ref.get("query_tower")
        if has_tower(tower) and not ref.get("fuse"):  # the graph alone: no PyTorch
            return QueryTower(index_dir, tower)
        from vidret.search.concepts import NUM_CONCEPTS
        from vidret.search.zero_shot_index import FusedQueryEncoder, zero_shot_encoder

        if ref.get("zero_shot"):  # no trained model: queries map to concepts
            from vidret.search.evidence import ConceptEvidence

            concepts = zero_shot_encoder(self.index)
            self._describe = concepts.describe
            crops = ref["zero_shot"].get("crops", "frame") != "frame"
            self.evidence = ConceptEvidence.try_open(self.index.info.get("dataset"), crops)
            return _TorchQueries(concepts)
        if ref.get("fusion"):  # several runs' scores fused (vidret.search.fused_index)
            from vidret.search.fused_index import FusionQueryEncoder

            for model in ref["fusion"]["models"]:
                check_checkpoint(index_dir, model)
            return _TorchQueries(FusionQueryEncoder(index_dir, ref["fusion"]))
        from vidret.runs.query_encoder import QueryEncoder

        check_checkpoint(index_dir, ref)  # the run's model embeds the queries: still it?
        encoder = QueryEncoder(Path(ref["run"]))
        if encoder.experts != ref["experts"]:
            raise VidretError(f"{index_dir}: the run's experts differ from the index's")
        if ref.get("fuse"):  # the model's score with the concepts' (vidret index --fuse)
            concepts = zero_shot_encoder(self.index)
            self._describe = lambda v: concepts.describe(v[-NUM_CONCEPTS:])  # the last part
            return _TorchQueries(FusedQueryEncoder(encoder, concepts))
        return _TorchQueries(encoder)

    @property
    def size(self) -> int:
        return self.index.size

    @property
    def segmented(self) -> bool:
        """An index of windows of long videos (`vidret index --segment-seconds`)."""
        return bool(self.index.info["model"].get("segments"))

    def check(self, request: SearchRequest) -> SearchRequest:
        """The request with its query cleaned; a VidretError saying what is wrong."""
        query = check_query(request.query)
        check_k(request.k)
        self.check_normalize(request.normalize)
        return SearchRequest(query, request.k, request.normalize)

    def search(self, query: str, k: int = 10, normalize: str = "none") -> SearchResult:
        return self.search_many([SearchRequest(query, k, normalize)])[0]

    def search_many(self, requests: list[SearchRequest]) -> list[SearchResult]:
        requests = [self.check(r) for r in requests]
        t0 = time.perf_counter()
        embedded = self._embed([r.query for r in requests])
        t1 = time.perf_counter()
        flat = embedded.flatten()
        # Candidates per request: FAISS's top `pool`; requests with the same pool size
        # share one call (an HNSW search depends on its k, so sizes are never mixed).
        pools = [self._pool(r) for r in requests]
        found: list[tuple[np.ndarray, np.ndarray]] = [None] * len(requests)  # type: ignore[list-item]
        for pool in sorted(set(pools)):
            rows = [i for i, p in enumerate(pools) if p == pool]
            scores, ids = self.index.index.search(flat[rows], pool)
            for row, i in enumerate(rows):
                found[i] = (scores[row], ids[row])
        faiss_s = time.perf_counter() - t1  # shared by the batch: each request counts it
        results = []
        for i, r in enumerate(requests):
            t2 = time.perf_counter()
            scores, sims, ids = self._rank(embedded, i, *found[i], r)
            if self.segmented:  # a video's neighbouring windows: one moment
                moments = merge_hits(sims, ids, self.index.videos, min(r.k, self.size))
                if self.refiner is not None:
                    moments = self.refiner.refine(r.query, moments)
                ranked = [(s, s, v) for s, v in moments]  # (no normalization on segments)
            else:
                videos = [self.index.videos[int(v)] for v in ids]
                ranked = list(zip(scores.tolist(), sims.tolist(), videos, strict=True))
            rank_s = time.perf_counter() - t2
            hits = [
                Hit(rank=n + 1, score=float(s), video=v, similarity=float(m))
                for n, (s, m, v) in enumerate(ranked)
            ]
            if self.evidence is not None:  # each costs a pass over the hit's frames
                weights = embedded.vectors[i, 0]
                for h in hits[:EVIDENCE_HITS]:
                    h.evidence = self.evidence.explain(weights, h.video_id)
            results.append(
                SearchResult(
                    r.query,
                    hits,
                    (t1 - t0) * 1000,
                    (faiss_s + rank_s) * 1000,
                    r.normalize,
                    self.index.info.get("score_floor"),
                    self._concepts(embedded, i),
                )
            )
        return results

    def _concepts(self, embedded: ExpertVectors, row: int) -> list[tuple[str, float]] | None:
        if self._describe is None:
            return None
        return self._describe(embedded.vectors[row, 0])

    def _pool(self, r: SearchRequest) -> int:
        # Several experts, or a normalization: FAISS proposes candidates, the model's
        # formula (and the normalization) orders them.
        k = min(r.k, self.size)
        pool = k if self.index.experts is None else min(self.size, max(4 * k, 64))
        if r.normalize != "none":
            pool = min(self.size, max(10 * k, 100))
        if self.segmented:  # hits merge: ask for more segments
            pool = min(self.size, max(10 * k, 100))
        return pool

    def _rank(
        self,
        embedded: ExpertVectors,
        row: int,
        scores: np.ndarray,
        ids: np.ndarray,
        r: SearchRequest,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Request `row`'s top k from FAISS's candidates: the scores they are ordered by,
        their similarities (the same without normalization) and their ids."""
        keep = ids >= 0  # FAISS pads with -1 when it finds fewer
        scores, ids = scores[keep], ids[keep]
        experts = self.index.experts
        if experts is not None and len(ids):
            scores = similarity(embedded.rows(slice(row, row + 1)), experts.rows(ids))[0]
            order = np.argsort(-scores, kind="stable")
            scores, ids = scores[order], ids[order]
        order_by = scores
        if r.normalize != "none" and len(ids):
            normalized = self.index.bank.rescore(scores, ids, r.normalize)
            order = np.argsort(-normalized, kind="stable")
            order_by, scores, ids = normalized[order], scores[order], ids[order]
        if self.segmented:
            return order_by, scores, ids  # merged into moments, then cut to k (`merge_hits`)
        k = min(r.k, self.size)
        return order_by[:k], scores[:k], ids[:k]

    def _embed(self, queries: list[str]) -> ExpertVectors:
        """The queries' embeddings, from the cache where it has them; the others encoded
        together (each distinct query once)."""
        cached = {q: self.cache.get(q) for q in dict.fromkeys(queries)}
        missing = [q for q, e in cached.items() if e is None]
        if missing:
            fresh = self.encoder.embed_many(missing)
            for i, q in enumerate(missing):
                cached[q] = (fresh.vectors[i], fresh.weights[i])
                self.cache.put(q, cached[q])
        rows = [cached[q] for q in queries]
        return ExpertVectors(
            np.stack([v for v, _ in rows]),  # type: ignore[misc]
            np.stack([w for _, w in rows]),  # type: ignore[misc]
        )

    def check_normalize(self, normalize: str) -> None:
        check_normalization_name(normalize)
        if normalize != "none" and self.index.bank is None:
            raise VidretError(
                f"{self.index.folder}: built without a query bank, so it cannot --normalize; "
                "rebuild it with `vidret index ... --query-bank 2000` where the run's "
                "training data is at hand"
            )


class _TorchQueries:
    """A PyTorch query encoder (its `embed_many` gives the models' Embeddings) as the
    engine takes them: NumPy arrays."""

    def __init__(self, encoder: Any):
        self.inner = encoder

    def embed_many(self, queries: list[str]) -> ExpertVectors:
        return ExpertVectors.of(self.inner.embed_many(queries))


def check_checkpoint(index_dir: Path, ref: dict[str, Any]) -> None:
    """The model an index was built with is still the one at its path."""
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
