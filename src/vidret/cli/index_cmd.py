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
) -> None:
    """Build INDEX_DIR: vectors, video metadata and the model reference, written atomically."""
    from vidret.search.index import build_index

    index = build_index(run, data, out, kind=kind, overwrite=overwrite)
    typer.echo(f"{out}: {index.size} videos, {index.info['kind']} index, {index.info['dim']}-d")
