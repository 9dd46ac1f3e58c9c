"""MMT as gabeur/mmt builds it (`model/model.py` `CENet` with `vid_cont: bert`, `model/bert.py`).

Point by point (docs/models.md has the table of what matches and what differs):
- each expert's features go through ReduceDim: a linear map to d, then L2 normalisation;
- the sequence is [CLS], then per expert an aggregation token [AGG] whose feature is the
  ReduceDim of the max-pooled *raw* features of all its frames (`out_tok: mxp`), then its
  frame tokens; [AGG] of an expert the video lacks is masked out of attention;
- embeddings are feature + position + token type (0 for [CLS], k + 1 for expert k),
  LayerNorm (eps 1e-12), dropout: BERT's embedding layer;
- positions (`pos_enc: tint`): 0 for [CLS] and [AGG]; a frame with a time t gets
  clamp(t + 2, 0, P - 1) as MMT's loader and model compute it (P = `model.positions`: MMT's
  max_position_embeddings, 32 in its MSR-VTT and LSMDC configs, 102 for ActivityNet); a frame
  without a time (face, speech, ocr) gets 1, "unknown"; data without times at all get
  the frame's order, k + 1 (`pos_enc: ordr`);
- post-norm transformer layers with GELU and a wide feed-forward (3,072 at d = 512);
- each expert's embedding is the L2-normalised output at its [AGG] token, with no gated
  unit after the transformer; every expert keeps weight 1 on the video side
  (`keep_missing_modalities: true`, `vid_wgh: none`);
- the caption side: one gated embedding unit with batch norm per expert (`txt_pro: gbn`)
  and softmax expert weights from the caption (`txt_wgh: emb`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidret.config import ModelConfig
from vidret.models.base import Backbone, MixtureTextHead, ModelSignature
from vidret.models.layers import frame_mask, masked_max, normalize
from vidret.models.mmt import sample_frames
from vidret.models.types import Embeddings, TextFeatures, VideoBatch

CLS, UNKNOWN_TIME, FIRST_TIME = 0, 1, 2  # position ids as MMT assigns them


class PublishedMMT(Backbone):
    def __init__(self, cfg: ModelConfig, signature: ModelSignature):
        super().__init__(cfg, signature)
        d = cfg.hidden_dim
        self.reduce = nn.ModuleDict({e: nn.Linear(dim, d) for e, dim in signature.experts.items()})
        self.token_type = nn.Embedding(len(signature.experts) + 1, d)
        self.position = nn.Embedding(cfg.positions, d)
        self.embedding_norm = nn.LayerNorm(d, eps=1e-12)
        self.embedding_dropout = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            d,
            cfg.heads,
            dim_feedforward=cfg.ffn_dim or 6 * d,  # 3,072 at the published d = 512
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=False,
            layer_norm_eps=1e-12,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        # MMT's joint space is d itself; a different model.embed_dim gets a linear map.
        self.to_joint = nn.Identity() if cfg.embed_dim == d else nn.Linear(d, cfg.embed_dim)
        self.apply(_bert_init)
        self.text_head = MixtureTextHead(
            signature.text_dim, self.expert_names, cfg.embed_dim, cfg.dropout, batch_norm=True
        )

    def encode_video(self, video: VideoBatch) -> Embeddings:
        B = len(video)
        device = next(self.parameters()).device
        features = [torch.zeros(B, 1, self.cfg.hidden_dim, device=device)]  # [CLS]
        types = [torch.zeros(B, 1, dtype=torch.long, device=device)]
        positions = [torch.full((B, 1), CLS, dtype=torch.long, device=device)]
        valid = [torch.ones(B, 1, dtype=torch.bool, device=device)]
        agg_index = []
        for k, name in enumerate(self.expert_names):
            raw, lengths = video.features[name], video.lengths[name]
            reduce = lambda x, name=name: normalize(self.reduce[name](x))  # noqa: E731
            agg = reduce(masked_max(raw, frame_mask(lengths, raw.shape[1])))[:, None]
            frames, kept = sample_frames(raw, lengths, self.cfg.max_frames)
            index = _frame_index(lengths, frames.shape[1])
            agg_index.append(sum(f.shape[1] for f in features))
            features += [agg, reduce(frames)]
            n = 1 + frames.shape[1]
            types.append(torch.full((B, n), k + 1, dtype=torch.long, device=device))
            positions += [
                torch.full((B, 1), CLS, dtype=torch.long, device=device),
                _positions(
                    video.times.get(name) if video.times else None, index, self.cfg.positions
                ),
            ]
            valid += [(lengths > 0)[:, None], kept]
        x = torch.cat(features, 1) + self.token_type(torch.cat(types, 1))
        x = x + self.position(torch.cat(positions, 1))
        x = self.embedding_dropout(self.embedding_norm(x))
        out = self.encoder(x, src_key_padding_mask=~torch.cat(valid, 1))
        vectors = torch.stack([normalize(self.to_joint(out[:, i])) for i in agg_index], dim=1)
        return Embeddings(vectors, torch.ones(B, len(self.expert_names), device=device))

    def encode_text(self, text: TextFeatures) -> Embeddings:
        return self.text_head(text)


def _frame_index(lengths: Tensor, kept: int) -> Tensor:
    """Which frame `sample_frames` took at each kept slot (the same even spacing)."""
    k = torch.arange(kept, device=lengths.device)[None, :]
    take = lengths.clamp(max=kept).clamp_min(1)[:, None]
    return (k * lengths[:, None]) // take


def _positions(times: Tensor | None, index: Tensor, positions: int) -> Tensor:
    """Position ids of the kept frames: from their times (MMT's `tint`), else their order."""
    if times is None:
        return (index + 1).clamp(max=positions - 1)  # `ordr`: frame order + 1
    t = torch.gather(times, 1, index.clamp(max=times.shape[1] - 1))
    ids = (t + FIRST_TIME).clamp(0, positions - 1)
    return torch.where(torch.isnan(t), UNKNOWN_TIME, ids.nan_to_num(UNKNOWN_TIME).long())


def _bert_init(module: nn.Module) -> None:
    """BERT's initialisation, as MMT's BertModel applies it."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.data.zero_()
    if isinstance(module, nn.LayerNorm):
        module.weight.data.fill_(1.0)
        module.bias.data.zero_()
