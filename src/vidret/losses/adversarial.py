"""Adversarial modality alignment (AME-Net): a small discriminator learns to tell a
caption embedding from a video embedding, and the encoders learn to fool it through a
gradient reversal layer, pulling the two modalities' distributions together.

    total = objective(sims) + BCE(discriminator(GRL_w(embeddings)), is_caption)

The discriminator's parameters descend on the BCE; the encoders receive its gradient
multiplied by -w (`loss.adversarial=w`), so they ascend on it. Any objective and any
backbone: the wrapper reads the joint-space embeddings from the loss context, one vector
per expert (an expert a video lacks is left out), each `embed_dim` wide. Its accuracy is
logged every step (`adv_accuracy`, averaged per epoch in metrics.jsonl): near 0.5 means
the modalities are aligned as far as the discriminator can see.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidret.losses.base import LossContext, LossOutput, Objective


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: float) -> Tensor:  # type: ignore[override]
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return -ctx.weight * grad, None


def reverse_gradient(x: Tensor, weight: float) -> Tensor:
    """Identity forward; the gradient flowing back is multiplied by -weight."""
    return _GradientReversal.apply(x, weight)


class AdversarialAlignment(Objective):
    def __init__(self, objective: Objective, weight: float, embed_dim: int, hidden: int = 256):
        super().__init__()
        if weight <= 0:
            raise ValueError(f"adversarial weight {weight}: must be > 0 (0 means no wrapper)")
        self.objective, self.weight = objective, weight
        self.discriminator = nn.Sequential(
            nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    @property
    def needs_static(self) -> bool:
        return getattr(self.objective, "needs_static", False)

    @property
    def needs_relevance(self) -> bool:
        return getattr(self.objective, "needs_relevance", False)

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        out = self.objective(sims, ctx)
        text = ctx.joint_text if ctx.joint_text is not None else ctx.text
        if text is None or ctx.video is None:
            raise ValueError("adversarial alignment needs the batch's caption and video embeddings")
        vectors = torch.cat([text.vectors, ctx.video.vectors]).flatten(0, 1)  # [2B*E, d]
        present = torch.cat([text.weights > 0, ctx.video.weights > 0]).flatten()
        is_caption = torch.zeros(present.shape, device=sims.device)
        is_caption[: text.vectors.shape[0] * text.vectors.shape[1]] = 1.0
        vectors, is_caption = vectors[present], is_caption[present]
        logits = self.discriminator(reverse_gradient(vectors, self.weight))[:, 0]
        adversarial = F.binary_cross_entropy_with_logits(logits, is_caption)
        accuracy = ((logits > 0).float() == is_caption).float().mean()
        terms = {
            **out.terms,
            "adv_loss": adversarial.item(),
            "adv_accuracy": accuracy.item(),
        }
        total = out.total + adversarial
        terms["loss"] = total.item()
        return LossOutput(total, terms)
