"""Experiment files: a dataset, a base config, variants (config overrides) and seeds.

name: table4-meanpool
data: ${VIDRET_SHARED_DATA}/msrvtt-1k     # environment variables are expanded
base: configs/meanpool-triplet.yaml        # relative to the repository root or cwd
seeds: [0, 1, 2, 3, 4]
test_normalization:                        # optional: the test split also scored with
  - {method: dual_softmax, temperature: 0.01}
  - {method: qbnorm}                       # query bank from each run's training part
variants:
  - name: hard margin, no mining
    set: {loss.mining: false}
  - name: hard margin + mining
  - name: + CMGSD
    base: configs/meanpool-cmgsd.yaml      # a variant may start from another config
    set: {loss.warmup_epochs: 1}
  - name: fused                            # a fusion row: trains nothing, fuses each
    fuse: [hard margin + mining, + CMGSD]  # seed's runs (weights chosen on validation,
                                           # or fuse_weights: [0.5, 0.5])
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidret.config import RunConfig, load_config, loss_keys_given
from vidret.errors import VidretError
from vidret.eval.normalization import Normalization
from vidret.losses.registry import check_loss_keys


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    base: str | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    # the variant(s) its Rsum is tested against (default: the first variant); a list gives
    # one test column each, e.g. [InfoNCE, CMGSD]; itself: no test
    compare_to: str | list[str] | None = None
    # a fusion row: no training, the named variants' runs of each seed fused
    # (vidret.eval.fusion), weights `fuse_weights` or chosen on each seed's validation split
    fuse: list[str] | None = None
    fuse_weights: list[float] | None = None

    def references(self, first: str) -> list[str]:
        if self.compare_to is None:
            return [first]
        return [self.compare_to] if isinstance(self.compare_to, str) else list(self.compare_to)

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "variant"


class NormalizationSpec(BaseModel):
    """A test-time normalization the test split is also scored with (vidret.eval.normalization)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["dual_softmax", "qbnorm"]
    temperature: float = Normalization.temperature  # the defaults are Normalization's
    beta: float = Normalization.beta
    k: int = Normalization.k
    dynamic: bool = Normalization.dynamic

    def normalization(self) -> Normalization:
        return Normalization(**self.model_dump())


class PaperReference(BaseModel):
    """The published numbers for the same rows, shown beside ours in results.md."""

    model_config = ConfigDict(extra="forbid")

    source: str  # e.g. "CMGSD paper, Table 4 (MSR-VTT 1k-A, MMT)"
    differs: str  # a sentence on what differs from this experiment (data, experts, scale)
    # our variant name -> the paper's t2v R@1/5/10/MdR, v2t R@1/5/10/MdR, Rsum (null: not given)
    rows: dict[str, list[float | None]]


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    data: str
    base: str
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    variants: list[Variant] = Field(min_length=1)
    # Extra rows: every run's test split scored again with each (no training changes).
    test_normalization: list[NormalizationSpec] = Field(default_factory=list)
    paper: PaperReference | None = None
    # K-fold cross-validation over the training videos: every variant x seed trains K
    # times, each fold validating once; results.md reports the mean over folds (--split
    # val). 0: the usual single split.
    folds: int = Field(0, ge=0)

    def data_path(self) -> Path:
        return Path(os.path.expandvars(self.data))

    def overrides(self, variant: Variant, seed: int, fold: int | None = None) -> list[str]:
        items = [f"{k}={json.dumps(v)}" for k, v in variant.set.items()] + [f"train.seed={seed}"]
        if fold is not None:
            items += [f"data.folds={self.folds}", f"data.fold={fold}"]
        return items

    def config(self, variant: Variant, seed: int, fold: int | None = None) -> RunConfig:
        return load_config(variant.base or self.base, self.overrides(variant, seed, fold))

    @property
    def trained(self) -> list[Variant]:
        """The variants that train runs (fusion rows only read theirs)."""
        return [v for v in self.variants if v.fuse is None]

    @property
    def fold_list(self) -> list[int | None]:
        return list(range(self.folds)) if self.folds else [None]


def config_hash(cfg: RunConfig) -> str:
    """Identifies a run's settings (data path excluded: it may be mounted elsewhere)."""
    dump = cfg.model_dump()
    dump["data"].pop("path", None)
    return hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()[:12]


def load_experiment(
    path: Path | str,
    seeds: list[int] | None = None,
    normalize: list[str] | None = None,
    folds: int | None = None,
) -> ExperimentSpec:
    path = Path(path)
    os.environ.setdefault("VIDRET_SHARED_DATA", str(_default_shared_data()))
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise VidretError(f"{path}: no such experiment file (see configs/experiments/)") from None
    except yaml.YAMLError as e:
        raise VidretError(f"{path}: not valid YAML ({e})") from None
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as e:
        lines = [f"invalid experiment file {path}:"]
        lines += [f"  {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
        raise VidretError("\n".join(lines)) from None
    if seeds:
        spec.seeds = seeds
    if folds is not None:
        spec.folds = folds
    if spec.folds == 1:
        raise VidretError(f"{path}: folds 1 is no cross-validation; use 0 (off) or >= 2")
    for method in normalize or []:
        if method not in ("dual_softmax", "qbnorm"):
            raise VidretError(f"--normalize {method!r}: choose dual_softmax or qbnorm")
        if method not in [n.method for n in spec.test_normalization]:
            spec.test_normalization.append(NormalizationSpec(method=method))
    methods = [n.method for n in spec.test_normalization]
    if len(set(methods)) != len(methods):
        raise VidretError(f"{path}: test_normalization names a method twice ({methods})")
    for n in spec.test_normalization:
        try:
            n.normalization()
        except VidretError as e:
            raise VidretError(f"{path}: test_normalization: {e}") from None
    slugs = [v.slug for v in spec.variants]
    if len(set(slugs)) != len(slugs):
        raise VidretError(f"{path}: two variants have the same name (as folder names: {slugs})")
    names = [v.name for v in spec.variants]
    for variant in spec.variants:
        for reference in variant.references(names[0]):
            if reference not in names:
                raise VidretError(
                    f"{path}: variant '{variant.name}' compares to '{reference}', "
                    f"which is not a variant (variants: {names})"
                )
    if spec.paper is not None:
        for row, values in spec.paper.rows.items():
            if row not in names and not row.startswith("("):
                raise VidretError(
                    f"{path}: paper row '{row}' is not a variant (variants: {names}); "
                    "name a row the paper has and we do not in parentheses"
                )
            if len(values) != 9:
                raise VidretError(
                    f"{path}: paper row '{row}' has {len(values)} numbers; give 9 (t2v "
                    "R@1 R@5 R@10 MdR, v2t R@1 R@5 R@10 MdR, Rsum; null where not given)"
                )
    _check_fusions(path, spec)
    for variant in spec.trained:  # every config must load before anything trains
        cfg = spec.config(variant, spec.seeds[0], spec.fold_list[0])
        items = [f"{k}=" for k in variant.set]
        given = loss_keys_given(variant.base or spec.base, items, cfg.loss.name)
        check_loss_keys(cfg.loss.name, given, f"{path}: variant '{variant.name}'")
    return spec


def _check_fusions(path: Path, spec: ExperimentSpec) -> None:
    trained = [v.name for v in spec.trained]
    for v in spec.variants:
        if v.fuse is None:
            if v.fuse_weights is not None:
                raise VidretError(f"{path}: variant '{v.name}' has fuse_weights but no fuse list")
            continue
        where = f"{path}: fusion row '{v.name}'"
        if v.base is not None or v.set:
            raise VidretError(f"{where} trains nothing: give it no base or set")
        if len(v.fuse) < 2 or len(set(v.fuse)) != len(v.fuse):
            raise VidretError(f"{where}: fuse names at least two different variants")
        for name in v.fuse:
            if name not in trained:
                raise VidretError(
                    f"{where}: '{name}' is not a trained variant of this file (trained: {trained})"
                )
        if v.fuse_weights is not None and (
            len(v.fuse_weights) != len(v.fuse)
            or min(v.fuse_weights) < 0
            or sum(v.fuse_weights) <= 0
        ):
            raise VidretError(
                f"{where}: fuse_weights needs {len(v.fuse)} non-negative numbers, not all 0"
            )


def _default_shared_data() -> Path:
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"
