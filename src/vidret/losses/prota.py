"""ProTA's adaptive contrastive loss: InfoNCE in which a positive pair must win by a margin
that grows with its uncertainty, plus a KL term that keeps the token distributions from
collapsing to points.

    logits[i, j] = (s[i, j] - m * u_i [i == j]) / T,   u_i = (u_caption_i + u_video_i) / 2
    total = symmetric cross-entropy(logits) + w_kl * mean_i (KL_caption_i + KL_video_i) / 2

where u is an item's mean slot variance and KL its slot distributions' KL to N(0, I), both
reported by a probabilistic backbone (`vidret.models.prota`) in training. The seed names
an "adaptive contrastive loss ... to learn compact cross-modal distribution space" and no
formula; this is our reading: the margin adapts to each pair's uncertainty, so a pair can
only lower it by becoming certain (compact), while the KL term stops the variances from
vanishing (which would make the model a point-embedding one). `loss.uncertainty_margin`
is m, `loss.kl_weight` is w_kl, `loss.temperature` T. With a backbone that reports no
uncertainty (every other one) it is InfoNCE.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidret.losses.base import LossContext, LossOutput
from vidret.losses.infonce import InfoNCE


class ProTALoss(InfoNCE):
    def __init__(
        self,
        temperature: float = 0.05,
        learn_temperature: bool = True,
        uncertainty_margin: float = 0.1,
        kl_weight: float = 1e-3,
    ):
        super().__init__(temperature, learn_temperature)
        self.uncertainty_margin, self.kl_weight = uncertainty_margin, kl_weight

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        text = ctx.joint_text if ctx.joint_text is not None else ctx.text
        sides = [e for e in (text, ctx.video) if e is not None]
        uncertain = [e.uncertainty for e in sides if e.uncertainty is not None]
        kls = [e.kl for e in sides if e.kl is not None]
        margined = sims
        if uncertain:
            u = torch.stack(uncertain).mean(0)  # [B]
            margined = sims - torch.diag(self.uncertainty_margin * u)
        tau = self.temperature
        out = self.symmetric_cross_entropy(margined / tau, margined.T / tau)
        if not kls:
            return out
        kl = torch.stack(kls).mean(0).mean()
        total = out.total + self.kl_weight * kl
        terms = {**out.terms, "loss": total.item(), "kl": kl.item()}
        if uncertain:
            terms["uncertainty"] = u.mean().item()
        return LossOutput(total, terms)
