"""Export a trained run's query side (caption encoder + the model's text head) as one ONNX
graph, checked against the PyTorch path it replaces (`vidret.search.query_tower` runs it).

The graph takes the tokenizer's `input_ids` and `attention_mask` and returns the model's
per-expert caption vectors and expert weights. It computes what the PyTorch path computes
from the same tokens: the transformer, the sentence model's pooling and normalization,
and for token-reading models the first `text.max_tokens` token features, masked and
rounded through float16 as the caption cache stores them (the model was trained on
those). The check embeds `PROBE_QUERIES` both ways, in one padded batch and one at a
time, and refuses the graph when any number differs by more than `MAX_DIFFERENCE`.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vidret.errors import VidretError
from vidret.models.types import TextBatch
from vidret.runs.query_encoder import QueryEncoder
from vidret.search.query_tower import (
    TOKENIZER_FILE,
    TOWER_FILE,
    QueryTower,
    optimize_graph,
    tower_tokenizer,
)
from vidret.text.onnx_encoder import sentence_structure
from vidret.text.sentence_bert import load_sentence_model
from vidret.text.static_model import is_static_model, static_settings, static_table

MAX_DIFFERENCE = 1e-4
# int8 weights move every number by far more than float rounding: the graph is checked by
# the direction of its vectors instead (cosine to PyTorch's, per query and expert), and
# its retrieval cost is measured (benchmarks/bench_query_tower.py).
MIN_INT8_COSINE = 0.95
PRECISIONS = ("fp32", "int8")
# Short and long (past max_tokens and the usual 32), cased, accented, punctuated, numbers.
PROBE_QUERIES = [
    "a man is cooking pasta",
    "dog",
    "A Woman Sings On Stage While The Crowd Cheers!",
    "children play football in a park on a sunny afternoon, then they sit down on the "
    "grass, drink water, laugh together and walk home slowly as the sun sets behind the "
    "trees and the city lights come on one by one",
    "un café à Paris, 2 personnes",
    "cars racing on a track at 200 km/h",
]


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise VidretError(f"--query-tower {precision!r}: choose one of {', '.join(PRECISIONS)}")


class _Tower(nn.Module):
    """input_ids, attention_mask -> (vectors [B, E, d], weights [B, E])."""

    def __init__(
        self,
        transformer: nn.Module,
        pooling: str,
        normalize: bool,
        max_tokens: int | None,
        model: nn.Module,
    ):
        super().__init__()
        self.transformer, self.model = transformer, model
        self.pooling, self.normalize, self.max_tokens = pooling, normalize, max_tokens

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask)
        hidden = hidden.last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "mean":
            sentence = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        else:
            sentence = hidden[:, 0]
        if self.normalize:
            sentence = nn.functional.normalize(sentence, dim=-1)
        tokens = lengths = None
        if self.max_tokens is not None:  # padded to at least max_tokens by the tokenizer
            kept = attention_mask[:, : self.max_tokens]
            tokens = (hidden[:, : self.max_tokens] * kept.unsqueeze(-1)).half().float()
            lengths = kept.sum(1)
        out = self.model.embed_text(TextBatch(sentence=sentence, tokens=tokens, lengths=lengths))
        return out.vectors.float(), out.weights.float()


class _StaticTower(nn.Module):
    """A static caption model (`text.encoder: static`): the mean of the tokens' rows."""

    def __init__(self, table: np.ndarray, normalize: bool, model: nn.Module):
        super().__init__()
        self.register_buffer("table", torch.from_numpy(table))
        self.normalize, self.model = normalize, model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        mask = attention_mask.unsqueeze(-1).float()
        summed = (self.table[input_ids] * mask).sum(1)
        sentence = summed / mask.sum(1).clamp_min(1.0)
        if self.normalize:
            sentence = nn.functional.normalize(sentence, dim=-1)
        out = self.model.embed_text(TextBatch(sentence=sentence))
        return out.vectors.float(), out.weights.float()


def export_query_tower(run_dir: Path, folder: Path, precision: str = "fp32") -> dict[str, Any]:
    """Write `query_tower.onnx` and the caption model's `tokenizer.json` into `folder`; their
    settings for index.json, or `{"fallback": reason}` (nothing written) when the run's
    query side cannot be exported or its graph does not match PyTorch. `precision` int8:
    the weights quantized (onnxruntime's dynamic quantization), about 2x faster a query."""
    check_precision(precision)
    try:
        reference = QueryEncoder(run_dir, backend="torch")
    except VidretError as e:  # e.g. captions read as the dataset's features (text.source)
        return {"fallback": str(e)}
    text = reference.cfg.text
    if text.encoder == "finetune":
        return {"fallback": "the model fine-tunes its own caption transformer (not exported)"}
    if is_static_model(reference.text_model):
        static = static_settings(reference.text_model)
        settings = {"file": TOWER_FILE, "tokenizer": TOKENIZER_FILE, "min_tokens": 0,
                    "precision": precision, **static}  # fmt: skip
        table = static_table(reference.text_model)
        tower: nn.Module = _StaticTower(table, static["normalize"], reference.model).eval()
        return _write_and_check(tower, reference, folder, settings, None)
    sentence_model = load_sentence_model(str(reference.text_model))
    structure = sentence_structure(sentence_model)
    tokenizer = reference.text_model / TOKENIZER_FILE
    if structure is None or not tokenizer.is_file():
        return {
            "fallback": f"{reference.text_model}: not a Transformer -> Pooling model with a "
            f"{TOKENIZER_FILE} (not exported)"
        }
    pooling, normalize = structure
    max_tokens = text.max_tokens if text.encoder == "tokens" else None
    settings: dict[str, Any] = {
        "file": TOWER_FILE,
        "tokenizer": TOKENIZER_FILE,
        "max_seq_length": int(sentence_model.max_seq_length),
        "do_lower_case": bool(getattr(sentence_model[0], "do_lower_case", False)),
        "min_tokens": max_tokens or 0,
        "precision": precision,
    }
    transformer = sentence_model[0].auto_model
    tower = _Tower(transformer, pooling, normalize, max_tokens, reference.model).eval()
    return _write_and_check(tower, reference, folder, settings, transformer)


def _write_and_check(
    tower: nn.Module,
    reference: QueryEncoder,
    folder: Path,
    settings: dict[str, Any],
    transformer: nn.Module | None,
) -> dict[str, Any]:
    """Export `tower` with the caption model's tokenizer, check it against `reference`;
    its settings, or a fallback (nothing left in `folder`)."""
    precision = settings["precision"]
    shutil.copyfile(reference.text_model / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    try:
        _export(tower, folder, settings)
        difference, cosine = _difference(reference, QueryTower(folder, settings))
    except Exception as e:  # an operator the exporter or onnxruntime cannot take
        _remove(folder)
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        return {"fallback": f"the exporter failed ({reason})"}
    finally:
        if transformer is not None:
            transformer.eval()  # the shared, cached sentence model stays in eval mode
    if precision == "fp32" and difference > MAX_DIFFERENCE:
        _remove(folder)
        return {
            "fallback": f"the exported graph differs from PyTorch by {difference:.2g} "
            f"(more than {MAX_DIFFERENCE:g})"
        }
    if precision == "int8" and cosine < MIN_INT8_COSINE:
        _remove(folder)
        return {
            "fallback": f"the int8 graph's vectors are {cosine:.3f} cosine from PyTorch's "
            f"(below {MIN_INT8_COSINE}); index with --query-tower fp32"
        }
    return {**settings, "max_difference": difference, "min_cosine": cosine}


def add_query_tower(
    run_dir: Path, reference: dict[str, Any], folder: Path, precision: str = "fp32"
) -> dict[str, Path]:
    """Export the run's query side into `folder` and record its settings in the index's
    model `reference`; the files to copy into the index (`write_index(copies=...)`)."""
    reference["query_tower"] = export_query_tower(run_dir, folder, precision)
    return {p.name: p for p in folder.iterdir()}


def _export(tower: nn.Module, folder: Path, settings: dict[str, Any]) -> None:
    tokenize = tower_tokenizer(folder, settings)
    example = {k: torch.from_numpy(v) for k, v in tokenize(PROBE_QUERIES[:2]).items()}
    axes = {0: "batch", 1: "tokens"}
    traced = folder / f"{TOWER_FILE}.traced"
    # With gradients on (not inference mode): PyTorch's fused transformer-layer fast path,
    # which ONNX cannot express, is taken only without them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes, not the user's business
        torch.onnx.export(
            tower,
            (example["input_ids"], example["attention_mask"]),
            str(traced),
            input_names=["input_ids", "attention_mask"],
            output_names=["vectors", "weights"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "vectors": {0: "batch"},
                "weights": {0: "batch"},
            },
            dynamo=False,
            opset_version=17,
        )
    if settings["precision"] == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = folder / f"{TOWER_FILE}.int8"
        # Unsigned weights, one scale per output channel: on all-MiniLM-L6-v2 + a meanpool
        # head, min cosine to fp32 0.987 over the probes (signed, one scale: 0.937).
        root_logger = logging.getLogger()
        level = root_logger.level
        root_logger.setLevel(logging.ERROR)  # its advice to pre-process, on the root logger
        try:
            quantize_dynamic(traced, quantized, weight_type=QuantType.QUInt8, per_channel=True)
        finally:
            root_logger.setLevel(level)
        traced.unlink()
        quantized.rename(traced)
    optimize_graph(traced, folder / TOWER_FILE)
    traced.unlink()


def _difference(reference: QueryEncoder, tower: QueryTower) -> tuple[float, float]:
    """The largest difference between the graph and PyTorch over the probe queries, in one
    padded batch and one query at a time, and the smallest cosine between their vectors."""
    worst, cosine = 0.0, 1.0
    for batch in [PROBE_QUERIES, *([q] for q in PROBE_QUERIES)]:
        want = reference.embed_many(batch)
        got = tower.embed_many(batch)
        for a, b in ((got.vectors, want.vectors), (got.weights, want.weights)):
            if a.shape != tuple(b.shape):
                return float("inf"), -1.0
            worst = max(worst, float(np.abs(a - b.float().numpy()).max()))
        w = want.vectors.float().numpy()
        cos = (got.vectors * w).sum(-1) / np.maximum(
            np.linalg.norm(got.vectors, axis=-1) * np.linalg.norm(w, axis=-1), 1e-12
        )
        cosine = min(cosine, float(cos.min()))
    return worst, cosine


def _remove(folder: Path) -> None:
    for name in (TOWER_FILE, TOKENIZER_FILE, f"{TOWER_FILE}.traced", f"{TOWER_FILE}.int8"):
        (folder / name).unlink(missing_ok=True)
