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
def cosine_distances(vectors: Tensor, present: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """`D [B, B]` and a mask of the pairs it is defined for.

    `vectors` is `[B, d]`, or `[B, E, d]` for several experts of one kind (a multi-expert
    model's per-expert embeddings): then D is 1 minus the *unweighted* mean, over the
    experts both items have, of the per-expert cosine. `present [B, E]` marks which
    experts each item has (a missing expert says nothing about distance).
    """
    if vectors.dim() == 2:
        vectors = vectors[:, None]
    v = torch.nn.functional.normalize(vectors.float(), dim=-1, eps=1e-8)
    if present is None:
        present = v.norm(dim=-1) > 0  # an all-zero vector is a missing one
    present = present.float()
    cos = torch.einsum("ied,jed->ije", v, v)
    both = present[:, None, :] * present[None, :, :]
    shared = both.sum(-1)
    D = 1.0 - (cos * both).sum(-1) / shared.clamp_min(1.0)
    return D, shared > 0


@torch.no_grad()
def rescale_margins(D: Tensor, alpha: float, beta: float, valid: Tensor | None = None) -> Tensor:
    """The rescale function F: margins with mean alpha and 90% within alpha +- beta.

    Statistics use the off-diagonal pairs marked `valid`; other pairs (and every pair when
    the distances do not vary, e.g. identical items) get exactly alpha.
    """
    B = D.shape[0]
    off = ~torch.eye(B, dtype=torch.bool, device=D.device)
    mask = off if valid is None else off & valid
    M = torch.full_like(D, alpha)
    if mask.sum() < 2:
        return M
    values = D[mask].double()
    mean, std = values.mean(), values.std(unbiased=False)
    if std <= 1e-12:
        return M
    sigma = beta / Z_95
    M[mask] = ((values - mean) / std * sigma + alpha).to(D.dtype)
    return M
