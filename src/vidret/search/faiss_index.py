"""FAISS indexes over video vectors: exact inner product, or HNSW / IVF for large collections.

Scores are inner products of the model's (weighted, unit) vectors, so the exact index
(`flat`) returns the model's own similarities. `flat16` scans every vector too, stored
in half precision: half the memory and about half the time (a scan is memory-bound),
scores within ~1e-3. The approximate kinds (`hnsw`, `ivf`) trade a little recall for
speed; `benchmarks/bench_search.py` measures them all against `flat`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from vidret.errors import VidretError

IndexKind = Literal["flat", "flat16", "hnsw", "ivf"]
INDEX_KINDS: tuple[str, ...] = ("flat", "flat16", "hnsw", "ivf")

# Defaults chosen with benchmarks/bench_search.py (recall@10 >= 0.95 against exact).
DEFAULT_PARAMS: dict[str, dict[str, int]] = {
    "flat": {},
    "flat16": {},
    "hnsw": {"M": 32, "ef_construction": 80, "ef_search": 64},
    "ivf": {"nlist": 0, "nprobe": 32},  # nlist 0: sqrt(N), at most N / 39
}


def build_faiss_index(
    vectors: np.ndarray, kind: str = "flat", params: dict[str, int] | None = None
) -> tuple[Any, dict[str, int]]:
    """An index holding `vectors` (row i gets id i), and the parameters it was built with."""
    import faiss

    check_index_kind(kind)
    vectors = np.ascontiguousarray(vectors, np.float32)
    n, dim = vectors.shape
    p = {**DEFAULT_PARAMS[kind], **(params or {})}
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "flat16":
        fp16 = faiss.ScalarQuantizer.QT_fp16
        index = faiss.IndexScalarQuantizer(dim, fp16, faiss.METRIC_INNER_PRODUCT)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, p["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = p["ef_construction"]
    else:
        # FAISS wants >= 39 training points a list; 64 a list keeps k-means quick at 1M.
        p["nlist"] = p["nlist"] or max(1, min(n // 39, int(math.sqrt(n))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, p["nlist"], faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        index.train(vectors[rng.choice(n, min(n, 64 * p["nlist"]), replace=False)])
    index.add(vectors)
    set_search_params(index, kind, p)
    return index, p


def check_index_kind(kind: str) -> None:
    if kind not in INDEX_KINDS:
        raise VidretError(f"--kind {kind!r}: choose one of {', '.join(INDEX_KINDS)}")


def set_search_params(index: Any, kind: str, params: dict[str, int]) -> None:
    """Search-time knobs (HNSW ef_search, IVF nprobe); more means better recall, slower."""
    if kind == "hnsw":
        index.hnsw.efSearch = params["ef_search"]
    elif kind == "ivf":
        index.nprobe = params["nprobe"]
