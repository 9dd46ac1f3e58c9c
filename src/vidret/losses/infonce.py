"""Symmetric InfoNCE: cross-entropy over the batch, captions->videos and videos->captions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidret.losses.base import LossContext, LossOutput, Objective

# A learned temperature below this makes the logits explode (CLIP clamps the same way).
MIN_TEMPERATURE = 0.01


class InfoNCE(Objective):
    def __init__(self, temperature: float = 0.05, learn_temperature: bool = True):
        super().__init__()
        log_t = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)

    @property
    def temperature(self) -> Tensor:
        return self.log_temperature.clamp(min=math.log(MIN_TEMPERATURE)).exp()

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        tau = self.temperature
        return self.symmetric_cross_entropy(sims / tau, sims.T / tau)

    def symmetric_cross_entropy(self, logits_v: Tensor, logits_t: Tensor) -> LossOutput:
        """Mean of captions -> videos (`logits_v`) and videos -> captions (`logits_t`)."""
        target = torch.arange(logits_v.shape[0], device=logits_v.device)
        loss_v = F.cross_entropy(logits_v, target)  # each caption picks its video
        loss_t = F.cross_entropy(logits_t, target)  # each video picks its caption
        total = (loss_v + loss_t) / 2
        return LossOutput(
            total,
            {
                "loss": total.item(),
                "loss_v": loss_v.item(),
                "loss_t": loss_t.item(),
                "temperature": self.temperature.item(),
            },
        )
