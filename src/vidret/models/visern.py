"""ViSERN (Feng et al., IJCAI 2020): reasoning between frame regions.

The seed gives the abstract only; what it fixes is built as said, the rest is our choice:

- Regions of a frame are the vertices of a **fully connected semantic correlation graph**:
  edge (i, j) scores the projected features, `phi(r_i) . psi(r_j) / sqrt(d)` (as VSRN,
  the image model ViSERN extends). Padding and masked regions get no edges.
- **Random-walk-rule graph convolution**: the affinities become a random walk's transition
  matrix, P = D^-1 A with A = exp(score) (a row softmax), and each layer takes one step of
  a walk with restart, `h' = LayerNorm((1 - a) GELU(P h W) + a h0)` with `a` =
  `model.restart`: a region gathers what its semantically close regions say, while the
  restart keeps its own content (the abstract's "redundancy suppressed"). `model.layers`
  steps.
- Regions are **aggregated to a frame** by attention (a learned score per region,
  softmax over the frame's real regions); frames to the **video** by a bidirectional GRU,
  masked mean and max of its states, projected into the joint space. Experts are
  reasoned over separately and their video vectors concatenated before the projection.
- The caption side is an MLP over the caption encoder's pooled vector.

Without region features (msrvtt-1k) each frame is one region: the graph is a single
vertex and the model is a GRU over frames (vidret.models.regions).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vidret.config import ModelConfig
from vidret.models.base import Backbone, ModelSignature
from vidret.models.layers import masked_max, masked_mean, mlp, normalize
from vidret.models.regions import frame_regions, region_dims
from vidret.models.types import Embeddings, TextFeatures, VideoBatch


class RandomWalkGraphConvolution(nn.Module):
    """One step of a random walk with restart over a frame's region graph."""

    def __init__(self, dim: int, restart: float):
        super().__init__()
        self.phi, self.psi = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.weight = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.restart = restart

    def forward(self, h: Tensor, h0: Tensor, mask: Tensor) -> Tensor:
        """`h`, `h0`: [..., R, d]; `mask`: [..., R] real regions."""
        scores = self.phi(h) @ self.psi(h).transpose(-1, -2) / math.sqrt(h.shape[-1])
        scores = scores.masked_fill(~mask[..., None, :], float("-inf"))
        # A row with no real region (a padding frame) would be all -inf: give it zeros.
        transition = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        walked = nn.functional.gelu(transition @ self.weight(h))
        out = self.norm((1 - self.restart) * walked + self.restart * h0)
        return out * mask[..., None].to(out.dtype)


class RegionReasoning(nn.Module):
    """Regions of each frame -> reasoned region features -> one vector per frame."""

    def __init__(self, dim_in: int, dim: int, layers: int, restart: float):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(dim_in, dim), nn.LayerNorm(dim))
        self.steps = nn.ModuleList(RandomWalkGraphConvolution(dim, restart) for _ in range(layers))
        self.score = nn.Linear(dim, 1)

    def forward(self, regions: Tensor, mask: Tensor) -> Tensor:
        """[B, K, R, D], [B, K, R] -> [B, K, d] (zeros for a frame without regions)."""
        h0 = self.project(regions) * mask[..., None].to(regions.dtype)
        h = h0
        for step in self.steps:
            h = step(h, h0, mask)
        attention = self.score(h)[..., 0].masked_fill(~mask, float("-inf"))
        attention = torch.softmax(attention, dim=-1).nan_to_num(0.0)
        return (attention[..., None] * h).sum(-2)


class ViSERN(Backbone):
    reads_regions = True

    def __init__(self, cfg: ModelConfig, signature: ModelSignature):
        super().__init__(cfg, signature)
        d = cfg.hidden_dim
        dims = region_dims(signature, "visern")
        self.reasoning = nn.ModuleDict(
            {e: RegionReasoning(dims[e], d, cfg.layers, cfg.restart) for e in self.expert_names}
        )
        self.gru = nn.ModuleDict(
            {e: nn.GRU(d, d // 2, batch_first=True, bidirectional=True) for e in self.expert_names}
        )
        # per expert: mean and max of the GRU states, and a presence flag
        self.video_mlp = mlp(len(dims) * (2 * d + 1), d, cfg.embed_dim, cfg.dropout)
        self.text_mlp = mlp(signature.text_dim, d, cfg.embed_dim, cfg.dropout)

    def encode_video(self, video: VideoBatch) -> Embeddings:
        parts = []
        for name in self.expert_names:
            regions = frame_regions(video, name, self.signature, self.cfg.max_frames)
            frames = self.reasoning[name](regions.features, regions.mask)  # [B, K, d]
            lengths = regions.frames.sum(1)
            packed = pack_padded_sequence(
                frames, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False
            )
            states, _ = pad_packed_sequence(
                self.gru[name](packed)[0], batch_first=True, total_length=frames.shape[1]
            )
            present = (lengths > 0).to(frames.dtype)[:, None]
            valid = regions.frames
            parts += [masked_mean(states, valid), masked_max(states, valid), present]
        vec = normalize(self.video_mlp(torch.cat(parts, dim=-1)))[:, None]
        return Embeddings.joint(vec)

    def encode_text(self, text: TextFeatures) -> Embeddings:
        vec = normalize(self.text_mlp(text.pooled))[:, None]
        return Embeddings.joint(vec)
