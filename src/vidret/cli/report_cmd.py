"""`vidret report`: figures and tables of a run or an experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report_command(
    folder: Annotated[Path, typer.Argument(help="a run folder or an experiment folder")],
    out: Annotated[
        Path | None, typer.Option(help="where to write (default: FOLDER/report)")
    ] = None,
) -> None:
    """Training curves of a run; table, Rsum chart and validation curves of an experiment."""
    from vidret.eval.report import report

    for path in report(folder, out, say=lambda line: typer.echo(line, err=True)):
        typer.echo(f"wrote {path}")
