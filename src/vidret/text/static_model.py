"""A static caption encoder (`text.encoder: static`): one vector per token, averaged.

model2vec distils a sentence-transformers model into a table of token vectors: every
token of the vocabulary through the transformer alone, PCA to 256 dimensions, weighted by
token frequency (SIF). A caption's vector is the mean of its tokens' rows, normalized: no
transformer at query time, so a query costs a table look-up instead of ~4-7 ms of MiniLM
on two cores (BENCHMARKS "The query side without PyTorch").

The table is distilled once per source model (about a minute for all-MiniLM-L6-v2 on two
cores) into vidret's cache, `models/<source key>-static-v1/`, atomically and under a
lock; it is stored as float32 so that the caption cache, PyTorch and the index's ONNX
graph compute the same numbers. Captions are tokenized as model2vec does: the distilled
folder's `tokenizer.json`, no special tokens, truncated at its maximum length.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vidret.cache_dir import user_cache_dir
from vidret.errors import VidretError
from vidret.io import atomic_directory
from vidret.locking import folder_lock
from vidret.progress import note
from vidret.text.fast_tokenizer import Tokenize, fast_tokenizer
from vidret.text.model_key import model_key

_VERSION = 1
TABLE_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
DIMENSIONS = 256


def is_static_model(path: Path) -> bool:
    """A folder model2vec wrote: its modules.json (sentence-transformers' view of it) starts
    with a StaticEmbedding."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        return str(modules[0]["type"]).endswith("StaticEmbedding")
    except (OSError, ValueError, LookupError, TypeError):
        return False


def static_model(source: Path) -> Path:
    """The static model distilled from the sentence-transformers folder `source`: from the
    cache, or distilled now (once; concurrent callers wait for the first)."""
    folder = user_cache_dir() / "models" / f"{model_key(source)}-static-v{_VERSION}"
    if (folder / TABLE_FILE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(folder, what="distils a static caption model into"):
        if (folder / TABLE_FILE).is_file():  # another process finished it meanwhile
            return folder
        try:
            from model2vec.distill import distill
        except ImportError as e:
            raise VidretError(
                f"text.encoder=static distils {source} with model2vec, which is missing "
                f"({e}); reinstall vidret (`pip install -e .`)"
            ) from None
        note(f"distilling a static caption model from {source} (once, about a minute)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        model = distill(str(source), pca_dims=DIMENSIONS, quantize_to="float32", device="cpu")
        with atomic_directory(folder, overwrite=True) as tmp:
            model.save_pretrained(str(tmp))
    return folder


def static_settings(path: Path) -> dict[str, Any]:
    """How model2vec tokenizes captions for this table: no special tokens, the unknown
    token dropped, at most `max_length` tokens; and whether the mean is normalized (both
    from its config.json, model2vec's defaults where absent)."""
    config = json.loads((path / "config.json").read_text())
    vocabulary = json.loads((path / TOKENIZER_FILE).read_text())
    unknown = vocabulary.get("model", {}).get("unk_token")
    token_ids = vocabulary.get("model", {}).get("vocab", {})
    return {
        "max_seq_length": int(config.get("max_length") or 512),
        "do_lower_case": False,  # the tokenizer's own normalizer lower-cases
        "add_special_tokens": False,
        "drop_token_id": token_ids.get(unknown) if isinstance(token_ids, dict) else None,
        "normalize": bool(config.get("normalize", True)),
    }


@lru_cache(maxsize=2)
def _load(path: str) -> tuple[np.ndarray, Tokenize, bool]:
    from safetensors.numpy import load_file

    folder = Path(path)
    table = load_file(str(folder / TABLE_FILE))["embeddings"].astype(np.float32)
    settings = static_settings(folder)
    tokenize = fast_tokenizer(
        folder / TOKENIZER_FILE,
        settings["max_seq_length"],
        settings["do_lower_case"],
        add_special_tokens=settings["add_special_tokens"],
        drop_token_id=settings["drop_token_id"],
    )
    return table, tokenize, settings["normalize"]


def static_table(path: Path) -> np.ndarray:
    """The `[vocabulary, 256]` float32 token vectors."""
    return _load(str(path))[0]


def encode_static(texts: list[str], path: Path) -> np.ndarray:
    """`[len(texts), 256]` float32: each text's mean token vector, normalized (model2vec's
    `StaticModel.encode`, in float32)."""
    table, tokenize, normalize = _load(str(path))
    out = np.zeros((len(texts), table.shape[1]), np.float32)
    for start in range(0, len(texts), 1024):
        features = tokenize(list(texts[start : start + 1024]))
        ids, mask = features["input_ids"], features["attention_mask"].astype(np.float32)
        summed = (table[ids] * mask[..., None]).sum(1)
        mean = summed / np.maximum(mask.sum(1, keepdims=True), 1.0)
        if normalize:
            mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        out[start : start + len(ids)] = mean
    return out
