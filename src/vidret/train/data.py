"""A dataset made ready for a model: split rows, cached caption features, batch builders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidret.config import RunConfig
from vidret.data.dataset import VideoDataset
from vidret.data.splits import resolve_split
from vidret.data.validate import nonfinite_problems
from vidret.errors import DatasetError, VidretError
from vidret.models.base import ModelSignature
from vidret.models.types import TextBatch, VideoBatch
from vidret.text.cache import TextFeatureCache
from vidret.text.sentence_bert import EncodedTexts, resolve_model_path


@dataclass
class PreparedData:
    dataset: VideoDataset
    experts: list[str]
    text: EncodedTexts  # row k belongs to dataset.captions[k]
    text_model_path: Path
    splits: dict[str, np.ndarray]  # part -> video rows

    def signature(self) -> ModelSignature:
        return ModelSignature(
            experts={e: self.dataset.experts[e].dim for e in self.experts},
            frames={e: self.dataset.experts[e].frames for e in self.experts},
            text_dim=int(self.text.sentence.shape[1]),
        )

    def caption_rows(self, video_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All captions of these videos, and each caption's column among `video_rows`."""
        column = np.full(self.dataset.num_videos, -1, np.int64)
        column[video_rows] = np.arange(len(video_rows))
        rows = np.flatnonzero(column[self.dataset.caption_video] >= 0)
        return rows, column[self.dataset.caption_video[rows]]


def prepare_data(
    cfg: RunConfig,
    root: Path,
    experts: list[str] | None = None,
    split: str | None = None,
    progress: bool = True,
) -> PreparedData:
    """Open the dataset, resolve the split, and load (or compute and cache) caption features.

    `experts` fixes the expert list (a trained model's); `split` overrides `cfg.data.split`.
    """
    dataset = VideoDataset.open(root)
    if not dataset.captions:
        raise VidretError(
            f"{root}: no captions, so nothing to train or evaluate on; a folder from "
            "`vidret extract` needs `--captions FILE.jsonl` for that (it can still be indexed)"
        )
    wanted = experts or cfg.data.experts or list(dataset.experts)
    unknown = [e for e in wanted if e not in dataset.experts]
    if unknown:
        raise VidretError(
            f"{root}: no expert(s) {unknown}; this folder has {sorted(dataset.experts)}"
        )
    # NaN/Inf features would train for an epoch and then fail far from the cause.
    bad = [p for e in wanted for p in nonfinite_problems(dataset.experts[e], dataset)]
    if bad:
        raise DatasetError(root, bad)
    parts = resolve_split(
        root,
        dataset.video_ids,
        split or cfg.data.split,
        cfg.data.sizes,
        cfg.data.seed,
        cfg.data.names,
    )
    index = dataset.video_index()
    splits = {p: np.array([index[v] for v in ids], np.int64) for p, ids in parts.items()}

    model_path = resolve_model_path(cfg.text.model)
    cache = TextFeatureCache.for_dataset(
        root, model_path, with_tokens=cfg.text.encoder == "tokens", max_tokens=cfg.text.max_tokens
    )
    text = cache.get(dataset.captions, progress=progress)
    return PreparedData(dataset, wanted, text, model_path, splits)


def video_batch(data: PreparedData, rows: np.ndarray) -> VideoBatch:
    return dataset_video_batch(data.dataset, data.experts, rows)


def dataset_video_batch(dataset: VideoDataset, experts: list[str], rows: np.ndarray) -> VideoBatch:
    """Features of these video rows (read from the memory map: only these rows)."""
    order = np.argsort(rows)  # memmaps read fastest in file order
    feats, lengths = {}, {}
    for name in experts:
        expert = dataset.experts[name]
        block = np.empty((len(rows), expert.frames, expert.dim), np.float32)
        block[order] = expert.features[rows[order]]
        feats[name] = torch.from_numpy(block)
        lengths[name] = torch.from_numpy(expert.lengths[rows])
    return VideoBatch(feats, lengths)


def text_batch(data: PreparedData, caption_rows: np.ndarray) -> TextBatch:
    text = data.text
    return TextBatch(
        sentence=torch.from_numpy(np.ascontiguousarray(text.sentence[caption_rows])),
        tokens=None
        if text.tokens is None
        else torch.from_numpy(text.tokens[caption_rows].astype(np.float32)),
        lengths=None if text.lengths is None else torch.from_numpy(text.lengths[caption_rows]),
        texts=[data.dataset.captions[i] for i in caption_rows],
    )
