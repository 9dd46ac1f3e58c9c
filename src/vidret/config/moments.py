"""The config of a moment-localization run (CDNet): `task: moments` at the top of the YAML.

Same rules as a retrieval config (`vidret.config`): unknown keys are errors and
`--set section.key=value` overrides any key; `vidret train` reads `task` to decide which
kind of run a config describes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from vidret.config.loading import ConfigSection, read_config_mapping, validate_sections
from vidret.errors import VidretError

TASK = "moments"


class MomentDataConfig(ConfigSection):
    path: str | None = None  # a dataset folder with moments.jsonl (`vidret data moments`)
    # the visual expert CDNet reads; None: the folder's only one (an error if several)
    expert: str | None = None
    # longer videos are read as this many frames, each the mean of neighbouring ones
    max_frames: int = Field(64, ge=2)
    # named splits of the folder: part -> splits/<name>.txt (long videos, not moments)
    names: dict[str, str] = Field(
        default_factory=lambda: {"train": "train", "val": "val", "test": "test"}
    )


class MomentTextConfig(ConfigSection):
    model: str | None = None  # sentence-transformers folder; None: all-MiniLM-L6-v2
    max_tokens: int = Field(24, ge=4, le=256)  # word tokens of the query


class CDNetConfig(ConfigSection):
    hidden_dim: int = Field(128, ge=8)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    context_layers: int = Field(2, ge=0)  # temporal convolutions before disentanglement
    denoise_layers: int = Field(2, ge=1)  # context-aware dynamic denoising layers
    offsets: int = Field(4, ge=1)  # query-relevant offsets per frame and layer
    max_offset: float = Field(16.0, gt=0.0)  # frames an offset may reach either side


class MomentLossConfig(ConfigSection):
    # boundary: cross-entropy of the start and end frames; iou: generalized IoU of the
    # expected span; alignment: binary cross-entropy of QSD's alignment levels against
    # "this frame lies inside the moment"
    boundary: float = Field(1.0, ge=0.0)
    iou: float = Field(1.0, ge=0.0)
    alignment: float = Field(1.0, ge=0.0)


class MomentTrainConfig(ConfigSection):
    epochs: int = Field(15, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(5e-4, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    grad_clip: float | None = 1.0
    seed: int = 0
    patience: int | None = 5  # early stopping: epochs without a better validation score
    val_metric: str = "R1@0.5"  # a key of the moment metrics
    threads: int = Field(1, ge=1, le=256)  # torch CPU threads (part of the result)


class MomentRunConfig(ConfigSection):
    task: Literal["moments"] = TASK
    model_name: Literal["cdnet"] = "cdnet"
    data: MomentDataConfig = Field(default_factory=MomentDataConfig)
    text: MomentTextConfig = Field(default_factory=MomentTextConfig)
    model: CDNetConfig = Field(default_factory=CDNetConfig)
    loss: MomentLossConfig = Field(default_factory=MomentLossConfig)
    train: MomentTrainConfig = Field(default_factory=MomentTrainConfig)


def is_moment_config(path: Path | None) -> bool:
    """Whether the YAML at `path` describes a moment run (`task: moments`)."""
    if path is None or not path.is_file():
        return False
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        return False  # load_config reports the problem
    return isinstance(raw, dict) and raw.get("task") == TASK


def load_moment_config(
    path: Path | str | None = None, overrides: list[str] | None = None
) -> MomentRunConfig:
    raw, source = read_config_mapping(path, overrides)
    return parse_moment_config(raw, source)


def parse_moment_config(raw: Any, source: str) -> MomentRunConfig:
    return validate_sections(raw, source, MomentRunConfig)


def read_moment_run_config(run_dir: Path) -> MomentRunConfig:
    """The config saved in a moment run's folder."""
    path = run_dir / "config.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise VidretError(
            f"{path}: unreadable run config ({e}); the run folder is damaged"
        ) from None
    return parse_moment_config(raw, str(path))
