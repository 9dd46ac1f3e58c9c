"""Objectives by name: `loss.name` in a config picks one from `OBJECTIVES`.

Each entry turns the config's `loss` section into the objective; the losses themselves
take plain arguments and objects (a reducer, not a string naming one), so they plug into
any PyTorch model without a vidret config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vidret.config import LossConfig
from vidret.errors import VidretError
from vidret.losses.adaptive_infonce import AdaptiveInfoNCE
from vidret.losses.adaptive_unified import AdaptiveUnifiedLoss
from vidret.losses.adversarial import AdversarialAlignment
from vidret.losses.base import Objective
from vidret.losses.cmgsd import CMGSDLoss
from vidret.losses.infonce import InfoNCE
from vidret.losses.kendall import KendallRankingLoss
from vidret.losses.listwise import SmoothNDCGLoss
from vidret.losses.prota import ProTALoss
from vidret.losses.reducers import (
    HardestNegative,
    MeanOverNegatives,
    Reducer,
    SelectiveHardNegative,
)
from vidret.losses.triplet import TripletLoss
from vidret.losses.unified import UnifiedLoss


def build_objective(cfg: LossConfig, epochs: int = 1, embed_dim: int | None = None) -> Objective:
    """`epochs` (train.epochs) scales the lambda marks, given as fractions of the run;
    `embed_dim` (model.embed_dim) sizes the discriminator of `loss.adversarial`."""
    objective = check_objective(cfg.name)(cfg, epochs)
    if cfg.adversarial > 0:
        if embed_dim is None:
            raise ValueError("loss.adversarial needs the model's embed_dim")
        return AdversarialAlignment(objective, cfg.adversarial, embed_dim)
    return objective


def check_objective(name: str) -> Callable[[LossConfig, int], Objective]:
    """What builds the objective `loss.name` names; a clear error for any other name."""
    if name not in OBJECTIVES:
        raise VidretError(f"loss.name {name!r}: choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name].build


def check_loss_keys(name: str, keys: list[str] | set[str], source: str) -> None:
    """Refuse `loss` keys given for an objective that does not read them (`loss.temperature`
    on a triplet run would otherwise change nothing, silently). `keys`: those the user set
    for this objective (a config file's own loss section, `--set loss.*`, an experiment
    variant's `set`); a file's keys for another objective, switched by `--set loss.name`,
    are not the user's settings for this one and are not passed."""
    check_objective(name)
    unread = sorted(set(keys) - {*OBJECTIVES[name].reads, *COMMON})
    if unread:
        listed = ", ".join(f"loss.{k}" for k in unread)
        raise VidretError(
            f"{source}: {listed} is not read by loss.name {name!r} (it reads "
            f"{', '.join(OBJECTIVES[name].reads) or 'no parameters'}); remove it or "
            "choose an objective that uses it"
        )


def reducer_of(cfg: LossConfig) -> Reducer:
    """The reducer after the warm-up: `loss.mining` off means the mean over negatives."""
    if not cfg.mining:
        return MeanOverNegatives()
    if cfg.reducer == "selective":
        return SelectiveHardNegative(cfg.epsilon)
    return HardestNegative()


def margin_options(cfg: LossConfig, epochs: int) -> dict[str, Any]:
    """CMGSD's adaptive margins, shared by `cmgsd` and `adaptive_infonce`."""
    return {
        "alpha": cfg.margin,
        "beta": cfg.beta,
        "lambda_start": cfg.lambda_start * epochs,
        "lambda_end": cfg.lambda_end * epochs,
        "text_experts": cfg.text_experts,
        "video_experts": cfg.video_experts,
        "static": cfg.static,
        "dynamic": cfg.dynamic,
        "static_text": cfg.static_text,
    }


def _triplet(cfg: LossConfig, epochs: int) -> Objective:
    return TripletLoss(cfg.margin, reducer=reducer_of(cfg), warmup_epochs=cfg.warmup_epochs)


def _infonce(cfg: LossConfig, epochs: int) -> Objective:
    return InfoNCE(cfg.temperature, learn_temperature=cfg.learn_temperature)


def _cmgsd(cfg: LossConfig, epochs: int) -> Objective:
    return CMGSDLoss(
        reducer=reducer_of(cfg), warmup_epochs=cfg.warmup_epochs, **margin_options(cfg, epochs)
    )


def _adaptive_infonce(cfg: LossConfig, epochs: int) -> Objective:
    return AdaptiveInfoNCE(cfg.temperature, cfg.learn_temperature, **margin_options(cfg, epochs))


def _unified(cfg: LossConfig, epochs: int) -> Objective:
    return UnifiedLoss(cfg.margin, gamma=1.0 / cfg.temperature)


def _adaptive_unified(cfg: LossConfig, epochs: int) -> Objective:
    return AdaptiveUnifiedLoss(gamma=1.0 / cfg.temperature, **margin_options(cfg, epochs))


def _sndcg(cfg: LossConfig, epochs: int) -> Objective:
    return SmoothNDCGLoss(cfg.margin, tau=cfg.tau, weight=cfg.listwise_weight)


def _bcls(cfg: LossConfig, epochs: int) -> Objective:
    return KendallRankingLoss(cfg.margin, gap=cfg.gap, weight=cfg.kendall_weight, window=cfg.window)


def _prota(cfg: LossConfig, epochs: int) -> Objective:
    return ProTALoss(cfg.temperature, cfg.learn_temperature, cfg.uncertainty_margin, cfg.kl_weight)


@dataclass(frozen=True)
class ObjectiveEntry:
    """How the config's `loss` section builds one objective, and which of its keys that
    objective reads (a key set in a config that the objective does not read is refused:
    `loss.temperature` on a triplet run would otherwise change nothing, silently)."""

    build: Callable[[LossConfig, int], Objective]
    reads: tuple[str, ...] = ()


_TRIPLET = ("margin", "mining", "reducer", "epsilon", "warmup_epochs")
_INFONCE = ("temperature", "learn_temperature")
_MARGINS = ("margin", "beta", "lambda_start", "lambda_end", "text_experts", "video_experts",
            "static", "dynamic", "static_text", "static_text_model", "dynamic_text")  # fmt: skip

# loss.name -> the objective built from the config's loss section and train.epochs
OBJECTIVES: dict[str, ObjectiveEntry] = {
    "triplet": ObjectiveEntry(_triplet, _TRIPLET),
    "infonce": ObjectiveEntry(_infonce, _INFONCE),
    "cmgsd": ObjectiveEntry(_cmgsd, (*_TRIPLET, *_MARGINS)),
    "adaptive_infonce": ObjectiveEntry(_adaptive_infonce, (*_INFONCE, *_MARGINS)),
    "unified": ObjectiveEntry(_unified, ("margin", "temperature")),
    "adaptive_unified": ObjectiveEntry(_adaptive_unified, ("temperature", *_MARGINS)),
    "sndcg": ObjectiveEntry(_sndcg, ("margin", "tau", "listwise_weight")),
    "bcls": ObjectiveEntry(_bcls, ("margin", "gap", "kendall_weight", "window")),
    "prota": ObjectiveEntry(_prota, (*_INFONCE, "uncertainty_margin", "kl_weight")),
}
# read by every objective: the name, and the adversarial alignment any of them may add
COMMON = ("name", "adversarial")
