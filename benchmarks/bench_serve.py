"""Load test of `vidret serve` on loopback: 50 concurrent clients for 30 s (issue 5).

    python benchmarks/bench_serve.py --run runs/my-model
    python benchmarks/bench_serve.py --run RUN --videos 100000 --connections 50 --seconds 30

Builds an index of --videos generated video vectors (the run's embedding size, the
run's model reference, metadata without files), starts `vidret serve` on it in its own
process, and drives `GET /search?q=...&k=10` with wrk (Debian's `wrk` package; a C load
generator, so the client takes little of the CPU the server needs), rotating through
real sentences. Reports requests/s, latency percentiles, and every non-2xx or socket
error; then checks /health still answers.
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
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import torch

from vidret.models.types import Embeddings
from vidret.search.engine import QueryEncoder
from vidret.search.index import model_reference, write_index
from vidret.search.local_server import serving
from vidret.train.run import read_model_info

sys.path.insert(0, str(Path(__file__).parent))
from bench_search import QUERIES, clustered_vectors

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
        write_index(index_dir, embeddings, videos, ref, kind=args.kind)

        with serving(["serve", str(index_dir)]) as base:
            paths = ", ".join(f'"/search?q={quote(q)}&k=10"' for q in QUERIES)
            script = Path(tmp) / "queries.lua"
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
        **parse_wrk(wrk.stdout),
        "health_after": health["status"],
    }
    print(wrk.stdout)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
