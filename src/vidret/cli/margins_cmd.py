"""`vidret margins`: figures of the adaptive margins of a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def margins_command(
    run: Annotated[Path, typer.Option(help="a trained run folder")],
    out: Annotated[Path, typer.Option(help="folder for the PNG figures")],
    data: Annotated[Path | None, typer.Option(help="dataset folder (default: the run's)")] = None,
    alpha: Annotated[float | None, typer.Option(help="hard margin (default: the run's)")] = None,
    beta: Annotated[
        float | None, typer.Option(help="spread (default: the run's loss.beta)")
    ] = None,
    batch: Annotated[int, typer.Option(help="videos in the batch the margins are drawn for")] = 128,
    examples: Annotated[int, typer.Option(help="captions shown with their negatives")] = 3,
    seed: Annotated[int, typer.Option(help="which batch")] = 0,
) -> None:
    """Write margin_distribution.png, pair_margins.png and training_curves.png."""
    from vidret.eval.margins import margin_figures

    for path in margin_figures(run, data, out, alpha, beta, batch, examples, seed):
        typer.echo(f"wrote {path}")
