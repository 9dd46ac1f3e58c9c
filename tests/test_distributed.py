"""Two processes (gloo, CPU) give the loss and gradients of one process with the whole
batch: embeddings and expert vectors are gathered, so mining and the margin statistics
see the global batch."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from vidret.config import LossConfig, RunConfig
from vidret.losses.registry import build_objective
from vidret.models.base import ModelSignature
from vidret.models.retrieval import build_model
from vidret.models.types import TextBatch, VideoBatch
from vidret.train.distributed import ProcessGroup
from vidret.train.step import backward_scale, global_batch_loss, unscale_objective_grads

B, WORLD = 8, 2
SIG = ModelSignature(experts={"rgb": 12, "audio": 6}, frames={"rgb": 5, "audio": 4}, text_dim=16)
LOSSES = {
    "cmgsd": {
        "name": "cmgsd",
        "margin": 0.2,
        "beta": 0.1,
        "warmup_epochs": 0.5,
        "lambda_start": 0.0,
        "lambda_end": 1.0,
    },
    "infonce": {"name": "infonce", "learn_temperature": True},
}


def setup(loss: str, rows: slice):
    torch.manual_seed(0)
    cfg = RunConfig.model_validate(
        {
            # compact: no batch norm, whose statistics are per process on CPU (SyncBatchNorm
            # needs CUDA); the published variants are equal with it on GPUs
            "model": {
                "backbone": "ce",
                "variant": "compact",
                "embed_dim": 8,
                "hidden_dim": 16,
                "dropout": 0.0,
            },
            "loss": LOSSES[loss],
        }
    )
    model = build_model(cfg, SIG, "unused")
    objective = build_objective(LossConfig.model_validate(LOSSES[loss]), epochs=4)
    g = torch.Generator().manual_seed(1)
    audio_len = torch.tensor([4, 0, 2, 4, 1, 4, 0, 3])
    video = VideoBatch(
        {"rgb": torch.randn(B, 5, 12, generator=g), "audio": torch.randn(B, 4, 6, generator=g)},
        {"rgb": torch.full((B,), 5), "audio": audio_len},
    )
    text = TextBatch(sentence=torch.randn(B, 16, generator=g))
    static = {"text": torch.randn(B, 20, generator=g), "video:rgb": torch.randn(B, 12, generator=g)}
    video = VideoBatch(
        {k: v[rows] for k, v in video.features.items()},
        {k: v[rows] for k, v in video.lengths.items()},
    )
    text = TextBatch(sentence=text.sentence[rows])
    static = {k: v[rows] for k, v in static.items()}
    return model, objective, text, video, static


def grads(model, objective) -> dict[str, torch.Tensor]:
    named = [*model.named_parameters(), *(("obj." + n, p) for n, p in objective.named_parameters())]
    return {n: p.grad.clone() for n, p in named if p.grad is not None}


def worker(rank: int, loss: str, store: str, out: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    group = ProcessGroup(rank, WORLD)
    per = B // WORLD
    model, objective, text, video, static = setup(loss, slice(rank * per, (rank + 1) * per))
    net = DistributedDataParallel(model)
    result = global_batch_loss(net, objective, text, video, static, epoch=2.0, group=group)
    (result.total * backward_scale(group)).backward()
    unscale_objective_grads(objective, group)
    if rank == 0:
        torch.save({"loss": result.total.detach(), "grads": grads(model, objective)}, out)
    # Both ranks past their last collective before either tears gloo down: a rank that
    # left early made the other abort in teardown ("terminate called", SIGABRT) in CI.
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_two_processes_equal_one_process_with_the_whole_batch(loss: str, tmp_path: Path) -> None:
    model, objective, text, video, static = setup(loss, slice(0, B))
    single = global_batch_loss(
        model, objective, text, video, static, epoch=2.0, group=ProcessGroup()
    )
    single.total.backward()
    expected = grads(model, objective)

    store = tempfile.mktemp(dir=tmp_path)
    out = tmp_path / "rank0.pt"
    mp.spawn(worker, args=(loss, store, str(out)), nprocs=WORLD, join=True)
    got = torch.load(out)
    assert got["loss"].item() == pytest.approx(single.total.item(), rel=1e-5)
    assert set(got["grads"]) == set(expected)
    for name, g in expected.items():
        torch.testing.assert_close(got["grads"][name], g, rtol=1e-4, atol=1e-6, msg=name)
