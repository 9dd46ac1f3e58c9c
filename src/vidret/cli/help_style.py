"""How `--help` writes parameters: typer 0.29 labels every flag `<bool>` (even `--help`)
and writes required arguments as `{index}` in the usage line. A flag takes no value, so
it gets no type label; arguments read as the usual `INDEX QUERY` / `[DATA]`."""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

_option_type = TyperOption.display_type_rich


def _flag_has_no_type(self: TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _option_type(self, ctx)


def _usage_name(self: TyperArgument) -> str:
    name = self.display_name_raw.upper()
    name = name if self.required else f"[{name}]"
    return name if self.nargs == 1 else name + "..."


def apply() -> None:
    """Patch the two methods (pinned typer version: tests/test_cli_help.py checks both)."""
    TyperOption.display_type_rich = _flag_has_no_type  # type: ignore[method-assign]
    TyperArgument._usage_display_name = _usage_name  # type: ignore[method-assign]
