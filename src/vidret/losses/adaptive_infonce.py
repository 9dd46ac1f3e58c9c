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

from torch import Tensor

from vidret.losses.base import LossContext, LossOutput
from vidret.losses.cmgsd import CMGSDLoss
from vidret.losses.infonce import InfoNCE


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

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        M, lam = self.source.mixed_margins(sims, ctx)
        tau = self.temperature
        out = self.symmetric_cross_entropy((sims + M) / tau, (sims.T + M) / tau)
        out.terms["lambda_"] = lam
        return out
