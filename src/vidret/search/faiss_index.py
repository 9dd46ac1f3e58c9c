"""FAISS indexes over video vectors: exact inner product, or HNSW / IVF for large collections.

Scores are inner products of the model's (weighted, unit) vectors, so the exact index
(`flat`) returns the model's own similarities. `flat16` scans every vector too, stored
in half precision: half the memory and about half the time (a scan is memory-bound),
scores within ~1e-3. The approximate kinds (`hnsw`, `ivf`) trade a little recall for
speed; `benchmarks/bench_search.py` measures them all against `flat`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidret.errors import VidretError


@dataclass(frozen=True)
class IndexKind:
    """How one kind of FAISS index is built over unit vectors (inner product), its
    default parameters, and its search-time knobs (more: better recall, slower)."""

    build: Callable[[np.ndarray, dict[str, int]], Any]  # (vectors, params) -> trained index
    defaults: dict[str, int] = field(default_factory=dict)
    set_search: Callable[[Any, dict[str, int]], None] = lambda index, params: None


def _flat(vectors: np.ndarray, p: dict[str, int]) -> Any:
    import faiss

    return faiss.IndexFlatIP(vectors.shape[1])


def _flat16(vectors: np.ndarray, p: dict[str, int]) -> Any:
    import faiss

    fp16 = faiss.ScalarQuantizer.QT_fp16
    return faiss.IndexScalarQuantizer(vectors.shape[1], fp16, faiss.METRIC_INNER_PRODUCT)


def _hnsw(vectors: np.ndarray, p: dict[str, int]) -> Any:
    import faiss

    index = faiss.IndexHNSWFlat(vectors.shape[1], p["M"], faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = p["ef_construction"]
    return index


def _ivf(vectors: np.ndarray, p: dict[str, int]) -> Any:
    import faiss

    n, dim = vectors.shape
    # FAISS wants >= 39 training points a list; 64 a list keeps k-means quick at 1M.
    p["nlist"] = p["nlist"] or max(1, min(n // 39, int(math.sqrt(n))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, p["nlist"], faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    index.train(vectors[rng.choice(n, min(n, 64 * p["nlist"]), replace=False)])
    return index


def _set_ef_search(index: Any, p: dict[str, int]) -> None:
    index.hnsw.efSearch = p["ef_search"]


def _set_nprobe(index: Any, p: dict[str, int]) -> None:
    index.nprobe = p["nprobe"]


# `vidret index --kind NAME`. Defaults chosen with benchmarks/bench_search.py (recall@10
# >= 0.95 against exact).
INDEX_KINDS: dict[str, IndexKind] = {
    "flat": IndexKind(_flat),
    "flat16": IndexKind(_flat16),
    "hnsw": IndexKind(_hnsw, {"M": 32, "ef_construction": 80, "ef_search": 64}, _set_ef_search),
    # nlist 0: sqrt(N), at most N / 39
    "ivf": IndexKind(_ivf, {"nlist": 0, "nprobe": 32}, _set_nprobe),
}


def build_faiss_index(
    vectors: np.ndarray, kind: str = "flat", params: dict[str, int] | None = None
) -> tuple[Any, dict[str, int]]:
    """An index holding `vectors` (row i gets id i), and the parameters it was built with."""
    check_index_kind(kind)
    vectors = np.ascontiguousarray(vectors, np.float32)
    spec = INDEX_KINDS[kind]
    p = {**spec.defaults, **(params or {})}
    index = spec.build(vectors, p)
    index.add(vectors)
    spec.set_search(index, p)
    return index, p


def check_index_kind(kind: str) -> None:
    if kind not in INDEX_KINDS:
        raise VidretError(f"--kind {kind!r}: choose one of {', '.join(INDEX_KINDS)}")


def set_search_params(index: Any, kind: str, params: dict[str, int]) -> None:
    """Search-time knobs of an index loaded from disk (HNSW ef_search, IVF nprobe)."""
    INDEX_KINDS[kind].set_search(index, params)
