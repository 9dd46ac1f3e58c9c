"""Learning-rate schedule: linear warm-up, then cosine decay, step decay or constant."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from vidret.config import TrainConfig


def lr_factor(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rate after `step` optimizer steps."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        total = max(1, cfg.epochs * steps_per_epoch - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / total)
        return 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule == "step":
        return cfg.step_gamma ** (step // (cfg.step_epochs * steps_per_epoch))
    return 1.0


def build_scheduler(optimizer: Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: lr_factor(step, cfg, steps_per_epoch))
