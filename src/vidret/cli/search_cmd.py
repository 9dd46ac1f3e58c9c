"""`vidret search`: ranked videos for a text query."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidret.cli.options import JsonOption, RefineOption, SearchNormalizeOption


def search_command(
    index: Annotated[Path, typer.Argument(help="index folder from `vidret index`")],
    query: Annotated[str, typer.Argument(help='what to look for, e.g. "a man is cooking pasta"')],
    k: Annotated[int, typer.Option("-k", help="how many results")] = 10,
    as_json: JsonOption = False,
    normalize: SearchNormalizeOption = "none",
    refine: RefineOption = None,
) -> None:
    """Print the best-matching videos (or moments) with their scores."""
    import faiss

    from vidret.json_output import dumps
    from vidret.search.engine import (
        SearchEngine,
        check_k,
        check_normalization_name,
        check_query,
    )
    from vidret.search.hits import hit_record

    query = check_query(query)  # before the model is loaded: a bad argument fails at once
    check_k(k)
    check_normalization_name(normalize)
    faiss.omp_set_num_threads(1)  # one query: FAISS's threads cost more than they save
    engine = SearchEngine(index, refine=refine)
    result = engine.search(query, k, normalize)
    if as_json:
        roots = engine.index.info.get("files") or {}
        rows = [
            hit_record(
                h.rank, h.score, h.similarity, h.video, roots, local=True, evidence=h.evidence
            )
            for h in result.hits
        ]
        body = {
            "query": result.query,
            "normalization": result.normalization,
            "score_floor": result.floor,
            "below_floor": result.below_floor,
            **({"concepts": dict(result.concepts)} if result.concepts is not None else {}),
            "results": rows,
        }
        typer.echo(dumps(body, indent=2, ensure_ascii=False))
        return
    if result.concepts is not None:
        shown = ", ".join(f"{name} {weight:.2f}" for name, weight in result.concepts)
        typer.echo(f"zero-shot: the query as ImageNet concepts: {shown or 'none'}")
    if result.below_floor:
        best = result.best_similarity
        best = float("nan") if best is None else best  # an empty index: nothing to show
        calibrated = (
            "95% of unrelated everyday sentences score no higher here"
            if result.concepts is not None
            else "95% of the model's training captions find a better best match here"
        )
        typer.echo(
            f"no good match: the best similarity is {best:.4g}, below the "
            f"index's floor of {result.floor:.4g} ({calibrated}); the closest:"
        )
    for hit in result.hits:
        where = hit.video.get("path") or hit.video.get("url") or ""
        span = hit.video.get("segment")
        at = f"  {span[0]:.1f}-{span[1]:.1f} s" if span else ""
        raw = f" (similarity {hit.similarity:+.4f})" if hit.similarity != hit.score else ""
        why = ""
        if hit.evidence:
            when = hit.evidence["time"]
            frame = f"{when:.1f} s" if when is not None else f"frame {hit.evidence['frame']}"
            why = f"  [{hit.evidence['concept']} at {frame}]"
        typer.echo(f"{hit.rank:>3}  {hit.score:+.4f}{raw}  {hit.video_id}{at}{why}  {where}")
