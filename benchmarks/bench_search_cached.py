"""Search latency through `SearchEngine` at 1M videos: a repeated query (the cache) and a
new one, with where the time goes (issue 14).

    python benchmarks/bench_search_cached.py --run runs/bench-meanpool
    python benchmarks/bench_search_cached.py --run RUN --videos 1000000 --kind hnsw

Builds an index of --videos generated vectors (bench_search's clustered unit vectors,
the run's embedding size and model reference) and runs `SearchEngine.search`, one query
at a time on one thread as `vidret serve` runs a batch: --queries new sentences (never
seen: the encoder runs), then the same sentences again (each a cache hit). Reports p50
and p99 of the whole call and of its parts (`encode_ms`: the caption encoder and the
model's text head, or the cache; `search_ms`: FAISS and ranking).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from vidret.models.types import Embeddings
from vidret.runs.folder import read_model_info
from vidret.runs.query_encoder import QueryEncoder
from vidret.search.engine import SearchEngine
from vidret.search.export_tower import add_query_tower
from vidret.search.index import model_reference, write_index

sys.path.insert(0, str(Path(__file__).parent))
from bench_search import clustered_vectors
from bench_serve import ACTIONS, PLACES, SUBJECTS


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--videos", type=int, default=1_000_000)
    parser.add_argument("--kind", default="ivf")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--query-tower",
        default="fp32",
        choices=["fp32", "int8", "none"],
        help="the index's stored query graph (none: queries through the run in PyTorch)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)

    info = read_model_info(args.run)
    sentences = [f"{s} {a} {p}" for s in SUBJECTS for a in ACTIONS for p in PLACES]
    rng = np.random.default_rng(0)
    queries = [sentences[i] for i in rng.choice(len(sentences), args.queries, replace=False)]
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        dim = QueryEncoder(args.run).embed("size").vectors.shape[-1]
        vectors = clustered_vectors(args.videos, dim, rng)
        embeddings = Embeddings(torch.from_numpy(vectors)[:, None], torch.ones(args.videos, 1))
        del vectors
        videos = [{"video_id": f"v{i:07d}"} for i in range(args.videos)]
        ref = model_reference(args.run, list(info["signature"]["experts"]), info["text_model"])
        copies = {}
        if args.query_tower != "none":  # as `vidret index --query-tower` stores it
            (Path(tmp) / "tower").mkdir()
            copies = add_query_tower(args.run, ref, Path(tmp) / "tower", args.query_tower)
        start = time.perf_counter()
        write_index(index_dir, embeddings, videos, ref, kind=args.kind, copies=copies)
        build_s = time.perf_counter() - start
        del embeddings
        engine = SearchEngine(index_dir, cache_size=10_000)
        engine.search("warm up")
        report: dict = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, one thread",
            "index": f"{args.videos} generated videos, {args.kind}, {dim}-d",
            "query_tower": args.query_tower,
            "build_s": round(build_s, 1),
        }
        for label in ("new query", "repeated query (cache)"):
            total, encode, search = [], [], []
            for q in queries:
                t0 = time.perf_counter()
                result = engine.search(q, k=10)
                total.append(1000 * (time.perf_counter() - t0))
                encode.append(result.encode_ms)
                search.append(result.search_ms)
            report[label] = {
                "total_ms": percentiles(total),
                "encode_ms": percentiles(encode),
                "search_ms": percentiles(search),
            }
        report["cache"] = {"hits": engine.cache.hits, "misses": engine.cache.misses}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
