"""How `--help` writes the usage line: typer writes required arguments as `{index}`; they
read as the usual `INDEX QUERY` / `[DATA]`, as typed."""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument


def _usage_pieces(self: TyperArgument, ctx: Any) -> list[str]:
    name = (self.metavar or self.name or "").upper()
    name = name if self.required else f"[{name}]"
    return [name if self.nargs == 1 else name + "..."]


def apply() -> None:
    """Patch the usage line (pinned typer version: tests/test_cli_help.py checks it)."""
    TyperArgument.get_usage_pieces = _usage_pieces  # type: ignore[method-assign]
