"""Moment search at scale (issue 13): an index of segments of long videos.

    python benchmarks/bench_segments.py hour                 # one generated 1-hour video
    python benchmarks/bench_segments.py hours --run runs/bench-meanpool --hours 10000
    python benchmarks/bench_segments.py refine --run runs/bench-meanpool \
        --cdnet runs/cdnet/seed0 --data data/msrvtt-moments

* `hour`: a generated 1-hour video (scenes of 60 s, 128x96) extracted at 1 frame/s
  (3,600 frames, `--fps 1 --max-frames 3600`, EfficientNet-Lite0), a mean-pool model
  trained on the generated demo clips (`vidret data demo-videos`), the video indexed in
  segments of --segment-seconds; index build time, size on disk, search p50/p99.
* `hours`: --hours hours of generated segment vectors (the run's embedding size, clustered
  unit vectors as bench_search), --segment-seconds windows every half of that, in an IVF
  index; `SearchEngine.search` p50/p99 (encoder, FAISS, merging of a video's hits).
* `refine`: search p50 on a moment dataset's segment index with and without CDNet
  placing each hit's boundaries (`--refine`).
One thread throughout, as `vidret serve` runs a batch.
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
from vidret.search.build_index import build_index
from vidret.search.engine import SearchEngine
from vidret.search.index import model_reference, write_index

sys.path.insert(0, str(Path(__file__).parent))
from bench_search import clustered_vectors
from bench_serve import ACTIONS, PLACES, SUBJECTS


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
    }


def timed_searches(engine: SearchEngine, queries: list[str], k: int = 10) -> dict[str, dict]:
    engine.search("warm up", k=k)
    total, encode, search = [], [], []
    for q in queries:
        t0 = time.perf_counter()
        result = engine.search(q, k=k)
        total.append(1000 * (time.perf_counter() - t0))
        encode.append(result.encode_ms)
        search.append(result.search_ms)
    return {"total_ms": percentiles(total), "encode_ms": percentiles(encode),
            "search_ms": percentiles(search)}  # fmt: skip


def folder_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6, 2)


def queries(n: int) -> list[str]:
    sentences = [f"{s} {a} {p}" for s in SUBJECTS for a in ACTIONS for p in PLACES]
    rng = np.random.default_rng(0)
    return [sentences[i] for i in rng.choice(len(sentences), n, replace=False)]


def hour(args: argparse.Namespace) -> dict:
    from vidret.config import load_config
    from vidret.train.trainer import train
    from vidret.video.decode import Sampling
    from vidret.video.extract import extract_dataset
    from vidret.video.synthetic import SCENES, write_demo_videos, write_scenes

    work = Path(tempfile.mkdtemp(prefix="vidret-bench-hour-"))
    names = list(SCENES)
    scenes = [(names[i % len(names)], 60.0) for i in range(60)]
    started = time.perf_counter()
    write_scenes(work / "long" / "hour.mp4", scenes, fps=2, size=(96, 128))
    report: dict = {"video": "60 scenes x 60 s, 128x96, 2 fps H.264",
                    "write_s": round(time.perf_counter() - started, 1)}  # fmt: skip
    started = time.perf_counter()
    extract_dataset(work / "long", work / "hour-data", Sampling(None, 1.0, 3600), progress=False)
    report["extract_s (3,600 frames)"] = round(time.perf_counter() - started, 1)
    captions = write_demo_videos(work / "demo")
    extract_dataset(work / "demo", work / "demo-data", Sampling(frames=8), captions, progress=False)
    cfg = load_config("configs/meanpool-infonce.yaml", ["train.epochs=10", "train.batch_size=16"])
    train(cfg, work / "run", work / "demo-data", progress=False)
    started = time.perf_counter()
    build_index(work / "run", work / "hour-data", work / "index", progress=False, bank_size=0,
                segment_seconds=args.segment_seconds)  # fmt: skip
    report["index_build_s"] = round(time.perf_counter() - started, 1)
    engine = SearchEngine(work / "index")
    report["segments"] = engine.size
    report["index_mb"] = folder_mb(work / "index")
    report["search"] = timed_searches(engine, queries(args.queries))
    return report


def hours(args: argparse.Namespace) -> dict:
    info = read_model_info(args.run)
    seconds = args.segment_seconds
    per_video = int((3600 - seconds) // (seconds / 2)) + 1  # windows every half a window
    n = args.hours * per_video
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        dim = QueryEncoder(args.run).embed("size").vectors.shape[-1]
        vectors = clustered_vectors(n, dim, rng)
        embeddings = Embeddings(torch.from_numpy(vectors)[:, None], torch.ones(n, 1))
        del vectors
        starts = np.arange(per_video) * seconds / 2
        videos = [{"video_id": f"h{h:05d}", "segment": [float(s), float(s + seconds)]}
                  for h in range(args.hours) for s in starts]  # fmt: skip
        ref = model_reference(args.run, list(info["signature"]["experts"]), info["text_model"])
        ref["segments"] = {"seconds": seconds}
        started = time.perf_counter()
        write_index(index_dir, embeddings, videos, ref, kind="ivf")
        build_s = time.perf_counter() - started
        del embeddings, videos
        engine = SearchEngine(index_dir)
        return {
            "index": f"{args.hours} hours, {seconds:g} s segments every {seconds / 2:g} s: "
            f"{n} segments, ivf, {dim}-d",
            "build_s": round(build_s, 1),
            "index_mb": folder_mb(index_dir),
            "search": timed_searches(engine, queries(args.queries)),
        }


def refine(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        build_index(args.run, args.data, index_dir, progress=False, bank_size=0,
                    segment_seconds=args.segment_seconds)  # fmt: skip
        asked = queries(args.queries)
        return {
            "index": f"{args.data}, {args.segment_seconds:g} s segments",
            "segments": SearchEngine(index_dir).size,
            "plain": timed_searches(SearchEngine(index_dir), asked),
            "refined by CDNet": timed_searches(SearchEngine(index_dir, refine=args.cdnet), asked),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["hour", "hours", "refine"])
    parser.add_argument("--run", type=Path)
    parser.add_argument("--hours", type=int, default=10_000)
    parser.add_argument("--segment-seconds", type=float, default=None)
    parser.add_argument("--cdnet", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    if args.segment_seconds is None:
        args.segment_seconds = 30.0 if args.what == "hours" else 10.0
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, one thread"}
    report.update({"hour": hour, "hours": hours, "refine": refine}[args.what](args))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
