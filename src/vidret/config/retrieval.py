"""A retrieval run's configuration: the sections below, validated on load (the rules of
`vidret.config.loading`), saved next to every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from vidret.config.loading import ConfigSection, read_config_mapping, validate_sections


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
    # aggregator; finetune: the transformer itself is trained (slow on CPU); static: frozen
    # vectors of a word-vector table distilled from `model` by model2vec (no transformer
    # at query time: vidret.text.static_model)
    encoder: Literal["sentence", "tokens", "finetune", "static"] = "sentence"
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
    # a name of vidret.models.registry.BACKBONES (checked when a run starts)
    backbone: str = "meanpool"
    embed_dim: int = Field(256, ge=8)
    hidden_dim: int = Field(512, ge=8)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    layers: int = Field(2, ge=1)  # mmt: transformer layers; visern: graph convolutions
    heads: int = Field(4, ge=1)  # mmt: attention heads
    # mmt, prota, visern, amenet: frames per expert fed to the model (evenly spaced)
    max_frames: int = Field(32, ge=1)
    # mmt published: position embeddings (MMT's max_position_embeddings: 32 for MSR-VTT
    # and LSMDC, 102 for ActivityNet, whose configs also keep 100 features and 100 words)
    positions: int = Field(32, ge=3)
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
    # a name of vidret.losses.registry.OBJECTIVES (checked when a run starts)
    name: str = "triplet"
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


def parse_config(raw: Any, source: str) -> RunConfig:
    """Validate a config mapping; errors name each bad key and say what is wrong."""
    return validate_sections(raw, source, RunConfig)


def loss_keys_given(path: Path | str | None, overrides: list[str] | None, name: str) -> list[str]:
    """The `loss` keys a user gave for the objective `name`: the config file's own loss
    section when it is for that objective, and every `--set loss.KEY=...`. A file's keys
    for another objective (switched by `--set loss.name=...`) are not counted: they were
    not meant for this one (`vidret.losses.registry.check_loss_keys` reads the result)."""
    raw, _ = read_config_mapping(path)
    keys: list[str] = []
    section = raw.get("loss") if isinstance(raw.get("loss"), dict) else {}
    if section.get("name", LossConfig().name) == name:
        keys += [k for k in section if k != "name"]
    for item in overrides or []:
        key = item.split("=", 1)[0].strip()
        if key.startswith("loss.") and key != "loss.name":
            keys.append(key.removeprefix("loss."))
    return keys
