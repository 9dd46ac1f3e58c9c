"""InfoNCE with adaptive margins: each negative's similarity is raised by its own margin.

Additive-margin softmax lowers the positive logit by one fixed margin m, which equals
raising every negative by m. Here negative j of query i is raised by M[i, j], CMGSD's
adaptive margin (same experts, rescale and lambda schedule):

    logits_v[i, j] = (S[i, j] + M[i, j] [j != i]) / tau      captions -> videos
    logits_t[i, j] = (S[j, i] + M[i, j] [j != i]) / tau      videos -> captions

with M = lambda * mean(dynamic experts' margins) + (1 - lambda) * mean(static ones); with
beta = 0 this is additive-margin InfoNCE with margin alpha. A negative the experts find
close to the query (a likely false negative) is pushed less; a far one more.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidret.losses.base import LossContext, LossOutput
from vidret.losses.cmgsd import CMGSDLoss
from vidret.losses.infonce import InfoNCE
from vidret.losses.triplet import negatives_mask


class AdaptiveInfoNCE(InfoNCE):
    needs_static = True

    def __init__(
        self, temperature: float = 0.05, learn_temperature: bool = True, **margin_options: object
    ):
        super().__init__(temperature, learn_temperature)
        # Only its margins and lambda are used: the same experts and schedule as CMGSD.
        self.source = CMGSDLoss(**margin_options)  # type: ignore[arg-type]

    @property
    def needs_relevance(self) -> bool:
        return self.source.needs_relevance

    def margin_matrix(self, sims: Tensor, ctx: LossContext) -> tuple[Tensor, float]:
        lam = self.source.lambda_(ctx.epoch)
        dynamic, static = self.source.margins(ctx)
        M = torch.zeros_like(sims)
        for weight, group in ((lam, dynamic), (1.0 - lam, static)):
            if weight and group:
                M = M + weight * torch.stack([m for _, m in group]).mean(0)
        if not dynamic and not static:
            M = torch.full_like(sims, self.source.alpha)  # no experts: plain additive margin
        return M * negatives_mask(sims.shape[0], sims.device), lam

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        M, lam = self.margin_matrix(sims, ctx)
        tau = self.temperature
        out = self.symmetric_cross_entropy((sims + M) / tau, (sims.T + M) / tau)
        out.terms["lambda_"] = lam
        return out
