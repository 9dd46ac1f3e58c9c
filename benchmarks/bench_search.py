"""Query latency of `vidret search` (encode + search) at 1k, 100k and 1M indexed videos.

    python benchmarks/bench_search.py --run runs/my-model
    python benchmarks/bench_search.py --run RUN --sizes 1000 100000 --queries 100

Targets (issue 5), on this machine: p50 under 15 ms at 100k with the exact index, under
5 ms at 1M with an approximate one, recall@10 of the approximate index against exact at
least 0.95. The video vectors are generated (the index size is what is measured): unit
vectors around 2,000 cluster centres in the run's embedding size, as real embeddings
cluster by topic. The query side is real: MSR-VTT-style sentences through the run's
query side (by default the graph `vidret index` stores: Sentence-BERT + the model's text
head in onnxruntime; `--query-tower none`: as before, the head in PyTorch), timed on their
own ("encode");
"search" is FAISS on generated query vectors (held-out points near the data). Latency is
one query at a time on one thread, as `vidret serve` runs each request.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from vidret.runs.query_encoder import QueryEncoder
from vidret.search.export_tower import export_query_tower
from vidret.search.faiss_index import build_faiss_index
from vidret.search.query_tower import QueryTower

QUERIES = [
    "a man is cooking pasta in a kitchen",
    "a dog runs on the beach",
    "people are dancing at a party",
    "a woman is talking about makeup",
    "a cartoon character is flying",
    "a group of men play basketball",
    "someone is playing a guitar on stage",
    "a car drives fast on a race track",
    "a news anchor reports on the weather",
    "a child is laughing with a cat",
]


def clustered_vectors(n: int, dim: int, rng: np.random.Generator, latent: int = 32) -> np.ndarray:
    """Unit vectors like a model's embeddings: topics (2,000 cluster centres) in a
    `latent`-dimensional subspace, spread within each topic, a little noise in every
    direction. (Isotropic noise in all dimensions would be the worst case for an
    approximate index, and unlike trained embeddings.)"""
    basis = np.linalg.qr(rng.standard_normal((dim, latent)))[0].T.astype(np.float32)
    centres = rng.standard_normal((2000, latent), dtype=np.float32)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # in blocks: 1M x 256 floats is already 1 GB
        m = min(100_000, n - start)
        z = centres[rng.integers(0, len(centres), m)]
        z += 0.5 * rng.standard_normal((m, latent), dtype=np.float32)
        block = z @ basis + 0.05 * rng.standard_normal((m, dim), dtype=np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def percentiles(ms: list[float]) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(ms, q)), 3) for q in (50, 90, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a trained run folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--kinds", nargs="+", default=["flat", "flat16", "hnsw", "ivf"])
    parser.add_argument(
        "--query-tower",
        default="fp32",
        choices=["fp32", "int8", "none"],
        help="queries through the graph `vidret index` stores (none: the run in PyTorch)",
    )
    args = parser.parse_args()

    # One query at a time, one thread, as `vidret serve` runs each request.
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    tower_dir = tempfile.TemporaryDirectory()
    if args.query_tower == "none":
        encoder: Any = QueryEncoder(args.run)
    else:
        settings = export_query_tower(args.run, Path(tower_dir.name), args.query_tower)
        encoder = QueryTower(Path(tower_dir.name), settings)
    encode_ms = []
    for i in range(args.queries):
        start = time.perf_counter()
        embedded = encoder.embed_many([QUERIES[i % len(QUERIES)]])
        encode_ms.append((time.perf_counter() - start) * 1000)
    dim = embedded.vectors.shape[1] * embedded.vectors.shape[2]
    result: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "dim": dim,
        "query_tower": args.query_tower,
        "encode_ms": percentiles(encode_ms),
        "sizes": {},
    }
    print(json.dumps({"encode_ms": result["encode_ms"], "dim": dim}), flush=True)

    rng = np.random.default_rng(0)
    for n in args.sizes:
        vectors = clustered_vectors(n, dim, rng)
        noise = 0.1 * rng.standard_normal((args.queries, dim), dtype=np.float32)
        queries = vectors[rng.integers(0, n, args.queries)] + noise
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        exact_ids = None
        for kind in args.kinds:
            if kind in ("hnsw", "ivf") and n < 10_000:
                continue  # an approximate index is pointless for a small collection
            start = time.perf_counter()
            index, params = build_faiss_index(vectors, kind)
            build_s = time.perf_counter() - start
            search_ms, ids = [], []
            for q in queries:
                start = time.perf_counter()
                _, found = index.search(q[None], 10)
                search_ms.append((time.perf_counter() - start) * 1000)
                ids.append(found[0])
            row = {"build_s": round(build_s, 1), "params": params,
                   "search_ms": percentiles(search_ms)}  # fmt: skip
            # Encode + search per query (same order as timed above).
            total = np.asarray(search_ms) + np.asarray(encode_ms[: len(search_ms)])
            row["encode_plus_search_ms"] = percentiles(total.tolist())
            if kind == "flat":
                exact_ids = ids
            if kind != "flat" and exact_ids is not None:
                hits = [len(set(a) & set(b)) / 10 for a, b in zip(exact_ids, ids, strict=True)]
                row["recall@10_vs_exact"] = round(float(np.mean(hits)), 4)
            result["sizes"].setdefault(str(n), {})[kind] = row
            print(json.dumps({"videos": n, kind: row}), flush=True)
            del index
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
