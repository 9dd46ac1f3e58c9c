"""Adaptive margins from a supervision expert (METHOD.md section 2, paper eqs. 19-26).

An expert maps each item of the batch to a vector; its distances
`D[i, j] = 1 - cos(E(x_i), E(x_j))` are rescaled over the B*(B-1) off-diagonal pairs to

    M = (D - mean) / std * sigma + alpha,    sigma = beta / z_0.95

so that margins are normal around the hard margin alpha with 90% of them in
alpha +- beta. A pair the expert finds close (a likely false negative) gets a small
margin, a pair it finds far apart a large one. Margins are targets: no gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

Z_95 = 1.6448536269514722  # the standard normal's 95% quantile: 90% lie within +-Z_95


@torch.no_grad()
def cosine_distances(
    vectors: Tensor, present: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """`D [B, B]`, and a mask of the pairs it is defined for (None: all of them).

    `vectors` is `[B, d]`, or `[B, E, d]` for several experts of one kind (a multi-expert
    model's per-expert embeddings): then D is 1 minus the *unweighted* mean, over the
    experts both items have, of the per-expert cosine. `present [B, E]` marks which
    experts each item has (a missing expert says nothing about distance); without it,
    an all-zero vector counts as missing.
    """
    if vectors.dim() == 2:
        vectors = vectors[:, None]
    norms = vectors.float().norm(dim=-1, keepdim=True)
    v = vectors.float() / norms.clamp_min(1e-8)
    if present is None:
        present = norms[..., 0] > 0
    if bool(present.all()):
        if v.shape[1] == 1:  # one expert, nothing missing: a plain matrix product
            return 1.0 - v[:, 0] @ v[:, 0].T, None
        return 1.0 - torch.einsum("ied,jed->ij", v, v) / v.shape[1], None
    p = present.float()
    cos = torch.einsum("ied,jed->ije", v * p[..., None], v)
    shared = p @ p.T
    D = 1.0 - (cos * p[None, :, :]).sum(-1) / shared.clamp_min(1.0)
    return D, shared > 0


@torch.no_grad()
def rescale_margins(D: Tensor, alpha: float, beta: float, valid: Tensor | None = None) -> Tensor:
    """The rescale function F: margins with mean alpha and 90% within alpha +- beta.

    `D` is `[B, B]` or a stack `[K, B, B]` (each matrix rescaled on its own). Statistics use
    the off-diagonal pairs marked `valid`; other pairs, and every pair of a matrix whose
    distances do not vary (identical items, B = 2), get exactly alpha.
    """
    B = D.shape[-1]
    mask = ~torch.eye(B, dtype=torch.bool, device=D.device)
    if valid is not None:
        mask = mask & valid
    w = mask.to(D.dtype)
    dims = (-2, -1)
    n = w.sum(dims, keepdim=True).clamp_min(1.0)
    mean = (D * w).sum(dims, keepdim=True) / n
    std = (((D - mean) ** 2) * w).sum(dims, keepdim=True).div(n).sqrt()
    spread = (n >= 2) & (std > 1e-6)
    scale = torch.where(spread, (beta / Z_95) / std.clamp_min(1e-6), torch.zeros_like(std))
    M = (D - mean) * scale + alpha
    return torch.where(mask, M, torch.full_like(M, alpha))
