"""`vidret serve`: the search page and its HTTP API over an index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidret.cli.options import RefineOption, SearchNormalizeOption


def serve_command(
    index: Annotated[Path, typer.Argument(help="index folder from `vidret index`")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (1-65535)", min=1, max=65535)] = 8000,
    threads: Annotated[
        int,
        typer.Option(help="CPU threads per batch of queries (each worker)", min=1),
    ] = 1,
    normalize: SearchNormalizeOption = "none",
    max_batch: Annotated[
        int,
        typer.Option(
            help="concurrent /search requests encoded and searched together, at most "
            "(1: each alone)",
            min=1,
            max=1024,
        ),
    ] = 32,
    batch_window_ms: Annotated[
        float,
        typer.Option(help="how long a batch waits for more requests, in ms", min=0, max=1000),
    ] = 2.0,
    cache: Annotated[
        int, typer.Option(help="query embeddings kept in an LRU cache (0: none)", min=0)
    ] = 10_000,
    workers: Annotated[
        int,
        typer.Option(
            help="server processes (each loads the model and the index; one per core)",
            min=1,
            max=64,
        ),
    ] = 1,
    refine: RefineOption = None,
) -> None:
    """Serve http://HOST:PORT/ (search page), /search, /videos/{id}, /health, /docs."""
    import json
    import os

    import uvicorn

    from vidret.search.server import SERVE_SETTINGS, app_from_environment

    # One compute thread per request batch (`--threads`): with several workers, or the
    # batcher beside the HTTP loop, more would oversubscribe the cores.
    settings = {
        "index_dir": str(index),
        "normalize": normalize,
        "max_batch": max_batch,
        "window_ms": batch_window_ms,
        "cache_size": cache,
        "threads": threads,
        "refine": str(refine) if refine else None,
    }
    os.environ[SERVE_SETTINGS] = json.dumps(settings)
    app = app_from_environment()  # also checks the index and the model before serving
    many = f", {workers} worker processes" if workers > 1 else ""
    typer.echo(f"serving {index} on http://{host}:{port}/  (API description: /docs{many})")
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    del app  # each worker builds its own from the same settings
    uvicorn.run(
        "vidret.search.server:app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
    )
