"""The stored query graph (`vidret index --query-tower fp32|int8`) against PyTorch: test-split
retrieval of trained runs, and the time to embed a query.

    python benchmarks/bench_query_tower.py RUN [RUN ...]    # e.g. the 5 seeds of a config

For each run, on its own test split: Rsum as `vidret eval` scores it (captions through the
caption cache, PyTorch head), then with every test caption embedded from its text by the
fp32 graph and by the int8 graph (what a search computes), against the same video
vectors. Over the runs: mean +- std and paired differences. Then the time per query at
batch 1 and batch 32 for the PyTorch query side a search used before (ONNX MiniLM + the
model's head in PyTorch), the fp32 graph and the int8 graph, one thread each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vidret.batches.prepared import prepare_data, video_batch
from vidret.eval.evaluate import similarity_matrix
from vidret.eval.metrics import retrieval_metrics
from vidret.experiments.results import paired_difference
from vidret.runs.folder import load_trained_model
from vidret.runs.query_encoder import QueryEncoder
from vidret.search.export_tower import export_query_tower
from vidret.search.query_tower import QueryTower
from vidret.search.vectors import ExpertVectors, similarity

PRECISIONS = ("fp32", "int8")
TIMED_QUERIES = [f"a person number {i} is cooking pasta in a small kitchen" for i in range(64)]


def score_run(run: Path) -> dict[str, dict]:
    cfg, model, info = load_trained_model(run)
    torch.set_num_threads(1)
    prepared = prepare_data(cfg, Path(info["data"]), experts=list(info["signature"]["experts"]))
    rows, captions = prepared.splits["test"], prepared.scored.get("test")
    sims, columns = similarity_matrix(model, prepared, rows, captions=captions)
    scores = {"vidret eval": retrieval_metrics(sims, columns)}
    caption_rows, _ = prepared.caption_rows(rows, captions)
    texts = [prepared.dataset.captions[i] for i in caption_rows]
    with torch.inference_mode():
        videos = ExpertVectors.of(model.embed_video(video_batch(prepared, rows)))
    for precision in PRECISIONS:
        with tempfile.TemporaryDirectory() as folder:
            settings = export_query_tower(run, Path(folder), precision)
            if "fallback" in settings:
                raise SystemExit(f"{run}: {settings['fallback']}")
            tower = QueryTower(Path(folder), settings)
            parts = [tower.embed_many(texts[i : i + 64]) for i in range(0, len(texts), 64)]
        text = ExpertVectors(
            np.concatenate([p.vectors for p in parts]), np.concatenate([p.weights for p in parts])
        )
        scores[f"graph {precision}"] = retrieval_metrics(similarity(text, videos), columns)
        scores[f"graph {precision}"]["min_cosine"] = settings["min_cosine"]
    return scores


def time_per_query(run: Path) -> dict[str, dict[str, float]]:
    torch.set_num_threads(1)
    encoders = {"PyTorch head (before)": QueryEncoder(run)}
    folders = []
    for precision in PRECISIONS:
        folder = tempfile.TemporaryDirectory()
        folders.append(folder)
        settings = export_query_tower(run, Path(folder.name), precision)
        encoders[f"graph {precision}"] = QueryTower(Path(folder.name), settings)
    timings = {}
    for name, encoder in encoders.items():
        encoder.embed_many(TIMED_QUERIES[:1])  # warm up
        t0 = time.perf_counter()
        for q in TIMED_QUERIES:
            encoder.embed_many([q])
        t1 = time.perf_counter()
        for i in range(0, len(TIMED_QUERIES), 32):
            encoder.embed_many(TIMED_QUERIES[i : i + 32])
        t2 = time.perf_counter()
        n = len(TIMED_QUERIES)
        timings[name] = {
            "batch 1 ms": (t1 - t0) / n * 1000,
            "batch 32 ms/query": (t2 - t1) / n * 1000,
        }
    for folder in folders:
        folder.cleanup()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--skip-timing", action="store_true", help="retrieval only")
    args = parser.parse_args()
    per_run = {i: score_run(run) for i, run in enumerate(args.runs)}
    names = list(per_run[0])
    table = {}
    for name in names:
        rsums = [per_run[i][name]["Rsum"] for i in per_run]
        std = statistics.stdev(rsums) if len(rsums) > 1 else 0.0
        table[name] = f"{statistics.mean(rsums):.1f} +- {std:.1f}"
    by_seed = {name: {i: per_run[i][name] for i in per_run} for name in names}
    report = {
        "runs": [str(r) for r in args.runs],
        "test Rsum": table,
        "graph fp32 - vidret eval": paired_difference(
            by_seed["vidret eval"], by_seed["graph fp32"]
        ),
        "graph int8 - graph fp32": paired_difference(by_seed["graph fp32"], by_seed["graph int8"]),
        "int8 min cosine to PyTorch (probe queries)": min(
            per_run[i]["graph int8"]["min_cosine"] for i in per_run
        ),
    }
    if not args.skip_timing:
        report["time per query (1 thread)"] = time_per_query(args.runs[0])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
