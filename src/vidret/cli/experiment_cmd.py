"""`vidret experiment`: train and evaluate every variant x seed, then tabulate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidret.errors import VidretError


def experiment_command(
    file: Annotated[Path, typer.Argument(help="experiment file, e.g. configs/experiments/x.yaml")],
    seeds: Annotated[str | None, typer.Option(help="override the seeds: 0,1,2,3,4")] = None,
    out: Annotated[
        Path | None, typer.Option(help="folder (default: runs/experiments/<name>)")
    ] = None,
    jobs: Annotated[int, typer.Option(help="runs at a time (one torch thread each)", min=1)] = 1,
    split: Annotated[str, typer.Option(help="split reported in results.md: test or val")] = "test",
    folds: Annotated[
        int | None,
        typer.Option(
            help="K-fold cross-validation over the training videos (test untouched): each "
            "variant x seed trains K times; report with --split val",
            min=0,
        ),
    ] = None,
    normalize: Annotated[
        str | None,
        typer.Option(
            help="also score each test split with test-time normalization: dual_softmax, "
            "qbnorm or both (dual_softmax,qbnorm); rows of their own in results.md"
        ),
    ] = None,
) -> None:
    """Run what is missing (finished runs are kept), then write results.json and results.md."""
    from vidret.experiments.normalized import score_normalized
    from vidret.experiments.results import write_results
    from vidret.experiments.runner import run_experiment
    from vidret.experiments.spec import load_experiment
    from vidret.locking import folder_lock

    if split not in ("test", "val"):
        raise VidretError(f"--split {split!r}: choose test or val")
    seed_list = None
    if seeds:
        try:
            seed_list = [int(s) for s in seeds.split(",")]
        except ValueError:
            raise VidretError(f"--seeds {seeds!r}: give integers separated by commas") from None
    methods = [m.strip() for m in normalize.split(",") if m.strip()] if normalize else None
    spec = load_experiment(file, seed_list, methods, folds)
    out = out or Path("runs") / "experiments" / spec.name
    with folder_lock(out, what="runs an experiment in"):
        errors = run_experiment(spec, out, jobs=jobs)
        score_normalized(spec, out)
        _, table = write_results(spec, out, part=split)
    typer.echo(table.read_text())
    typer.echo(f"results: {out / 'results.json'}, {table}")
    if errors:
        for e in errors:
            typer.secho(f"failed: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
