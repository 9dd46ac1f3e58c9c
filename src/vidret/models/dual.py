"""Dual Encoding (Dong et al., CVPR 2019): the same multi-level encoder on both sides.

Level 1 is the mean of the input sequence, level 2 the mean of a bidirectional GRU's
states, level 3 max-pooled 1-D convolutions (kernels 2, 3, 4) over those states; the
levels are concatenated and projected into the joint space. On the video side each
expert is encoded this way and the results are concatenated; on the text side the
sequence is the caption's token features (a sentence vector is a sequence of one).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vidret.config import ModelConfig
from vidret.models.base import Backbone, ModelSignature
from vidret.models.layers import frame_mask, masked_max, masked_mean, normalize
from vidret.models.types import Embeddings, TextFeatures, VideoBatch

KERNELS = (2, 3, 4)


class MultiLevelEncoder(nn.Module):
    def __init__(self, dim_in: int, hidden: int, filters: int, dropout: float):
        super().__init__()
        self.gru = nn.GRU(dim_in, hidden, batch_first=True, bidirectional=True)
        self.convs = nn.ModuleList(
            nn.Conv1d(2 * hidden, filters, k, padding=k - 1) for k in KERNELS
        )
        self.dropout = nn.Dropout(dropout)
        self.dim_out = dim_in + 2 * hidden + filters * len(KERNELS)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        mask = frame_mask(lengths, x.shape[1])
        level1 = masked_mean(x, mask)
        packed = pack_padded_sequence(
            x, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False
        )
        states, _ = pad_packed_sequence(
            self.gru(packed)[0], batch_first=True, total_length=x.shape[1]
        )
        level2 = masked_mean(states, mask)
        level3 = []
        for conv in self.convs:
            c = torch.relu(conv(states.transpose(1, 2))).transpose(1, 2)  # [B, T + k - 1, f]
            conv_mask = frame_mask(lengths + conv.kernel_size[0] - 1, c.shape[1])
            level3.append(masked_max(c, conv_mask & (lengths > 0)[:, None]))
        out = torch.cat([level1, level2, *level3], dim=-1)
        return self.dropout(out) * (lengths > 0).to(out.dtype)[:, None]


class DualEncoding(Backbone):
    def __init__(self, cfg: ModelConfig, signature: ModelSignature):
        super().__init__(cfg, signature)
        hidden, filters = cfg.hidden_dim // 2, cfg.hidden_dim // 4
        self.video_levels = nn.ModuleDict(
            {
                e: MultiLevelEncoder(d, hidden, filters, cfg.dropout)
                for e, d in signature.experts.items()
            }
        )
        video_out = sum(m.dim_out for m in self.video_levels.values())
        self.video_fc = nn.Linear(video_out, cfg.embed_dim)
        self.text_levels = MultiLevelEncoder(signature.text_dim, hidden, filters, cfg.dropout)
        self.text_fc = nn.Linear(self.text_levels.dim_out, cfg.embed_dim)

    def encode_video(self, video: VideoBatch) -> Embeddings:
        parts = [
            self.video_levels[e](video.features[e], video.lengths[e]) for e in self.expert_names
        ]
        vec = normalize(self.video_fc(torch.cat(parts, -1)))[:, None]
        return Embeddings.joint(vec)

    def encode_text(self, text: TextFeatures) -> Embeddings:
        vec = normalize(self.text_fc(self.text_levels(text.tokens, text.mask.sum(1))))[:, None]
        return Embeddings.joint(vec)
