"""`vidret serve`: the search page and its HTTP API over an index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve_command(
    index: Annotated[Path, typer.Argument(help="index folder from `vidret index`")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve http://HOST:PORT/ (search page), /search, /videos/{id}, /health, /docs."""
    import uvicorn

    from vidret.search.server import create_app

    app = create_app(index)
    typer.echo(f"serving {index} on http://{host}:{port}/  (API description: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
