"""The `vidret` command: one verb per job. Each verb is a thin layer over the library."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from typer.core import TyperCommand

from vidret import __version__
from vidret.child_process import die_with_parent
from vidret.cli import help_style
from vidret.cli.data_cmd import data_app
from vidret.cli.eval_cmd import eval_command
from vidret.cli.experiment_cmd import experiment_command
from vidret.cli.extract_cmd import extract_command
from vidret.cli.index_cmd import index_command
from vidret.cli.margins_cmd import margins_command
from vidret.cli.report_cmd import report_command
from vidret.cli.search_cmd import search_command
from vidret.cli.serve_cmd import serve_command
from vidret.cli.train_cmd import train_command, train_epilog
from vidret.errors import VidretError

# Nothing may download models at run time; libraries that could try are told not to.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

help_style.apply()

app = typer.Typer(
    name="vidret",
    help="Text-to-video retrieval: datasets, training, adaptive margins, evaluation, search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class TrainCommand(TyperCommand):
    """`vidret train`, whose help lists the backbones and objectives: read from their
    registries (which import PyTorch) only when that help is shown, so `vidret --help` and
    every other command start without PyTorch."""

    @property  # type: ignore[override]
    def epilog(self) -> str:
        return train_epilog()

    @epilog.setter
    def epilog(self, _value: str | None) -> None:
        pass  # click sets it in __init__; the property computes it when asked


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"vidret {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Text-to-video retrieval: datasets, training, adaptive margins, evaluation, search."""


app.add_typer(data_app, name="data")
app.command("train", cls=TrainCommand)(train_command)
app.command("eval")(eval_command)
app.command("margins")(margins_command)
app.command("experiment")(experiment_command)
app.command("report")(report_command)
app.command("extract")(extract_command)
app.command("index")(index_command)
app.command("search")(search_command)
app.command("serve")(serve_command)


def main() -> None:
    die_with_parent()  # a child of `vidret experiment` ends with it
    try:
        app()
    except VidretError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", fg=typer.colors.YELLOW, err=True)
        sys.exit(130)
