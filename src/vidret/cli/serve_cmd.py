"""`vidret serve`: the search page and its HTTP API over an index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve_command(
    index: Annotated[Path, typer.Argument(help="index folder from `vidret index`")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (1-65535)", min=1, max=65535)] = 8000,
    threads: Annotated[
        int,
        typer.Option(help="CPU threads per query; requests already run in parallel", min=1),
    ] = 1,
    normalize: Annotated[
        str,
        typer.Option(
            help="default ordering of /search and the page: none, dual_softmax or qbnorm "
            "(test-time normalization against the index's query bank)"
        ),
    ] = "none",
) -> None:
    """Serve http://HOST:PORT/ (search page), /search, /videos/{id}, /health, /docs."""
    import faiss
    import torch
    import uvicorn

    from vidret.search.server import create_app

    # Concurrent requests each run in a worker thread; one compute thread per query
    # keeps them from oversubscribing the cores.
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)

    app = create_app(index, normalize=normalize)
    typer.echo(f"serving {index} on http://{host}:{port}/  (API description: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
