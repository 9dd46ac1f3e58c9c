"""CDNet, the cross-modal Context Denoising Network for moment retrieval (the seed text's
abstract: "query-guided semantic disentanglement" and "context-aware dynamic denoisement").

The abstract is all the seed gives; the choices made to build it:

* Inputs: one visual expert's frame features of a (long) video with each frame's time,
  the query's word tokens and its sentence vector (frozen Sentence-BERT). Frames first
  pass a temporal context encoder (residual 1-D convolutions) with a sinusoidal code of
  each frame's position (time / duration, so unevenly spaced frames are placed right).
* Query-guided semantic disentanglement (QSD): each frame's alignment level
  a_t = sigmoid(f(v_t * g, v_t * c_t) + w_g cos(v_t, g) + w_c cos(v_t, c_t)) from its
  global correlation with the sentence g and its fine-grained correlation with c_t, the
  words attended by the frame. The frame is split into a query-fused aligned part and a
  background part, recombined by a_t: h_t = a_t F(v_t, c_t, g) + (1 - a_t) B(v_t). The
  alignment levels are supervised ("inside the moment or not"), so they are the
  estimated alignment of the abstract.
* Context-aware dynamic denoising (CDD): each frame gathers context from `offsets`
  places t + d_k, the offsets d_k and their weights predicted from the frame and the
  sentence (query-relevant offsets), sampled by linear interpolation between frames
  (a 1-D deformable attention); noise off the query's content is not attended.
* Heads: start and end logits per frame; a span is (start edge of frame i, end edge of
  frame j), j >= i, scored p_start(i) p_end(j). The losses are in
  `vidret.losses.moment`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidret.config.moments import CDNetConfig

POSITION_FREQUENCIES = 8


@dataclass
class MomentBatch:
    """Padded inputs of B (video, query) pairs."""

    frames: torch.Tensor  # [B, T, video_dim]
    frame_mask: torch.Tensor  # bool [B, T]
    position: torch.Tensor  # [B, T] each frame's time / the video's duration, in [0, 1]
    tokens: torch.Tensor  # [B, L, text_dim] word tokens of the query
    token_mask: torch.Tensor  # bool [B, L]
    sentence: torch.Tensor  # [B, text_dim]

    def to(self, device: torch.device | str) -> MomentBatch:
        return MomentBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


@dataclass
class MomentScores:
    start: torch.Tensor  # [B, T] logits; padded frames -inf-like
    end: torch.Tensor  # [B, T]
    alignment: torch.Tensor  # [B, T] QSD's alignment logits


NEG = -1e4  # a padded frame's logit: exp underflows to 0 without inf arithmetic


class CDNet(nn.Module):
    def __init__(self, cfg: CDNetConfig, video_dim: int, text_dim: int):
        super().__init__()
        h = cfg.hidden_dim
        self.video_in = nn.Sequential(nn.Linear(video_dim, h), nn.LayerNorm(h))
        self.position_in = nn.Linear(2 * POSITION_FREQUENCIES, h)
        self.context = nn.ModuleList(
            TemporalConv(h, cfg.dropout) for _ in range(cfg.context_layers)
        )
        self.words_in = nn.Sequential(nn.Linear(text_dim, h), nn.LayerNorm(h))
        self.sentence_in = nn.Sequential(nn.Linear(text_dim, h), nn.LayerNorm(h))
        self.disentangle = SemanticDisentanglement(h, cfg.dropout)
        self.denoise = nn.ModuleList(
            DynamicDenoising(h, cfg.offsets, cfg.max_offset, cfg.dropout)
            for _ in range(cfg.denoise_layers)
        )
        self.start_head = _head(2 * h, h, cfg.dropout)
        self.end_head = _head(2 * h, h, cfg.dropout)

    def forward(self, batch: MomentBatch) -> MomentScores:
        mask = batch.frame_mask
        v = self.video_in(batch.frames.float()) + self.position_in(_position_code(batch.position))
        for layer in self.context:
            v = layer(v, mask)
        words = self.words_in(batch.tokens.float())
        g = self.sentence_in(batch.sentence.float())
        h, alignment = self.disentangle(v, words, batch.token_mask, g)
        lengths = mask.sum(1).clamp_min(1)
        for layer in self.denoise:
            h = layer(h, g, mask, lengths)
        joint = torch.cat([h, h * g[:, None]], dim=-1)
        start = self.start_head(joint).squeeze(-1).masked_fill(~mask, NEG)
        end = self.end_head(joint).squeeze(-1).masked_fill(~mask, NEG)
        return MomentScores(start, end, alignment.masked_fill(~mask, NEG))


class TemporalConv(nn.Module):
    """A residual 1-D convolution over frames (kernel 3); padding frames stay zero."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, padding=1)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x * mask[..., None]
        y = self.conv(x.transpose(1, 2)).transpose(1, 2)
        return self.norm(x + self.drop(F.gelu(y))) * mask[..., None]


class SemanticDisentanglement(nn.Module):
    """QSD: alignment levels from global and fine-grained correlation; aligned and
    background parts of each frame recombined by them."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.scale = dim**-0.5
        self.level = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, 1))
        self.correlation_weights = nn.Parameter(torch.tensor([1.0, 1.0]))
        self.aligned = nn.Sequential(nn.Linear(4 * dim, dim), nn.GELU(), nn.Dropout(dropout))
        self.background = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, v: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor, g: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        attention = torch.einsum("bth,blh->btl", v, words) * self.scale
        attention = attention.masked_fill(~word_mask[:, None, :], float("-inf")).softmax(-1)
        c = torch.einsum("btl,blh->bth", attention, words)  # the words each frame attends
        g = g[:, None].expand_as(v)
        correlations = torch.stack(
            [F.cosine_similarity(v, g, dim=-1), F.cosine_similarity(v, c, dim=-1)], dim=-1
        )
        logits = self.level(torch.cat([v * g, v * c], dim=-1)).squeeze(-1)
        logits = logits + correlations @ self.correlation_weights
        a = torch.sigmoid(logits)[..., None]
        fused = self.aligned(torch.cat([v, c, v * g, v * c], dim=-1))
        return self.norm(a * fused + (1 - a) * self.background(v)), logits


class DynamicDenoising(nn.Module):
    """CDD: each frame attends `offsets` query-relevant places around it (1-D deformable
    attention with linear interpolation between frames)."""

    def __init__(self, dim: int, offsets: int, max_offset: float, dropout: float):
        super().__init__()
        self.max_offset = max_offset
        self.offset = nn.Linear(2 * dim, offsets)
        self.weight = nn.Linear(2 * dim, offsets)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        # start from fixed offsets spread over half the reach, as deformable attention does
        nn.init.zeros_(self.offset.weight)
        with torch.no_grad():
            self.offset.bias.copy_(torch.atanh(torch.linspace(-0.5, 0.5, offsets)))

    def forward(
        self, h: torch.Tensor, g: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        query = torch.cat([h, g[:, None].expand_as(h)], dim=-1)
        delta = torch.tanh(self.offset(query)) * self.max_offset  # [B, T, K] frames
        weights = self.weight(query).softmax(-1)
        here = torch.arange(h.shape[1], device=h.device, dtype=h.dtype)[None, :, None]
        sampled = sample_frames(self.value(h), here + delta, lengths)  # [B, T, K, H]
        context = (weights[..., None] * sampled).sum(2)
        h = self.norm(h + self.drop(self.out(context)))
        h = self.norm2(h + self.drop(self.ffn(h)))
        return h * mask[..., None]


def sample_frames(x: torch.Tensor, where: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`x` [B, T, H] read at fractional frame positions `where` [B, T, K] by linear
    interpolation, positions clamped into each video's valid frames: [B, T, K, H]."""
    b, t, k = where.shape
    last = (lengths - 1).to(where.dtype)[:, None, None]
    where = torch.minimum(where.clamp_min(0), last)
    low = where.floor()
    frac = (where - low)[..., None]
    low = low.long()
    high = torch.minimum(low + 1, last.long())

    def take(i: torch.Tensor) -> torch.Tensor:
        index = i.reshape(b, t * k, 1).expand(-1, -1, x.shape[-1])
        return torch.gather(x, 1, index).reshape(b, t, k, x.shape[-1])

    return take(low) * (1 - frac) + take(high) * frac


def _position_code(position: torch.Tensor) -> torch.Tensor:
    scales = (2.0 ** torch.arange(POSITION_FREQUENCIES, device=position.device)) * math.pi
    angles = position[..., None].float() * scales
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def _head(dim_in: int, hidden: int, dropout: float) -> nn.Module:
    return nn.Sequential(
        nn.Linear(dim_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
    )
