"""ProTA (probabilistic token aggregation): frame tokens and word tokens aggregated into a
few shared "partial" slots, each slot a Gaussian, matched slot by slot.

The seed gives the abstract only; what it fixes is built as said, the rest is our choice:

- **Tokens**: the video's frames (every expert, at most `model.max_frames` each, with
  expert and temporal embeddings, then `model.layers` transformer layers) and the
  caption's word tokens (`text.encoder: tokens`; a sentence vector is one token).
- **Dual partial-related aggregation**, in a low-dimensional space (`model.low_dim`,
  default a quarter of `embed_dim`) and a high-dimensional one (`model.embed_dim`):
  `model.slots` learned slot queries per space,
  **shared by the two modalities** so slot k means the same thing on both sides, plus one
  null slot. Each token is *disentangled* among the slots (softmax over slots: the token's
  parts go where they belong, and what no slot wants goes to the null slot and is
  dropped), then each slot is *re-aggregated* as the assignment-weighted mean of its
  tokens. A slot's mass (the share of tokens' assignment it received) is its weight in
  the similarity, on both sides: a slot the caption does not speak of drops out, which is
  how a caption that describes part of a video is not punished for the rest (the
  "content asymmetry" of the abstract).
- **Token-based probabilistic alignment**: each slot is a Gaussian N(mu, diag sigma^2) (two
  linear heads). The similarity of a caption and a video is the expected cosine between
  their slot distributions, slot by slot, weighted by the slots' masses. In training it is
  estimated by `model.samples` reparameterized samples per slot (sample s of one side
  meets sample s of the other: an unbiased estimate for independent draws); at test time
  and in an index it is the cosine of the means (sigma -> 0), which keeps search exact
  nearest-neighbour. The variances start small (log-variance -4): at unit variance the
  sampled cosines are mostly noise and training crawls (msrvtt-1k test Rsum 107 against
  173 with InfoNCE, BENCHMARKS.md). The low-space vectors are zero-padded to `embed_dim`,
  which leaves their cosines unchanged, so all 2 x slots share one `Embeddings` tensor.
- The **adaptive contrastive loss** is `vidret.losses.prota` (`loss.name: prota`); it
  reads each item's mean variance and KL that this backbone reports in training.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vidret.config import ModelConfig
from vidret.models.base import Backbone, ModelSignature
from vidret.models.layers import normalize
from vidret.models.mmt import sample_frames
from vidret.models.types import Embeddings, TextFeatures, VideoBatch

_LOG_VAR_RANGE = (-10.0, 4.0)  # keeps exp() finite early in training
_INITIAL_LOG_VAR = -4.0


class SlotAggregation(nn.Module):
    """Tokens -> `slots` Gaussian slots in one space (the queries are shared across modalities)."""

    def __init__(self, dim_in: int, dim: int, queries: nn.Parameter):
        super().__init__()
        self.queries = queries  # [slots + 1, dim]; the last one is the null slot
        self.key, self.value = nn.Linear(dim_in, dim), nn.Linear(dim_in, dim)
        self.mu, self.log_var = nn.Linear(dim, dim), nn.Linear(dim, dim)
        # Start nearly deterministic (see the module docstring): sigma ~ 0.14 for every
        # token, against means of ~0.3 a coordinate; the default init gives sigma ~ 1.
        nn.init.constant_(self.log_var.bias, _INITIAL_LOG_VAR)
        with torch.no_grad():
            self.log_var.weight.mul_(0.1)

    def forward(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """[B, T, D], [B, T] -> means and log-variances [B, S, dim], masses [B, S]."""
        scores = self.key(tokens) @ self.queries.T / math.sqrt(self.queries.shape[1])
        assignment = torch.softmax(scores, dim=-1) * mask[..., None].to(tokens.dtype)  # [B,T,S+1]
        assignment = assignment[..., :-1]  # the null slot's share is dropped
        received = assignment.sum(1)  # [B, S]
        slots = (
            assignment.transpose(1, 2) @ self.value(tokens) / received[..., None].clamp_min(1e-6)
        )
        mass = received / mask.sum(1, keepdim=True).clamp_min(1).to(tokens.dtype)
        log_var = self.log_var(slots).clamp(*_LOG_VAR_RANGE)
        return self.mu(slots), log_var, mass


class ProTA(Backbone):
    def __init__(self, cfg: ModelConfig, signature: ModelSignature):
        super().__init__(cfg, signature)
        d = cfg.hidden_dim  # divisible by cfg.heads: the config checks it
        self.project = nn.ModuleDict({e: nn.Linear(dim, d) for e, dim in signature.experts.items()})
        self.expert_type = nn.Embedding(len(signature.experts), d)
        self.temporal = nn.Embedding(cfg.max_frames, d)
        layer = nn.TransformerEncoderLayer(
            d, cfg.heads, 2 * d, cfg.dropout, batch_first=True, norm_first=True
        )
        self.video_context = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.word_project = nn.Linear(signature.text_dim, d)
        self.spaces = nn.ModuleDict()
        for space, width in (("low", cfg.low_width), ("high", cfg.embed_dim)):
            queries = nn.Parameter(torch.randn(cfg.slots + 1, width) / math.sqrt(width))
            self.register_parameter(f"{space}_queries", queries)
            self.spaces[f"{space}_video"] = SlotAggregation(d, width, queries)
            self.spaces[f"{space}_text"] = SlotAggregation(d, width, queries)

    def encode_video(self, video: VideoBatch) -> Embeddings:
        tokens, valid = [], []
        for k, name in enumerate(self.expert_names):
            frames, ok = sample_frames(
                video.features[name], video.lengths[name], self.cfg.max_frames
            )
            x = self.project[name](frames)
            x = x + self.temporal.weight[: x.shape[1]] + self.expert_type.weight[k]
            tokens.append(x)
            valid.append(ok)
        x, mask = torch.cat(tokens, 1), torch.cat(valid, 1)
        # A video with no valid frame at all keeps one (zero) token so attention has a key.
        first = torch.arange(mask.shape[1], device=mask.device) == 0
        keep = mask | (~mask.any(1, keepdim=True) & first)
        x = self.video_context(x, src_key_padding_mask=~keep)
        return self._distribution(x, mask, "video")

    def encode_text(self, text: TextFeatures) -> Embeddings:
        return self._distribution(self.word_project(text.tokens), text.mask, "text")

    def _distribution(self, tokens: Tensor, mask: Tensor, side: str) -> Embeddings:
        means, weights, uncertainty, kl = [], [], [], []
        samples = self.cfg.samples if self.training else 0
        for space in ("low", "high"):
            mu, log_var, mass = self.spaces[f"{space}_{side}"](tokens, mask)
            var = log_var.exp()
            uncertainty.append(var.mean(-1))
            kl.append(0.5 * (mu.pow(2) + var - 1 - log_var).sum(-1))
            if samples:  # [B, S, samples, dim]: reparameterized draws
                noise = torch.randn(*mu.shape[:2], samples, mu.shape[-1], device=mu.device)
                mu = mu[:, :, None] + (0.5 * log_var).exp()[:, :, None] * noise
                mass = mass[:, :, None].expand(-1, -1, samples)
            vectors = normalize(mu)
            pad = self.cfg.embed_dim - vectors.shape[-1]
            means.append(nn.functional.pad(vectors, (0, pad)).flatten(1, -2))
            weights.append(mass.flatten(1))
        out = Embeddings(torch.cat(means, 1), torch.cat(weights, 1).clamp_min(1e-6))
        if self.training:
            out.uncertainty = torch.cat(uncertainty, 1).mean(1)
            out.kl = torch.cat(kl, 1).mean(1)
        return out
