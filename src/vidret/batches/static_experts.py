"""Static supervision experts: fixed vectors per caption and per video, cached on disk.

* text: a Sentence-BERT embedding of each caption (the caption-feature cache's sentence
  vectors; a different sentence-transformers model can be named);
* video: each visual expert's pretrained frame features, mean-pooled over valid frames
  (zeros where the expert is missing: such pairs get the hard margin).

They never change during training, so they are computed once per dataset and cached
next to the other caches (`vidret.text.cache.cache_root`), written atomically and keyed
by the feature file's size and modification time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidret.data.dataset import ExpertFeatures, VideoDataset
from vidret.io import atomic_directory, save_npy_atomic, write_json_atomic
from vidret.progress import progress_bar
from vidret.text.cache import TextFeatureCache, cache_root

_ROWS = 512


@dataclass
class StaticExperts:
    text: np.ndarray  # [num_captions, D], row k = dataset.captions[k]
    video: dict[str, np.ndarray]  # expert -> [num_videos, D_e]


def static_experts(
    dataset: VideoDataset,
    experts: list[str],
    text_model: Path,
    progress: bool = True,
    sentence_vectors: np.ndarray | None = None,
) -> StaticExperts:
    """`sentence_vectors`: the captions' vectors of `text_model` when the caller already
    has them (a run's caption features), so they are not read or encoded again."""
    if sentence_vectors is None:
        sentence_vectors = (
            TextFeatureCache.for_dataset(dataset.root, text_model, with_tokens=False, max_tokens=32)
            .get(dataset.captions, progress=progress)
            .sentence
        )
    video = {e: mean_pooled(dataset, e, progress) for e in experts}
    return StaticExperts(sentence_vectors, video)


def mean_pooled(dataset: VideoDataset, expert: str, progress: bool = True) -> np.ndarray:
    """Mean over each video's valid frames of one expert, cached."""
    source = dataset.root / f"{expert}.npy"
    stat = source.stat()
    key = {"expert": expert, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "format": 1}
    folder = cache_root(dataset.root) / "static" / f"video-{expert}-mean"
    manifest = folder / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()) == key:
        return np.load(folder / "vectors.npy")
    vectors = _pool(dataset.experts[expert], progress)
    with atomic_directory(folder, overwrite=True) as tmp:
        save_npy_atomic(tmp / "vectors.npy", vectors)
        write_json_atomic(tmp / "manifest.json", key)
    return vectors


def _pool(expert: ExpertFeatures, progress: bool) -> np.ndarray:
    n = expert.features.shape[0]
    out = np.zeros((n, expert.dim), np.float32)
    for start in progress_bar(
        range(0, n, _ROWS), enabled=progress, desc=f"pooling {expert.name}", leave=False
    ):
        block = np.asarray(expert.features[start : start + _ROWS], np.float64)
        lengths = expert.lengths[start : start + _ROWS]
        valid = np.arange(expert.frames)[None, :] < lengths[:, None]
        sums = (block * valid[..., None]).sum(1)
        out[start : start + len(block)] = sums / np.maximum(lengths, 1)[:, None]
    return out
