"""Sentence-BERT's transformer under onnxruntime: the fast path for one query at a time.

A search embeds one short query per request; there PyTorch's per-call overhead dominates
and onnxruntime is about 3x faster on CPU (benchmarks/bench_search.py). The transformer
is exported once to vidret's cache (atomically); tokenization and pooling stay those of
the sentence-transformers model, so the vectors equal `encode_texts` (tested). Models
other than Transformer -> Pooling (mean or cls) -> optional Normalize fall back to PyTorch.

Beside the export a small manifest records the pooling and the tokenizer's settings, so a
later start needs neither sentence-transformers nor PyTorch's transformer: the model
folder's `tokenizer.json` under the `tokenizers` library does the tokenization. That takes
`vidret search`'s cold start from ~14 s to a few (benchmarks/bench_search.py).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from vidret.cache_dir import user_cache_dir
from vidret.io import atomic_path, write_json_atomic
from vidret.text.fast_tokenizer import Tokenize, fast_tokenizer
from vidret.text.model_key import model_key
from vidret.text.sentence_bert import EncodedTexts, load_sentence_model

_EXPORT_VERSION = 1


class OnnxSentenceEncoder:
    def __init__(
        self, tokenize: Tokenize, onnx_file: Path, pooling: str, normalize: bool, threads: int
    ):
        import onnxruntime as ort

        self._tokenize = tokenize
        self._pooling, self._normalize = pooling, normalize
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def try_load(cls, model_path: Path, threads: int = 1) -> OnnxSentenceEncoder | None:
        """The ONNX encoder of this model, or None when its structure is not supported."""
        quick = _load_exported(model_path, threads)
        if quick is not None:
            return quick
        model = load_sentence_model(str(model_path))
        structure = sentence_structure(model)
        if structure is None:
            return None
        pooling, normalize = structure
        try:
            onnx_file = _export(model, model_path)
        except Exception as e:  # an architecture the exporter cannot trace: PyTorch it is
            warnings.warn(
                f"{model_path}: no ONNX export ({e}); queries run in PyTorch", stacklevel=2
            )
            return None
        write_json_atomic(
            _manifest_path(onnx_file),
            {
                "pooling": pooling,
                "normalize": normalize,
                "max_seq_length": int(model.max_seq_length),
                "do_lower_case": bool(getattr(model[0], "do_lower_case", False)),
            },
        )

        def tokenize(texts: list[str]) -> dict[str, np.ndarray]:
            features = model.preprocess(texts)
            return {k: features[k].numpy() for k in ("input_ids", "attention_mask")}

        return cls(tokenize, onnx_file, pooling, normalize, threads)

    def encode(self, texts: list[str], with_tokens: bool, max_tokens: int = 32) -> EncodedTexts:
        features = self._tokenize(texts)
        mask = features["attention_mask"]
        tokens = self._session.run(
            None, {"input_ids": features["input_ids"], "attention_mask": mask}
        )[0]
        if self._pooling == "mean":
            weights = mask[..., None].astype(np.float32)
            sentence = (tokens * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        else:
            sentence = tokens[:, 0]
        if self._normalize:
            sentence = sentence / np.maximum(np.linalg.norm(sentence, axis=1, keepdims=True), 1e-12)
        if not with_tokens:
            return EncodedTexts(sentence.astype(np.float32), None, None)
        kept = mask[:, :max_tokens]
        out = np.zeros((len(texts), max_tokens, tokens.shape[2]), np.float16)
        out[:, : kept.shape[1]] = (tokens[:, :max_tokens] * kept[..., None]).astype(np.float16)
        return EncodedTexts(sentence.astype(np.float32), out, kept.sum(1).astype(np.int64))


def sentence_structure(model: Any) -> tuple[str, bool] | None:
    """(pooling, normalized) of a Transformer -> Pooling (mean or cls) -> optional Normalize
    sentence-transformers model; None for any other structure (not exported)."""
    modules = list(model)
    names = [type(m).__name__ for m in modules]
    if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
        return None
    pooling = modules[1].get_config_dict().get("pooling_mode")
    if pooling not in ("mean", "cls"):
        return None
    return pooling, len(names) == 3


def _onnx_path(model_path: Path) -> Path:
    return user_cache_dir() / "models" / f"{model_key(model_path)}-v{_EXPORT_VERSION}.onnx"


def _manifest_path(onnx_file: Path) -> Path:
    return onnx_file.with_suffix(".json")


def _load_exported(model_path: Path, threads: int) -> OnnxSentenceEncoder | None:
    """The encoder from an earlier export and its manifest, tokenizing with the model
    folder's tokenizer.json; None when any of them is missing."""
    onnx_file = _onnx_path(model_path)
    manifest_file = _manifest_path(onnx_file)
    tokenizer_file = model_path / "tokenizer.json"
    if not (onnx_file.exists() and manifest_file.exists() and tokenizer_file.exists()):
        return None
    manifest = json.loads(manifest_file.read_text())
    tokenize = fast_tokenizer(tokenizer_file, manifest["max_seq_length"], manifest["do_lower_case"])
    return OnnxSentenceEncoder(
        tokenize, onnx_file, manifest["pooling"], manifest["normalize"], threads
    )


def _export(model: Any, model_path: Path) -> Path:
    import torch

    path = _onnx_path(model_path)
    if path.exists():
        return path
    transformer = model[0].auto_model.eval()

    class TokenFeatures(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out = self.transformer(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state

    example = model.preprocess(["an example sentence to trace the model"])
    axes = {"batch": 0, "tokens": 1}
    dynamic = {name: {i: n for n, i in axes.items()} for name in ("input_ids", "attention_mask")}
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the exporter's notes, not the user's business
        torch.onnx.export(
            TokenFeatures().eval(),  # eval: the exporter restores this mode afterwards
            (example["input_ids"], example["attention_mask"]),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=["token_embeddings"],
            dynamic_axes={**dynamic, "token_embeddings": {0: "batch", 1: "tokens"}},
            dynamo=False,
            opset_version=17,
        )
    transformer.eval()  # the shared, cached model must stay in eval mode (no dropout)
    return path
