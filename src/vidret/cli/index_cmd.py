"""`vidret index`: embed a dataset's videos with a trained model into a FAISS index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def index_command(
    run: Annotated[Path, typer.Option(help="a trained run folder")],
    data: Annotated[Path, typer.Option(help="dataset folder of the videos to index")],
    out: Annotated[Path, typer.Option(help="index folder to write")],
    kind: Annotated[
        str,
        typer.Option(
            help="flat (exact), flat16 (exact scan, half precision), hnsw or ivf (approximate)"
        ),
    ] = "flat",
    overwrite: Annotated[bool, typer.Option(help="replace an existing index folder")] = False,
    query_bank: Annotated[
        int,
        typer.Option(
            help="training captions in the query bank for `search --normalize` (0: none)",
            min=0,
        ),
    ] = 2000,
) -> None:
    """Build INDEX_DIR: vectors, video metadata and the model reference, written atomically."""
    from vidret.search.index import build_index

    index = build_index(run, data, out, kind=kind, overwrite=overwrite, bank_size=query_bank)
    typer.echo(f"{out}: {index.size} videos, {index.info['kind']} index, {index.info['dim']}-d")
    bank, floor = index.info["query_bank"], index.info["score_floor"]
    if bank:
        typer.echo(f"query bank: {bank['captions']} training captions (search --normalize)")
    if floor is not None:
        typer.echo(f"weak-match floor: similarity {floor:.3f}")
