"""Caption encoders as modules: they turn a `TextBatch` into `TextFeatures`.

* `sentence`: frozen Sentence-BERT vectors (cached); the backbone's text branch is the
  trainable head.
* `tokens`: frozen token features (cached) and a trainable transformer aggregator, as
  MMT aggregates BERT tokens.
* `finetune`: the Sentence-BERT transformer itself is trained (MMT's "BERT fine-tuned");
  practical on a GPU.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from vidret.config import TextConfig
from vidret.models.layers import masked_mean
from vidret.models.types import TextBatch, TextFeatures
from vidret.text.sentence_bert import load_sentence_model


class SentenceVectors(nn.Module):
    def forward(self, batch: TextBatch) -> TextFeatures:
        x = batch.sentence
        mask = torch.ones(x.shape[0], 1, dtype=torch.bool, device=x.device)
        return TextFeatures(pooled=x, tokens=x[:, None], mask=mask)


class TokenAggregator(nn.Module):
    def __init__(self, dim: int, layers: int, dropout: float = 0.1):
        super().__init__()
        heads = next(h for h in (8, 6, 4, 2, 1) if dim % h == 0)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, batch: TextBatch) -> TextFeatures:
        x = batch.tokens.float()
        mask = torch.arange(x.shape[1], device=x.device)[None] < batch.lengths.clamp_min(1)[:, None]
        h = self.encoder(x, src_key_padding_mask=~mask)
        return TextFeatures(pooled=masked_mean(h, mask), tokens=h, mask=mask)


class FineTunedSentenceBert(nn.Module):
    """The whole sentence-transformers model as a trainable submodule."""

    def __init__(self, model_path: str, max_tokens: int):
        super().__init__()
        # A private copy: the shared encoder used for frozen features must stay frozen.
        self.model = copy.deepcopy(load_sentence_model(model_path))
        self.model.max_seq_length = max_tokens

    def forward(self, batch: TextBatch) -> TextFeatures:
        device = next(self.model.parameters()).device
        features = {  # tensors to the model's device; other fields (strings) as they are
            k: v.to(device) if isinstance(v, torch.Tensor) else v
            for k, v in self.model.preprocess(batch.texts).items()
        }
        out = self.model(features)
        mask = features["attention_mask"].bool()
        return TextFeatures(
            pooled=out["sentence_embedding"], tokens=out["token_embeddings"], mask=mask
        )


def build_text_encoder(cfg: TextConfig, text_dim: int, model_path: str) -> nn.Module:
    if cfg.encoder in ("sentence", "static"):  # static: vectors of a distilled table
        return SentenceVectors()
    if cfg.encoder == "tokens":
        return TokenAggregator(text_dim, cfg.aggregator_layers)
    return FineTunedSentenceBert(model_path, cfg.max_tokens)
