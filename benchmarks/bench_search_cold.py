"""`vidret search` from a cold start: a fresh process per query, as a user at a shell runs it.

    python benchmarks/bench_search_cold.py runs/my-index --repeats 5

Each repeat runs `vidret search INDEX QUERY` in a new Python process (module imports,
model and index loading, the query) and reports the wall time and peak memory
(`benchmarks/measure.py`). The first repeat also pays for anything not yet cached on
disk (the ONNX export of the caption model, its manifest); it is reported apart. Then a
cold `vidret --help`, as many times, for the ratio of the two (issue 23's target: at most
1.5).
"""

from __future__ import annotations

import argparse
import json
import statistics

from measure import measured_vidret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", help="an index folder from `vidret index`")
    parser.add_argument("--query", default="a man is cooking pasta")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = [measured_vidret(["search", args.index, args.query, "-k", "10"])]
    runs += [measured_vidret(["search", args.index, args.query, "-k", "10"])
             for _ in range(args.repeats)]  # fmt: skip
    walls = [r["wall_s"] for r in runs[1:]]
    helps = [measured_vidret(["--help"])["wall_s"] for _ in range(args.repeats)]
    print(
        json.dumps(
            {
                "benchmark": "vidret search, cold start",
                "first_s": runs[0]["wall_s"],
                "median_s": statistics.median(walls),
                "min_s": min(walls),
                "max_s": max(walls),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "help_median_s": statistics.median(helps),
                "ratio_to_help": round(statistics.median(walls) / statistics.median(helps), 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
