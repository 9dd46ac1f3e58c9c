"""Config files in general: YAML sections validated on load (unknown keys are errors, so a
typo never falls back to a default), `--set section.key=value` overrides, and error
messages that name each bad key. The run configs built on it: `vidret.config.retrieval`
and `vidret.config.moments`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from vidret.errors import VidretError


class ConfigSection(BaseModel):
    # inf and nan are never meaningful settings (`--set train.lr=.inf` would train on NaN)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)


Config = TypeVar("Config", bound=ConfigSection)


def read_config_mapping(
    path: Path | str | None, overrides: list[str] | None = None
) -> tuple[dict[str, Any], str]:
    """A YAML config file as a mapping (empty without a file) with `key=value` overrides
    applied, and the name of its source for error messages."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if path.is_dir():
            raise VidretError(f"{path}: a folder; give a YAML config file (see configs/)")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise VidretError(f"{path}: no such config file (see configs/)") from None
        except UnicodeDecodeError as e:
            raise VidretError(
                f"{path}: not a text file (byte {e.start} is not UTF-8); give a YAML config"
            ) from None
        except yaml.YAMLError as e:
            raise VidretError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(raw, dict):
            raise VidretError(f"{path}: a config must be a mapping of sections")
    for item in overrides or []:
        _apply_override(raw, item)
    return raw, source


def validate_sections(raw: Any, source: str, schema: type[Config]) -> Config:
    """`raw` validated as `schema` (a retrieval or a moment run's config)."""
    if not isinstance(raw, dict):
        raise VidretError(f"{source}: a config must be a mapping of sections")
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        raise VidretError(explain_validation(e, source)) from None


def _apply_override(raw: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise VidretError(f"--set {item!r}: expected key=value, e.g. train.epochs=5")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise VidretError(f"--set {item!r}: expected section.key=value, e.g. train.epochs=5")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise VidretError(f"--set {item!r}: {part} is not a section")
    try:
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        raise VidretError(f"--set {item!r}: the value is not valid YAML") from None


def explain_validation(error: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for err in error.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (check its spelling; see configs/ for examples)")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {key}: {err['msg']}{shown}")
    return "\n".join(lines)
