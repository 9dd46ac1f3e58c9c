"""Small building blocks shared by the backbones."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def frame_mask(lengths: Tensor, frames: int) -> Tensor:
    """[B, frames] bool: True for the valid frames of each video."""
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over valid steps of [B, T, D]; zeros where nothing is valid."""
    m = mask.to(x.dtype)[..., None]
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def masked_max(x: Tensor, mask: Tensor) -> Tensor:
    """Max over valid steps of [B, T, D]; zeros where nothing is valid."""
    filled = x.masked_fill(~mask[..., None], float("-inf")).amax(1)
    return torch.where(mask.any(1, keepdim=True), filled, torch.zeros_like(filled))


def mlp(dim_in: int, hidden: int, dim_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim_out)
    )


class ContextGating(nn.Module):
    """x * sigmoid(W x): lets one part of a vector switch others on or off (Miech et al.);
    with `batch_norm`, x * sigmoid(BN(W x)) as MMT's and CE's ContextGating."""

    def __init__(self, dim: int, batch_norm: bool = False):
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.norm = nn.BatchNorm1d(dim) if batch_norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.norm(self.fc(x)))


class GatedEmbeddingUnit(nn.Module):
    """Linear projection then context gating: the embedding head of CE and MMT."""

    def __init__(self, dim_in: int, dim_out: int, dropout: float = 0.0, batch_norm: bool = False):
        super().__init__()
        self.fc = nn.Linear(dim_in, dim_out)
        self.gate = ContextGating(dim_out, batch_norm)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.gate(self.fc(self.dropout(x)))


class NetVLAD(nn.Module):
    """NetVLAD pooling of a set of features (as in the CE and MMT code): soft assignment to
    learned clusters (batch-normalised scores, softmax), residuals to each cluster's
    centre, intra-normalised per cluster, flattened and L2-normalised. Padding (`mask`
    False) is left out of the assignment."""

    def __init__(self, feature_size: int, clusters: int):
        super().__init__()
        scale = 1 / math.sqrt(feature_size)
        self.clusters = nn.Parameter(scale * torch.randn(feature_size, clusters))
        self.centres = nn.Parameter(scale * torch.randn(1, feature_size, clusters))
        self.norm = nn.BatchNorm1d(clusters)
        self.out_dim = feature_size * clusters

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B, N, D = x.shape
        scores = self.norm(x.reshape(B * N, D) @ self.clusters).reshape(B, N, -1)
        assignment = torch.softmax(scores, dim=-1) * mask[..., None].to(x.dtype)  # [B, N, K]
        residual = assignment.transpose(1, 2) @ x  # [B, K, D]
        vlad = residual.transpose(1, 2) - assignment.sum(1, keepdim=True) * self.centres
        vlad = F.normalize(vlad, dim=1)  # per cluster
        return F.normalize(vlad.reshape(B, -1), dim=-1)


def even_frames(lengths: Tensor, frames: int, max_frames: int) -> tuple[Tensor, Tensor]:
    """`[B, K]` indices of at most `max_frames` evenly spaced valid frames per video (K =
    min(frames, max_frames)), and which of them are real (False: padding)."""
    K = min(frames, max_frames)
    take = lengths.clamp(max=K)  # frames kept per video
    k = torch.arange(K, device=lengths.device)[None, :]
    # Frame k of the kept ones sits at floor(k * length / kept): evenly over the valid span.
    index = (k * lengths[:, None]) // take.clamp_min(1)[:, None]
    return index.clamp(max=frames - 1), k < take[:, None]


def gather_frames(x: Tensor, index: Tensor) -> Tensor:
    """`x[b, index[b, k], ...]`: the chosen frames of `[B, frames, ...]`."""
    shape = (*index.shape, *x.shape[2:])
    flat = index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand(shape)
    return torch.gather(x, 1, flat)


def normalize(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1, eps=1e-6)
