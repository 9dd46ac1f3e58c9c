"""AME-Net (adversarial multi-grained embedding network): a coarse global video feature and
fine-grained local relation features over regions, both matched to the caption, trained
with an adversarial modality discriminator.

The seed text is the abstract and the reference list (it cites relation networks and
gradient-reversal domain adaptation); what it fixes is built as said, the rest is our
choice:

- **Coarse global** feature: per expert, masked mean and max of its frames, concatenated
  over experts and embedded (an MLP and a gated embedding unit).
- **Fine-grained local relations**: a relation network over pairs of regions, both
  **within a frame** (every ordered pair i != j of its real regions) and **across
  frames** (every region of frame t with every region of frame t + 1: the interactions
  that unfold in time; adjacent frames only, which bounds the cost to 2 R^2 pairs a
  frame). A pair's feature is `g(r_i, r_j) = W2 ReLU(A r_i + B r_j + c)` (the first layer
  of an MLP over [r_i; r_j], split so no pair tensor of width 2d is built); a frame's
  relation feature is the mean over its pairs, the video's the masked mean and max over
  frames, embedded like the global one.
- **Matching**: the two are two embedding experts (E = 2, global and local); the caption
  predicts one embedding for each and their mixture weights (as MoEE/MMT), so the
  similarity is the caption-weighted mean of the two cosines.
- **Adversarial learning**: the discriminator of `vidret.losses.adversarial` (one
  implementation for every backbone), on by default in the amenet configs
  (`loss.adversarial`), sees both granularities of both modalities.

Without region features (msrvtt-1k) each frame is one region: no pair lies within a
frame, and the local feature is made of relations between consecutive frames.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidret.config import ModelConfig
from vidret.models.base import Backbone, MixtureTextHead, ModelSignature
from vidret.models.layers import GatedEmbeddingUnit, masked_max, masked_mean, mlp, normalize
from vidret.models.regions import frame_regions, region_dims
from vidret.models.types import Embeddings, TextFeatures, VideoBatch

GRAINS = ("global", "local")


class PairRelations(nn.Module):
    """Mean relation feature of each frame over region pairs within it and with the next."""

    def __init__(self, dim_in: int, dim: int):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(dim_in, dim), nn.LayerNorm(dim))
        self.left, self.right = nn.Linear(dim, dim), nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, regions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """[B, K, R, D], [B, K, R] -> [B, K, d] relation features and [B, K] frames with pairs."""
        h = self.project(regions)
        a, b = self.left(h), self.right(h)  # [B, K, R, d]
        R = h.shape[2]
        # within frame t: (i, j), i != j
        within = torch.relu(a[:, :, :, None] + b[:, :, None, :])  # [B, K, R, R, d]
        within_mask = mask[:, :, :, None] & mask[:, :, None, :]
        within_mask = within_mask & ~torch.eye(R, dtype=torch.bool, device=h.device)
        # across frames: (i of t, j of t + 1); the last frame has no next one
        nxt_b = torch.cat([b[:, 1:], torch.zeros_like(b[:, :1])], dim=1)
        nxt_mask = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], dim=1)
        across = torch.relu(a[:, :, :, None] + nxt_b[:, :, None, :])
        across_mask = mask[:, :, :, None] & nxt_mask[:, :, None, :]
        pairs = torch.cat([within.flatten(2, 3), across.flatten(2, 3)], dim=2)  # [B, K, P, d]
        pair_mask = torch.cat([within_mask.flatten(2), across_mask.flatten(2)], dim=2)
        w = pair_mask.to(h.dtype)[..., None]
        mean = (pairs * w).sum(2) / w.sum(2).clamp_min(1.0)
        return self.out(mean), pair_mask.any(-1)


class AMENet(Backbone):
    reads_regions = True

    def __init__(self, cfg: ModelConfig, signature: ModelSignature):
        super().__init__(cfg, signature)
        d = cfg.hidden_dim
        dims = region_dims(signature, "amenet")
        frame_in = sum(2 * dim + 1 for dim in signature.experts.values())
        self.global_mlp = mlp(frame_in, d, d, cfg.dropout)
        self.relations = nn.ModuleDict({e: PairRelations(dims[e], d) for e in self.expert_names})
        self.local_mlp = mlp(len(dims) * (2 * d + 1), d, d, cfg.dropout)
        self.embed = nn.ModuleDict(
            {g: GatedEmbeddingUnit(d, cfg.embed_dim, cfg.dropout) for g in GRAINS}
        )
        self.text_head = MixtureTextHead(
            signature.text_dim, list(GRAINS), cfg.embed_dim, cfg.dropout
        )

    def encode_video(self, video: VideoBatch) -> Embeddings:
        coarse, fine = [], []
        for name in self.expert_names:
            regions = frame_regions(video, name, self.signature, self.cfg.max_frames)
            x, valid = regions.frame_features, regions.frames
            present = valid.any(1).to(x.dtype)[:, None]
            coarse += [masked_mean(x, valid), masked_max(x, valid), present]
            relation, has_pairs = self.relations[name](regions.features, regions.mask)
            fine += [masked_mean(relation, has_pairs), masked_max(relation, has_pairs), present]
        vectors = torch.stack(
            [
                normalize(self.embed["global"](self.global_mlp(torch.cat(coarse, -1)))),
                normalize(self.embed["local"](self.local_mlp(torch.cat(fine, -1)))),
            ],
            dim=1,
        )
        return Embeddings(vectors, torch.ones(vectors.shape[:2], device=vectors.device))

    def encode_text(self, text: TextFeatures) -> Embeddings:
        return self.text_head(text)
