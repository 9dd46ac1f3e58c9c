"""CMGSD's dynamic text expert: the model's caption embeddings (default) or the caption
encoder's output before the backbone's heads (`loss.dynamic_text: encoder`, the paper's
choice for MMT: its caption [CLS] output)."""

from __future__ import annotations

import torch

from vidret.config import load_config
from vidret.losses.base import LossContext, LossOutput
from vidret.models.base import ModelSignature
from vidret.models.retrieval import build_model
from vidret.models.types import TextBatch, VideoBatch
from vidret.train.distributed import ProcessGroup
from vidret.train.step import global_batch_loss


class Spy(torch.nn.Module):
    def forward(self, sims: torch.Tensor, ctx: LossContext) -> LossOutput:
        self.ctx = ctx
        return LossOutput(sims.sum(), {"loss": 0.0})


def test_dynamic_text_expert_is_a_choice() -> None:
    cfg = load_config(None, ["model.backbone=mmt", "model.hidden_dim=16", "model.embed_dim=16",
                             "model.heads=2", "model.layers=1", "text.encoder=tokens"])  # fmt: skip
    signature = ModelSignature(experts={"rgb": 6}, frames={"rgb": 3}, text_dim=8)
    torch.manual_seed(0)
    model = build_model(cfg, signature, "unused").eval()  # no dropout: two passes agree
    text = TextBatch(torch.randn(4, 8), torch.randn(4, 5, 8), torch.tensor([5, 3, 4, 2]))
    video = VideoBatch({"rgb": torch.randn(4, 3, 6)}, {"rgb": torch.tensor([3, 3, 2, 1])})
    group = ProcessGroup(rank=0, world_size=1, device=torch.device("cpu"))
    spy = Spy()
    global_batch_loss(model, spy, text, video, {}, 0.0, group)
    assert torch.equal(spy.ctx.text.vectors, model.embed_text(text).vectors)
    global_batch_loss(model, spy, text, video, {}, 0.0, group, dynamic_text="encoder")
    encoder_out = model.text_encoder(text).pooled
    assert spy.ctx.text.vectors.shape == (4, 1, encoder_out.shape[1])
    torch.testing.assert_close(spy.ctx.text.vectors[:, 0], encoder_out)
