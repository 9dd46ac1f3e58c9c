"""`vidret search`: ranked videos for a text query."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def search_command(
    index: Annotated[Path, typer.Argument(help="index folder from `vidret index`")],
    query: Annotated[str, typer.Argument(help='what to look for, e.g. "a man is cooking pasta"')],
    k: Annotated[int, typer.Option("-k", "--k", help="how many results")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print the best-matching videos with their scores."""
    import faiss

    from vidret.search.engine import SearchEngine, check_k, check_query

    query = check_query(query)  # before the model is loaded: a bad argument fails at once
    check_k(k)
    faiss.omp_set_num_threads(1)  # one query: FAISS's threads cost more than they save
    result = SearchEngine(index).search(query, k)
    if as_json:
        rows = [{"rank": h.rank, "score": h.score, **h.video} for h in result.hits]
        typer.echo(json.dumps({"query": result.query, "results": rows}, indent=2))
        return
    for hit in result.hits:
        where = hit.video.get("path") or hit.video.get("url") or ""
        typer.echo(f"{hit.rank:>3}  {hit.score:+.4f}  {hit.video_id}  {where}")
