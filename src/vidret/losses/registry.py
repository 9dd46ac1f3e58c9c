"""Objectives by name: `loss.name` in a config picks one."""

from __future__ import annotations

from vidret.config import LossConfig
from vidret.losses.adaptive_infonce import AdaptiveInfoNCE
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
    objective = _build(cfg, epochs)
    if cfg.adversarial > 0:
        if embed_dim is None:
            raise ValueError("loss.adversarial needs the model's embed_dim")
        return AdversarialAlignment(objective, cfg.adversarial, embed_dim)
    return objective


def reducer_of(cfg: LossConfig) -> Reducer:
    """The reducer after the warm-up: `loss.mining` off means the mean over negatives."""
    if not cfg.mining:
        return MeanOverNegatives()
    if cfg.reducer == "selective":
        return SelectiveHardNegative(cfg.epsilon)
    return HardestNegative()


def _build(cfg: LossConfig, epochs: int) -> Objective:
    margins = {
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
    if cfg.name == "cmgsd":
        return CMGSDLoss(reducer=reducer_of(cfg), warmup_epochs=cfg.warmup_epochs, **margins)
    if cfg.name == "adaptive_infonce":
        return AdaptiveInfoNCE(cfg.temperature, cfg.learn_temperature, **margins)
    if cfg.name == "sndcg":
        return SmoothNDCGLoss(cfg.margin, tau=cfg.tau, weight=cfg.listwise_weight)
    if cfg.name == "bcls":
        return KendallRankingLoss(
            cfg.margin, gap=cfg.gap, weight=cfg.kendall_weight, window=cfg.window
        )
    if cfg.name == "prota":
        return ProTALoss(
            cfg.temperature, cfg.learn_temperature, cfg.uncertainty_margin, cfg.kl_weight
        )
    if cfg.name == "unified":
        return UnifiedLoss(cfg.margin, gamma=1.0 / cfg.temperature)
    if cfg.name == "triplet":
        return TripletLoss(cfg.margin, reducer=reducer_of(cfg), warmup_epochs=cfg.warmup_epochs)
    return InfoNCE(cfg.temperature, learn_temperature=cfg.learn_temperature)
