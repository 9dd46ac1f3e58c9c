"""Load test of `vidret serve` on loopback: 50 concurrent clients for 30 s (issues 5, 14).

    python benchmarks/bench_serve.py --run runs/my-model
    python benchmarks/bench_serve.py --run RUN --videos 100000 --connections 50 --seconds 30
    python benchmarks/bench_serve.py --run RUN --videos 1000 --unique --serve-arg=--workers=2

Builds an index of --videos generated video vectors (the run's embedding size, the
run's model reference, metadata without files), starts `vidret serve` on it in its own
process, and drives `GET /search?q=...&k=10` with wrk (Debian's `wrk` package; a C load
generator, so the client takes little of the CPU the server needs), rotating through
real sentences (`--unique`: every request a sentence not asked before, built from word
lists, so the query cache never helps). `--serve-arg` passes options to `vidret serve`
(`--serve-arg=--max-batch=1 --serve-arg=--cache=0`: one request at a time, no cache).
Reports requests/s, latency percentiles, and every non-2xx or socket error; then
/health: that it still answers, and the server's batch sizes and cache hits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import torch

from vidret.models.types import Embeddings
from vidret.runs.folder import read_model_info
from vidret.runs.query_encoder import QueryEncoder
from vidret.search.export_tower import add_query_tower
from vidret.search.index import model_reference, write_index
from vidret.search.local_server import serving

sys.path.insert(0, str(Path(__file__).parent))
from bench_search import QUERIES, clustered_vectors

# --unique: 24 x 30 x 24 x 20 = 345,600 distinct sentences, more than any run sends
SUBJECTS = [
    "a man",
    "a woman",
    "a child",
    "a dog",
    "a cat",
    "two people",
    "a girl",
    "a boy",
    "a group of friends",
    "a chef",
    "a singer",
    "a player",
    "an old man",
    "a teacher",
    "a crowd",
    "a baby",
    "a horse",
    "a bird",
    "a cartoon character",
    "a reporter",
    "a dancer",
    "a driver",
    "a student",
    "a family",
]
ACTIONS = [
    "is cooking",
    "is running",
    "is dancing",
    "is singing",
    "is talking",
    "is playing",
    "is driving",
    "is swimming",
    "is laughing",
    "is jumping",
    "is walking",
    "is eating",
    "is painting",
    "is reading",
    "is sleeping",
    "is fighting",
    "is climbing",
    "is riding",
    "is throwing a ball",
    "is writing",
    "is crying",
    "is shopping",
    "is cleaning",
    "is fishing",
    "is skating",
    "is typing",
    "is smiling",
    "is waving",
    "is explaining",
    "is building",
]
PLACES = [
    "in a kitchen",
    "on the beach",
    "at a party",
    "on a stage",
    "in a car",
    "in a park",
    "on a road",
    "in a classroom",
    "in the snow",
    "in a studio",
    "at night",
    "outside",
    "in a forest",
    "on a boat",
    "in a gym",
    "at home",
    "in the city",
    "on television",
    "in a field",
    "on a bridge",
    "in the rain",
    "at a desk",
    "in a garden",
    "in a pool",
]
TIMES = [
    "",
    " quickly",
    " slowly",
    " happily",
    " together",
    " alone",
    " loudly",
    " quietly",
    " again",
    " for a long time",
    " in the morning",
    " with music",
    " on camera",
    " while smiling",
    " near a river",
    " with friends",
    " in slow motion",
    " badly",
    " very well",
    " for the first time",
]

UNIQUE_SCRIPT = """
local subjects = {%s}
local actions = {%s}
local places = {%s}
local times = {%s}
local i = %d
request = function()
  i = i + 1
  local n = i
  local s = subjects[(n %% #subjects) + 1]; n = math.floor(n / #subjects)
  local a = actions[(n %% #actions) + 1]; n = math.floor(n / #actions)
  local p = places[(n %% #places) + 1]; n = math.floor(n / #places)
  local t = times[(n %% #times) + 1]
  local q = (s .. " " .. a .. " " .. p .. t):gsub(" ", "%%%%20")
  return wrk.format("GET", "/search?k=10&q=" .. q)
end
"""

WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def parse_wrk(text: str) -> dict:
    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]

    out: dict = {"latency_ms": {}}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if m:
            out["latency_ms"][f"p{pct}"] = round(ms(m.group(1)), 2)
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", text)
    out["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["requests_per_s"] = float(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", text)
    out["socket_errors"] = m.group(1) if m else "none"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--kind", default="flat")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--unique", action="store_true", help="a new sentence each request")
    parser.add_argument("--serve-arg", action="append", default=[], help="option of serve")
    parser.add_argument(
        "--query-tower",
        default="fp32",
        choices=["fp32", "int8", "none"],
        help="the index's stored query graph (none: queries through the run in PyTorch)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    info = read_model_info(args.run)
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        dim = QueryEncoder(args.run).embed("size").vectors.shape[-1]
        vectors = clustered_vectors(args.videos, dim, np.random.default_rng(0))
        embeddings = Embeddings(torch.from_numpy(vectors)[:, None], torch.ones(args.videos, 1))
        videos = [{"video_id": f"v{i:07d}", "duration": 10.0} for i in range(args.videos)]
        experts = list(info["signature"]["experts"])
        ref = model_reference(args.run, experts, info["text_model"])
        copies = {}
        if args.query_tower != "none":  # as `vidret index --query-tower` stores it
            tower_dir = Path(tmp) / "tower"
            tower_dir.mkdir()
            copies = add_query_tower(args.run, ref, tower_dir, args.query_tower)
        write_index(index_dir, embeddings, videos, ref, kind=args.kind, copies=copies)

        with serving(["serve", str(index_dir), *args.serve_arg], startup_s=300) as base:
            script = Path(tmp) / "queries.lua"
            if args.unique:

                def lua(words: list[str]) -> str:
                    return ", ".join(f'"{w}"' for w in words)

                script.write_text(
                    UNIQUE_SCRIPT
                    % (lua(SUBJECTS), lua(ACTIONS), lua(PLACES), lua(TIMES), time.time_ns() % 997)
                )
            else:
                paths = ", ".join(f'"/search?q={quote(q)}&k=10"' for q in QUERIES)
                script.write_text(WRK_SCRIPT % paths)
            wrk = subprocess.run(
                ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
                 "--timeout", "10s", "-s", str(script), base],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            health = httpx.get(f"{base}/health").json()
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (server and wrk share them)",
        "index": f"{args.videos} generated videos, {args.kind}, {dim}-d",
        "clients": args.connections,
        "seconds": args.seconds,
        "queries": "unique" if args.unique else f"{len(QUERIES)} rotating",
        "serve_args": args.serve_arg,
        "query_tower": args.query_tower,
        **parse_wrk(wrk.stdout),
        "health_after": health["status"],
        "server": {
            k: health.get(k)
            for k in ("batches", "mean_batch", "largest_batch", "cache_hits", "cache_misses")
        },
    }
    print(wrk.stdout)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
