"""A trained run's caption side as a query encoder: text -> the model's caption embedding.
Search, moment localization and the benchmarks embed queries through it."""

from __future__ import annotations

from pathlib import Path

import torch

from vidret.errors import VidretError
from vidret.models.types import Embeddings, TextBatch
from vidret.runs.folder import load_trained_model
from vidret.text.onnx_encoder import OnnxSentenceEncoder
from vidret.text.sentence_bert import encode_texts


class QueryEncoder:
    """A trained run's caption side: query text -> the model's caption embedding."""

    def __init__(self, run_dir: Path, backend: str = "onnx"):
        self.cfg, self.model, info = load_trained_model(run_dir)
        if self.cfg.text.source is not None:
            raise VidretError(
                f"{run_dir}: this model reads captions as the dataset's own features "
                f"(text.source={self.cfg.text.source}), so it cannot embed a new query; "
                "to search, train with text.encoder sentence, tokens or finetune"
            )
        self.experts = list(info["signature"]["experts"])
        self.text_model = Path(info["text_model"])
        self._onnx = None
        if backend == "onnx" and self.cfg.text.encoder not in ("finetune", "static"):
            # One onnxruntime thread: a short query gains little from two (5.2 vs 6.3 ms
            # here), and spinning pool threads slow PyTorch's text head beside them.
            self._onnx = OnnxSentenceEncoder.try_load(self.text_model, threads=1)
        self.embed("warm up")  # load the caption model now, not on the first query

    def embed(self, query: str) -> Embeddings:
        return self.embed_many([query])

    def embed_many(self, queries: list[str]) -> Embeddings:
        """One batch through the caption encoder and the model's text side; row i is what
        `embed(queries[i])` gives (padding is masked out; tested)."""
        text = self.cfg.text
        with_tokens = text.encoder == "tokens"
        if text.encoder == "finetune":  # the model holds its own transformer
            batch = TextBatch(texts=list(queries))
        else:
            enc = (
                self._onnx.encode(list(queries), with_tokens, text.max_tokens)
                if self._onnx is not None
                else encode_texts(
                    list(queries), self.text_model, with_tokens, text.max_tokens, progress=False
                )
            )
            batch = TextBatch(
                sentence=torch.from_numpy(enc.sentence),
                tokens=None if enc.tokens is None else torch.from_numpy(enc.tokens.astype("f4")),
                lengths=None if enc.lengths is None else torch.from_numpy(enc.lengths),
                texts=list(queries),
            )
        with torch.inference_mode():
            return self.model.embed_text(batch)
