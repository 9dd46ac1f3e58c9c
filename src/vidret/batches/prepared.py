"""A dataset made ready for a model: split rows, cached caption features, batch builders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vidret.config import RunConfig
from vidret.data.dataset import VideoDataset
from vidret.data.splits import cross_validation_fold, resolve_split, scored_captions
from vidret.data.validate import require_finite
from vidret.errors import VidretError
from vidret.models.base import ModelSignature
from vidret.models.registry import reads_regions
from vidret.models.types import TextBatch, VideoBatch
from vidret.text.cache import TextFeatureCache
from vidret.text.sentence_bert import EncodedTexts, caption_model_path


@dataclass
class PreparedData:
    dataset: VideoDataset
    experts: list[str]
    text: EncodedTexts  # row k belongs to dataset.captions[k]
    text_model_path: Path
    splits: dict[str, np.ndarray]  # part -> video rows
    # part -> the caption rows it scores, where its split file names them (MSR-VTT 1k-A:
    # one caption per test video); a part not here scores all captions of its videos
    scored: dict[str, np.ndarray] = field(default_factory=dict)
    # the model reads region features (a region backbone): batches carry them
    with_regions: bool = False

    def signature(self) -> ModelSignature:
        experts = {e: self.dataset.experts[e] for e in self.experts}
        return ModelSignature(
            experts={e: x.dim for e, x in experts.items()},
            frames={e: x.frames for e, x in experts.items()},
            text_dim=int(self.text.sentence.shape[1]),
            regions={
                e: [x.num_regions, x.region_dim]
                for e, x in experts.items()
                if self.with_regions and x.regions is not None
            },
        )

    def caption_rows(
        self, video_rows: np.ndarray, only: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """All captions of these videos (or the caption rows `only`), and each caption's
        column among `video_rows`."""
        column = np.full(self.dataset.num_videos, -1, np.int64)
        column[video_rows] = np.arange(len(video_rows))
        if only is not None:
            return only, column[self.dataset.caption_video[only]]
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
    require_finite(dataset, wanted)  # NaN/Inf would train an epoch, then fail
    parts = resolve_split(
        root,
        dataset.video_ids,
        split or cfg.data.split,
        cfg.data.sizes,
        cfg.data.seed,
        cfg.data.names,
    )
    folds = cfg.data.folds and (split or cfg.data.split) != "all"
    if folds:
        parts = cross_validation_fold(parts, cfg.data.folds, cfg.data.fold, cfg.data.seed)
    index = dataset.video_index()
    splits = {p: np.array([index[v] for v in ids], np.int64) for p, ids in parts.items()}
    scored = {}
    if (split or cfg.data.split) == "named":
        # a fold's train and val mix the named parts: they score all their captions
        for part in ["test"] if folds else list(splits):
            rows = (
                split_caption_rows(dataset, root, cfg.data.names[part])
                if part in cfg.data.names
                else None
            )
            if rows is not None:
                scored[part] = rows

    model_path = caption_model_path(cfg.text.model, cfg.text.encoder)
    if cfg.text.source is not None:
        text = source_features(dataset, cfg.text.source, root)
    else:
        cache = TextFeatureCache.for_dataset(
            root,
            model_path,
            with_tokens=cfg.text.encoder == "tokens",
            max_tokens=cfg.text.max_tokens,
        )
        text = cache.get(dataset.captions, progress=progress)
    return PreparedData(
        dataset, wanted, text, model_path, splits, scored, reads_regions(cfg.model.backbone)
    )


def source_features(dataset: VideoDataset, name: str, root: Path) -> EncodedTexts:
    """The dataset's own caption token features (`caption_features/<name>.npy`) as the
    caption encoder's input; their masked mean stands for the sentence vector."""
    if name not in dataset.caption_features:
        raise VidretError(
            f"text.source={name!r}: {root} has no caption_features/{name}.npy "
            f"(it has {sorted(dataset.caption_features) or 'none'})"
        )
    f = dataset.caption_features[name]
    mask = np.arange(f.frames)[None, :] < f.lengths[:, None]
    sums = np.zeros((len(f.lengths), f.dim), np.float64)
    for start in range(0, len(sums), 4096):  # memory-mapped: a block at a time
        block = np.asarray(f.features[start : start + 4096], np.float64)
        sums[start : start + 4096] = (block * mask[start : start + 4096, :, None]).sum(1)
    sentence = (sums / np.maximum(f.lengths, 1)[:, None]).astype(np.float32)
    return EncodedTexts(sentence, f.features, f.lengths)


def split_caption_rows(dataset: VideoDataset, root: Path, name: str) -> np.ndarray | None:
    """The caption rows `splits/<name>.txt` scores, or None when it scores every caption
    of its videos (no line names a caption): video -> K picks the video's K-th caption."""
    chosen = scored_captions(root, name)
    if all(k is None for k in chosen.values()):
        return None
    order = np.argsort(dataset.caption_video, kind="stable")
    starts = np.searchsorted(dataset.caption_video[order], np.arange(dataset.num_videos + 1))
    index = dataset.video_index()
    rows: list[int] = []
    for vid, k in chosen.items():
        row = index[vid]
        own = order[starts[row] : starts[row + 1]]
        if k is None:
            rows.extend(own.tolist())
        elif k >= len(own):
            raise VidretError(
                f"{root}/splits/{name}.txt: video '{vid}' has {len(own)} captions, the split "
                f"scores its caption {k} (counted from 0)"
            )
        else:
            rows.append(int(own[k]))
    return np.asarray(rows, np.int64)


def video_batch(data: PreparedData, rows: np.ndarray) -> VideoBatch:
    regions = list(data.signature().regions)
    return dataset_video_batch(data.dataset, data.experts, rows, regions)


def dataset_video_batch(
    dataset: VideoDataset, experts: list[str], rows: np.ndarray, regions: list[str] = ()
) -> VideoBatch:
    """Features of these video rows (read from the memory map: only these rows), with the
    region features of the experts in `regions`."""
    order = np.argsort(rows)  # memmaps read fastest in file order
    batch = VideoBatch({}, {})
    for name in experts:
        expert = dataset.experts[name]
        batch.features[name] = _rows(expert.features, rows, order)
        batch.lengths[name] = torch.from_numpy(expert.lengths[rows])
        if expert.times is not None:
            batch.times[name] = torch.from_numpy(np.asarray(expert.times[rows], np.float32))
        if name in regions and expert.regions is not None:
            batch.regions[name] = _rows(expert.regions, rows, order)
            if expert.region_mask is not None:
                mask = np.empty((len(rows), *expert.region_mask.shape[1:]), np.bool_)
                mask[order] = expert.region_mask[rows[order]]
                batch.region_mask[name] = torch.from_numpy(mask)
    return batch


def _rows(array: np.ndarray, rows: np.ndarray, order: np.ndarray) -> torch.Tensor:
    block = np.empty((len(rows), *array.shape[1:]), np.float32)
    block[order] = array[rows[order]]
    return torch.from_numpy(block)


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
