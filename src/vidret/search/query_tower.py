"""A trained run's whole query side as one ONNX graph, run without PyTorch.

`vidret index` exports the caption encoder (the sentence-transformers transformer, its
pooling and normalization, or a static model's token table) and the model's text head
together into `query_tower.onnx` beside the index, with the caption model's
`tokenizer.json`, and checks the graph against the PyTorch path it replaces
(`vidret.search.export_tower`). A search then needs only `tokenizers`, onnxruntime, FAISS
and NumPy: no PyTorch import, the larger part of a cold `vidret search`.

index.json's `model.query_tower` says what was stored: the files, how to tokenize
(`max_seq_length`, `do_lower_case`, `min_tokens`, and for a static model
`add_special_tokens` and `drop_token_id`), `precision` (fp32 or int8) and how far the graph
is from PyTorch (`max_difference`, `min_cosine`); or `{"fallback": reason}` when the
model's query side could not be exported (queries then run in PyTorch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidret.errors import VidretError
from vidret.search.vectors import ExpertVectors
from vidret.text.fast_tokenizer import fast_tokenizer

TOWER_FILE = "query_tower.onnx"
TOKENIZER_FILE = "tokenizer.json"


class QueryTower:
    """text -> the model's caption embedding, through the index's exported graph."""

    def __init__(self, index_dir: Path, settings: dict[str, Any], threads: int = 1):
        import onnxruntime as ort

        rebuild = "rebuild the index with `vidret index ... --overwrite`"
        graph = index_dir / settings["file"]
        try:
            self._tokenize = tower_tokenizer(index_dir, settings)
        except Exception as e:  # missing or not a tokenizer file
            tokenizer = index_dir / settings["tokenizer"]
            raise VidretError(f"{tokenizer}: unreadable ({e}); {rebuild}") from None
        options = ort.SessionOptions()
        # One thread: a short query gains little from two, and a server runs several.
        options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime's own errors: missing, truncated, not a graph
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else "unreadable"
            raise VidretError(f"{graph}: damaged or missing ({reason}); {rebuild}") from None

    def embed_many(self, queries: list[str]) -> ExpertVectors:
        features = self._tokenize(list(queries))
        vectors, weights = self._session.run(None, features)
        return ExpertVectors(vectors, weights)


def tower_tokenizer(folder: Path, settings: dict[str, Any]) -> Any:
    """The tokenizer the graph was exported with, from the settings index.json keeps."""
    return fast_tokenizer(
        folder / settings["tokenizer"],
        settings["max_seq_length"],
        settings["do_lower_case"],
        settings["min_tokens"],
        settings.get("add_special_tokens", True),
        settings.get("drop_token_id"),
    )


def optimize_graph(source: Path, target: Path) -> None:
    """Store `source` as onnxruntime optimizes it (fused attention, layer norm, GELU), so
    that a search start has less to do. The extended level is the one whose result runs
    on any CPU; loading adds the full level's layouts for the machine at hand (measured:
    3.6 ms a query at batch 32 against 4.3 with the stored graph as it is)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def has_tower(settings: dict[str, Any] | None) -> bool:
    """An index whose queries run through its stored graph (not a fallback, not an index
    older than the graph)."""
    return settings is not None and "file" in settings
