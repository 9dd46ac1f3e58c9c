"""Adversarial modality alignment: the gradient reversal, the wrapper's terms, that the
discriminator learns, and a training run with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from helpers import TINY
from vidret.cli import app
from vidret.config import LossConfig
from vidret.losses.adversarial import AdversarialAlignment, reverse_gradient
from vidret.losses.base import LossContext
from vidret.losses.infonce import InfoNCE
from vidret.losses.registry import build_objective
from vidret.models.types import Embeddings


def test_gradient_reversal_flips_and_scales_the_gradient() -> None:
    x = torch.randn(5, 3, requires_grad=True)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    torch.testing.assert_close(x.grad, -0.3 * torch.arange(3.0).expand(5, 3))


def embeddings(x: torch.Tensor, present: torch.Tensor | None = None) -> Embeddings:
    weights = torch.ones(x.shape[:2]) if present is None else present.float()
    return Embeddings(F.normalize(x, dim=-1), weights)


def test_wrapper_adds_the_discriminator_loss_and_reverses_it_into_the_encoders() -> None:
    torch.manual_seed(0)
    t = torch.randn(4, 2, 8, requires_grad=True)
    v = torch.randn(4, 2, 8, requires_grad=True)
    present = torch.tensor([[1, 1], [1, 0], [1, 1], [0, 1]])  # two missing video experts
    base = InfoNCE(0.1, learn_temperature=False)
    wrapped = AdversarialAlignment(base, weight=0.5, embed_dim=8)
    sims = torch.randn(4, 4)
    ctx = LossContext(epoch=1, text=embeddings(t), video=embeddings(v, present))
    out = wrapped(sims, ctx)
    # by hand: the discriminator on the 8 caption and the 6 present video vectors
    vectors = torch.cat([embeddings(t).vectors.flatten(0, 1),
                         embeddings(v).vectors.flatten(0, 1)[present.flatten() > 0]])  # fmt: skip
    labels = torch.cat([torch.ones(8), torch.zeros(6)])
    logits = wrapped.discriminator(vectors)[:, 0]
    expected = F.binary_cross_entropy_with_logits(logits, labels)
    base_total = base(sims, ctx).total
    torch.testing.assert_close(out.total, base_total + expected)
    assert out.terms["adv_accuracy"] == pytest.approx(
        ((logits > 0).float() == labels).float().mean().item()
    )
    # encoders get -0.5 x the discriminator loss's gradient; the discriminator +1 x
    out.total.backward()
    t_grad = t.grad.clone()
    t.grad = None
    for p in wrapped.discriminator.parameters():
        p.grad = None
    plain = F.binary_cross_entropy_with_logits(
        wrapped.discriminator(torch.cat([embeddings(t).vectors.flatten(0, 1),
                              embeddings(v).vectors.flatten(0, 1)[present.flatten() > 0]]))[:, 0],
        labels,
    )  # fmt: skip
    plain.backward()
    torch.testing.assert_close(t_grad, -0.5 * t.grad)  # InfoNCE here sees no t: sims fixed


def test_discriminator_learns_to_tell_unaligned_modalities_apart() -> None:
    torch.manual_seed(0)
    wrapped = AdversarialAlignment(InfoNCE(0.1), weight=1.0, embed_dim=16)
    optimizer = torch.optim.Adam(wrapped.discriminator.parameters(), lr=1e-2)
    shift = torch.zeros(16)
    shift[0] = 3.0
    for _ in range(150):  # frozen "encoders": captions and videos in different regions
        t = torch.randn(32, 1, 16) + shift
        v = torch.randn(32, 1, 16) - shift
        ctx = LossContext(text=embeddings(t), video=embeddings(v))
        out = wrapped(torch.randn(32, 32), ctx)
        optimizer.zero_grad()
        out.total.backward()
        optimizer.step()
    assert out.terms["adv_accuracy"] > 0.9


def test_config_wraps_any_objective() -> None:
    plain = build_objective(LossConfig(name="triplet"), epochs=4, embed_dim=32)
    assert not isinstance(plain, AdversarialAlignment)
    wrapped = build_objective(LossConfig(name="cmgsd", adversarial=0.1), epochs=4, embed_dim=32)
    assert isinstance(wrapped, AdversarialAlignment) and wrapped.needs_static
    with pytest.raises(ValueError, match="embed_dim"):
        build_objective(LossConfig(name="infonce", adversarial=0.1))


def test_training_logs_the_discriminator_accuracy(tmp_path: Path, demo_dir: Path) -> None:
    run = tmp_path / "run"
    args = ["train", "--data", str(demo_dir), "--out", str(run), "--quiet",
            "--config", "configs/meanpool-infonce.yaml"]  # fmt: skip
    for item in [*TINY, "train.epochs=2", "loss.adversarial=0.1"]:
        args += ["--set", item]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2
    assert all(0.0 <= r["train"]["adv_accuracy"] <= 1.0 for r in records)
    # the discriminator is saved with the objective, so --resume restores it
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert "discriminator.0.weight" in state["objective"]
