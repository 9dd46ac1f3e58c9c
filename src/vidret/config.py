"""Typed run configuration: validated on load, saved next to every run.

A config is YAML with the sections below. Unknown keys are errors (a typo never silently
falls back to a default), and `--set section.key=value` overrides any key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vidret.errors import VidretError


class ConfigSection(BaseModel):
    # inf and nan are never meaningful settings (`--set train.lr=.inf` would train on NaN)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)


class DataConfig(ConfigSection):
    path: str | None = None  # dataset folder; None: the generated demo set
    split: Literal["random", "named", "all"] = "random"
    # random split: train/val/test counts or fractions (600/100/100 on msrvtt-1k)
    sizes: str = "0.75/0.125/0.125"
    seed: int = 0  # random split seed (independent of the training seed)
    names: dict[str, str] = Field(
        default_factory=lambda: {"train": "train", "val": "val", "test": "test"}
    )  # named split: part -> splits/<name>.txt
    experts: list[str] | None = None  # visual experts to use; None: all in the folder
    # K-fold cross-validation over the training videos (train + val of the split): fold
    # `fold` validates, the rest trains; the test part is untouched. 0: no folds.
    folds: int = Field(0, ge=0)
    fold: int = Field(0, ge=0)


class TextConfig(ConfigSection):
    # sentence: frozen Sentence-BERT vectors; tokens: frozen token features + trainable
    # aggregator; finetune: the transformer itself is trained (slow on CPU)
    encoder: Literal["sentence", "tokens", "finetune"] = "sentence"
    model: str | None = None  # sentence-transformers folder; None: all-MiniLM-L6-v2 (packaged)
    max_tokens: int = Field(32, ge=4, le=256)
    aggregator_layers: int = Field(1, ge=1, le=6)
    # tokens from the dataset folder's caption_features/<source>.npy (e.g. a feature
    # release's word vectors) instead of Sentence-BERT; with encoder: tokens. Such a model
    # cannot embed a new query, so it cannot back a search index.
    source: str | None = None

    @model_validator(mode="after")
    def _source_needs_tokens(self) -> TextConfig:
        if self.source is not None and self.encoder != "tokens":
            raise ValueError(
                f"text.source={self.source!r} gives token features: set text.encoder=tokens"
            )
        return self


class ModelConfig(ConfigSection):
    backbone: Literal["meanpool", "mmt", "ce", "dual", "prota", "visern", "amenet"] = "meanpool"
    embed_dim: int = Field(256, ge=8)
    hidden_dim: int = Field(512, ge=8)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    layers: int = Field(2, ge=1)  # mmt: transformer layers; visern: graph convolutions
    heads: int = Field(4, ge=1)  # mmt: attention heads
    # mmt, prota, visern, amenet: frames per expert fed to the model (evenly spaced)
    max_frames: int = Field(32, ge=1)
    # prota: partial aggregation slots per space, the low space's width (None: a quarter of
    # embed_dim), the samples drawn from each token distribution in training
    slots: int = Field(4, ge=1)
    low_dim: int | None = Field(None, ge=2)
    samples: int = Field(4, ge=1)
    restart: float = Field(0.2, ge=0.0, le=1.0)  # visern: the random walk's restart share
    # mmt and ce: published = the reference architecture (gabeur/mmt, see
    # vidret/models/mmt_published.py; albanie/collaborative-experts, ce_published.py);
    # compact = vidret's earlier, smaller variants
    variant: Literal["published", "compact"] = "published"
    # ce published: experts pooled by NetVLAD (variable-length ones, as CE: audio, speech,
    # ocr), the clusters of each NetVLAD (video experts and caption words)
    vlad_experts: list[str] = Field(default_factory=lambda: ["audio", "speech", "ocr"])
    vlad_clusters: int = Field(16, ge=1)
    ffn_dim: int | None = Field(None, ge=8)  # mmt feed-forward width; None: 6 x hidden_dim
    # (published: 3,072 at hidden 512, as MMT) or 2 x hidden_dim (compact)

    @property
    def low_width(self) -> int:
        return self.low_dim if self.low_dim is not None else max(2, self.embed_dim // 4)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelConfig:
        if self.low_dim is not None and self.low_dim > self.embed_dim:
            raise ValueError(
                f"model.low_dim ({self.low_dim}) must not exceed model.embed_dim "
                f"({self.embed_dim}): the low space is the smaller of ProTA's two"
            )
        if self.backbone in ("mmt", "prota") and self.hidden_dim % self.heads:
            raise ValueError(
                f"model.hidden_dim ({self.hidden_dim}) must be divisible by model.heads "
                f"({self.heads}): each attention head takes an equal share of the width"
            )
        return self


class LossConfig(ConfigSection):
    # adaptive_infonce: InfoNCE whose negatives are raised by CMGSD's adaptive margins
    # unified: the unified pair-similarity loss, gamma = 1 / temperature, with loss.margin;
    # sndcg: triplet + Smooth-NDCG (listwise); bcls: triplet + Kendall ranking loss
    # prota: InfoNCE whose positives must win by uncertainty_margin x their uncertainty,
    # plus kl_weight x the token distributions' KL to N(0, I) (vidret.losses.prota)
    name: Literal[
        "triplet", "infonce", "cmgsd", "adaptive_infonce", "unified", "sndcg", "bcls", "prota"
    ] = "triplet"
    margin: float = Field(0.2, ge=0.0)  # triplet and cmgsd: the hard margin alpha
    mining: bool = True  # triplet: hardest negative (max-violation) after the warm-up
    # triplet and cmgsd, with mining: hardest (VSE++), or selective (RVSEPP: the hardest
    # negative only where |positive - hardest| >= epsilon, else the mean over negatives)
    reducer: Literal["hardest", "selective"] = "hardest"
    epsilon: float = Field(0.01, ge=0.0)  # the selective reducer's threshold (RVSEPP's)
    # sndcg: the sigmoid's temperature in the smooth ranks, and the listwise share
    tau: float = Field(0.01, gt=0.0)
    listwise_weight: float = Field(0.5, ge=0.0, le=1.0)
    # bcls: pairs whose relevance differs by more than gap are ranked; the Kendall weight
    gap: float = Field(0.3, ge=0.0)
    kendall_weight: float = Field(1.0, ge=0.0)
    # bcls: 0 ranks all pairs (the authors' code); W > 0: sliding-window sampling and
    # hard-sample mining, each candidate against the W next less relevant ones, the hardest
    window: int = Field(0, ge=0)
    # any objective: adversarial modality alignment (AME-Net) with this weight; 0 = off
    adversarial: float = Field(0.0, ge=0.0)
    uncertainty_margin: float = Field(0.1, ge=0.0)  # prota
    kl_weight: float = Field(1e-3, ge=0.0)  # prota
    warmup_epochs: float = Field(1.0, ge=0.0)  # triplet: epochs averaging over negatives
    temperature: float = Field(0.05, gt=0.0)  # infonce: initial temperature; unified: 1/gamma
    learn_temperature: bool = True
    # cmgsd: adaptive margins; 90% of them within margin +- beta
    beta: float = Field(0.04, ge=0.0)
    # cmgsd: lambda is 0 until lambda_start, then grows from 0.1 to 1.0 at lambda_end; both
    # are fractions of train.epochs (the paper's 20 and 50 of 50 epochs: 0.4 and 1.0)
    lambda_start: float = Field(0.4, ge=0.0, le=1.0)
    lambda_end: float = Field(1.0, ge=0.0, le=1.0)
    text_experts: bool = True  # cmgsd ablations: which supervision experts to use
    video_experts: bool = True
    static: bool = True
    dynamic: bool = True
    static_text_model: str | None = None  # sentence-transformers folder; None: text.model
    # cmgsd's static text expert: each caption against the batch's captions (the paper),
    # or against every caption of each batch video, the best match (the relevance of the
    # listwise losses, symmetrized, as margins)
    static_text: Literal["caption", "video_captions"] = "caption"
    # cmgsd: the dynamic text expert. embeddings: the model's caption embeddings (one per
    # expert); encoder: the caption encoder's output before the backbone's heads (the
    # paper's choice for MMT, its caption [CLS] output). With a frozen encoder
    # (text.encoder=sentence) "encoder" equals the static text expert: use it with
    # text.encoder=finetune.
    dynamic_text: Literal["embeddings", "encoder"] = "embeddings"


class TrainConfig(ConfigSection):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    warmup_steps: int = Field(50, ge=0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    step_epochs: int = Field(10, ge=1)  # step schedule: decay every N epochs
    step_gamma: float = Field(0.1, gt=0.0)
    grad_clip: float | None = 2.0
    seed: int = 0
    val_metric: str = "Rsum"  # "Rsum" or "t2v/R@1" style paths into the metrics
    patience: int | None = 10  # early stopping: epochs without improvement
    eval_batch: int = Field(512, ge=1)
    # torch CPU threads. Part of the result: floating-point sums split across threads
    # round differently, so the same config gives the same numbers only with the same
    # count. Fixed (not "all cores") so that a config means the same run on every machine.
    threads: int = Field(1, ge=1, le=256)

    @field_validator("threads", mode="before")
    @classmethod
    def _threads_of_older_runs(cls, value: Any) -> Any:
        # Runs saved before the count was fixed say `threads: null`: torch's default,
        # which is what they ran with (on the machine that trained them).
        if value is None:
            import torch

            return torch.get_num_threads()
        return value


Config = TypeVar("Config", bound=ConfigSection)


class RunConfig(ConfigSection):
    data: DataConfig = Field(default_factory=DataConfig)
    text: TextConfig = Field(default_factory=TextConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


def load_config(path: Path | str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or the defaults) and apply `key=value` overrides."""
    raw, source = read_config_mapping(path, overrides)
    return parse_config(raw, source)


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


def parse_config(raw: Any, source: str) -> RunConfig:
    """Validate a config mapping; errors name each bad key and say what is wrong."""
    return validate_sections(raw, source, RunConfig)


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
