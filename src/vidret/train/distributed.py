"""One process or many: the same trainer runs alone or under `torchrun` (DDP).

gloo on CPU, NCCL on GPU. Only rank 0 logs, validates and writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, obj: object) -> object:
        """Rank 0's value of `obj`, on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def init_process_group() -> ProcessGroup:
    """Join the group `torchrun` set up through the environment, or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return ProcessGroup(0, 1, device)
    rank = int(os.environ["RANK"])
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        device = torch.device("cuda", local)
    else:
        dist.init_process_group("gloo")
        device = torch.device("cpu")
    return ProcessGroup(rank, world_size, device)


def destroy_process_group(group: ProcessGroup) -> None:
    if group.distributed and dist.is_initialized():
        dist.destroy_process_group()


def gather_with_grad(x: torch.Tensor, group: ProcessGroup) -> torch.Tensor:
    """Every process's `x` concatenated in rank order; gradients flow into the local part.

    The other parts arrive without gradient (their own processes back-propagate through
    them), the pattern of open_clip's `gather_features`. Every process must pass a
    tensor of the same shape.
    """
    if not group.distributed:
        return x
    parts = [torch.empty_like(x) for _ in range(group.world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[group.rank] = x
    return torch.cat(parts)
