"""One training step's loss over the *global* batch, in one process or several.

Under DDP each process embeds its own slice of the batch; the embeddings and the static
expert vectors are gathered so that the similarities, hardest-negative mining and the
adaptive margins' batch statistics see the whole global batch, exactly as a single
process with that batch would. Each process then holds the same loss, but gradients only
through its own slice; DDP averages gradients over processes, so the loss to
back-propagate is scaled by the number of processes (`backward_scale`), and parameters
of the objective itself (outside DDP) are divided back (`unscale_objective_grads`).
"""

from __future__ import annotations

from torch import Tensor, nn

from vidret.losses.base import LossContext, LossOutput, Objective
from vidret.models.similarity import similarity
from vidret.models.types import Embeddings, TextBatch, VideoBatch
from vidret.train.distributed import ProcessGroup, gather_with_grad


def global_batch_loss(
    net: nn.Module,
    objective: Objective,
    text: TextBatch,
    video: VideoBatch,
    static: dict[str, Tensor],
    epoch: float,
    group: ProcessGroup,
    dynamic_text: str = "embeddings",
) -> LossOutput:
    """`dynamic_text` (`loss.dynamic_text`): which caption vectors are CMGSD's dynamic text
    expert, the model's caption embeddings or the caption encoder's output."""
    fwd = net(text, video)
    t, v, sims = fwd.text, fwd.video, fwd.sims
    caption = fwd.caption[:, None]
    if group.distributed:
        t, v = _gather(t, group), _gather(v, group)
        caption = gather_with_grad(caption, group)
        static = {k: gather_with_grad(x, group) for k, x in static.items()}
        sims = similarity(t, v)
    dyn = (
        t
        if dynamic_text == "embeddings"
        else Embeddings(caption, caption.new_ones(caption.shape[:2]))
    )
    ctx = LossContext(epoch=epoch, text=dyn, video=v, static=static, joint_text=t)
    return objective(sims, ctx)


def backward_scale(group: ProcessGroup) -> float:
    return float(group.world_size)


def unscale_objective_grads(objective: Objective, group: ProcessGroup) -> None:
    """The objective's own parameters saw the whole loss in every process: undo the scale."""
    if group.distributed:
        for p in objective.parameters():
            if p.grad is not None:
                p.grad /= group.world_size


def _gather(e: Embeddings, group: ProcessGroup) -> Embeddings:
    optional = lambda x: None if x is None else gather_with_grad(x, group)  # noqa: E731
    return Embeddings(
        gather_with_grad(e.vectors, group),
        gather_with_grad(e.weights, group),
        optional(e.uncertainty),
        optional(e.kl),
    )
