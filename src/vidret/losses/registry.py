"""Objectives by name: `loss.name` in a config picks one."""

from __future__ import annotations

from vidret.config import LossConfig
from vidret.losses.base import Objective
from vidret.losses.infonce import InfoNCE
from vidret.losses.triplet import TripletLoss


def build_objective(cfg: LossConfig) -> Objective:
    if cfg.name == "triplet":
        return TripletLoss(cfg.margin, mining=cfg.mining, warmup_epochs=cfg.warmup_epochs)
    return InfoNCE(cfg.temperature, learn_temperature=cfg.learn_temperature)
