"""The contract every objective keeps."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from vidret.models.types import Embeddings


@dataclass
class LossContext:
    """What an objective may know beyond the similarities.

    `epoch` counts epochs elapsed, fractional within an epoch (0.5 = half-way through the
    first), for warm-ups and schedules. The embeddings are the batch's own (the dynamic
    supervision experts); `static` holds fixed expert vectors of the batch by name.
    """

    epoch: float = 0.0
    text: Embeddings | None = None
    video: Embeddings | None = None
    static: dict[str, Tensor] = field(default_factory=dict)
    # the model's caption embeddings in the joint space, where `text` holds something
    # else (loss.dynamic_text=encoder); None means `text` is them
    joint_text: Embeddings | None = None


@dataclass
class LossOutput:
    total: Tensor
    terms: dict[str, float] = field(default_factory=dict)  # for logs and plots


class Objective(nn.Module):
    """`forward(sims [B, B], ctx) -> LossOutput`; may hold parameters (a temperature)."""

    def forward(self, sims: Tensor, ctx: LossContext) -> LossOutput:
        raise NotImplementedError
