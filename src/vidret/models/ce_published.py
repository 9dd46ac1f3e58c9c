"""Collaborative Experts as albanie/collaborative-experts builds it (`model/model.py`
`CENet` + `CEModule` with the published settings: `use_ce: pairwise`, `include_self: 1`,
`use_mish: 1`, `use_bn_reason: 1`, `num_g_layers: 3`, `num_h_layers: 0`).

Point by point (docs/models.md has the table of what matches and what differs):
- each expert is first aggregated over time: NetVLAD for the variable-length experts
  (`model.vlad_experts`, CE's audio, speech and OCR), the mean of its frames otherwise
  (CE's `temporal: avg`); a missing expert's input is zeros (CE's `drop_nans`), so after
  ReduceDim it is normalize(bias), and it is marked unavailable;
- ReduceDim: a linear map to d, then L2 normalisation;
- collaborative gating: for expert i, the message g([x_i, x_j]) of every pair with j
  available, **itself included**, averaged over the available pairs; g is a linear map
  from 2d to d then twice (batch norm, Mish, linear);
- the reasoning gated unit: x_i * sigmoid(BN(message) + BN(W x_i)), L2-normalised;
- the caption: NetVLAD over its word features (`text.encoder: tokens`; a sentence vector
  is a set of one), then per expert a gated embedding unit with batch norm, and softmax
  expert weights from the caption (`moe_fc`);
- missing experts drop out of the similarity and the weights renormalise over the
  present ones (`keep_missing_modalities: false`).
"""

from __future__ import annotations

import torch
from torch import nn

from vidret.config import ModelConfig
from vidret.models.base import Backbone, ModelSignature
from vidret.models.layers import GatedEmbeddingUnit, NetVLAD, frame_mask, masked_mean, normalize
from vidret.models.types import Embeddings, TextFeatures, VideoBatch


class PublishedCE(Backbone):
    def __init__(self, cfg: ModelConfig, signature: ModelSignature):
        super().__init__(cfg, signature)
        d = cfg.hidden_dim
        self.vlad = nn.ModuleDict(
            {
                e: NetVLAD(dim, cfg.vlad_clusters)
                for e, dim in signature.experts.items()
                if e in cfg.vlad_experts
            }
        )
        self.reduce = nn.ModuleDict(
            {
                e: nn.Linear(self.vlad[e].out_dim if e in self.vlad else dim, d)
                for e, dim in signature.experts.items()
            }
        )
        layers: list[nn.Module] = [nn.Linear(2 * d, d)]
        for _ in range(2):  # num_g_layers 3: the first linear, then two of these
            layers += [nn.BatchNorm1d(d), nn.Mish(), nn.Linear(d, d)]
        self.message = nn.Sequential(*layers)
        self.reason_fc = nn.ModuleDict({e: nn.Linear(d, d) for e in signature.experts})
        self.reason_norm = nn.ModuleDict({e: nn.BatchNorm1d(d) for e in signature.experts})
        self.message_norm = nn.ModuleDict({e: nn.BatchNorm1d(d) for e in signature.experts})
        self.to_joint = nn.Identity() if cfg.embed_dim == d else nn.Linear(d, cfg.embed_dim)
        self.text_vlad = NetVLAD(signature.text_dim, cfg.vlad_clusters)
        self.text_units = nn.ModuleList(
            GatedEmbeddingUnit(self.text_vlad.out_dim, cfg.embed_dim, cfg.dropout, batch_norm=True)
            for _ in signature.experts
        )
        self.text_weights = nn.Linear(self.text_vlad.out_dim, len(signature.experts))

    def encode_video(self, video: VideoBatch) -> Embeddings:
        present = self.presence(video)  # [B, E]
        x = []
        for k, name in enumerate(self.expert_names):
            feats, lengths = video.features[name], video.lengths[name]
            mask = frame_mask(lengths, feats.shape[1])
            pooled = self.vlad[name](feats, mask) if name in self.vlad else masked_mean(feats, mask)
            # CE zeroes a missing expert's input (`drop_nans`), so after ReduceDim it is
            # normalize(bias), not zeros: what the batch norms downstream see for it
            pooled = pooled * present[:, k : k + 1]
            x.append(normalize(self.reduce[name](pooled)))
        x = torch.stack(x, dim=1)
        B, E, d = x.shape
        pairs = torch.cat([x[:, :, None].expand(B, E, E, d), x[:, None].expand(B, E, E, d)], -1)
        messages = self.message(pairs.reshape(B * E * E, 2 * d)).reshape(B, E, E, d)
        avail = present[:, :, None] * present[:, None, :]  # [B, i, j], i = j included
        mean = (messages * avail[..., None]).sum(2) / (avail.sum(2)[..., None] + 1e-11)
        vectors = []
        for k, name in enumerate(self.expert_names):
            gate = self.message_norm[name](mean[:, k]) + self.reason_norm[name](
                self.reason_fc[name](x[:, k])
            )
            vectors.append(normalize(self.to_joint(normalize(x[:, k] * torch.sigmoid(gate)))))
        return Embeddings(torch.stack(vectors, dim=1), present)

    def encode_text(self, text: TextFeatures) -> Embeddings:
        pooled = self.text_vlad(text.tokens, text.mask)
        vectors = torch.stack([normalize(unit(pooled)) for unit in self.text_units], dim=1)
        return Embeddings(vectors, torch.softmax(self.text_weights(pooled), dim=-1))
