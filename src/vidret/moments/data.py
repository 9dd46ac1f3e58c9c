"""Moment captions of a dataset folder as padded batches for CDNet.

Each example is (the whole video a moment caption belongs to, the caption); its target is
the caption's span. A video of more than `data.max_frames` frames is read as that many,
each the mean of a run of neighbouring frames spanning their time (CDNet's cost grows
with frames; span-predicting models resample to a fixed length the same way).
Video frames are read from the dataset's arrays per batch (long videos are never all
held in memory); captions are encoded once by Sentence-BERT (sentence vector and word
tokens) and cached with the dataset (`vidret.text.cache`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidret.data.dataset import VideoDataset
from vidret.data.moments import Moments, video_duration
from vidret.data.splits import load_named_split
from vidret.data.timeline import frame_times
from vidret.errors import VidretError
from vidret.losses.moment import MomentTargets
from vidret.models.cdnet import MomentBatch
from vidret.moments.config import MomentRunConfig
from vidret.moments.spans import frame_edges, target_frames
from vidret.text.cache import TextFeatureCache
from vidret.text.sentence_bert import EncodedTexts, resolve_model_path


def choose_expert(dataset: VideoDataset, wanted: str | None) -> str:
    """The visual expert CDNet reads: `wanted`, else the dataset's only one."""
    names = sorted(dataset.experts)
    if wanted is not None:
        if wanted not in dataset.experts:
            raise VidretError(
                f"{dataset.root}: data.expert={wanted!r} is not among its experts "
                f"({', '.join(names)})"
            )
        return wanted
    if len(names) != 1:
        raise VidretError(
            f"{dataset.root}: several visual experts ({', '.join(names)}); choose one "
            "with --set data.expert=NAME"
        )
    return names[0]


class MomentData:
    """A moment dataset ready for CDNet: frames, times, captions' features, splits."""

    def __init__(self, root: Path, cfg: MomentRunConfig, progress: bool = True):
        self.root = root
        self.dataset = VideoDataset.open(root)
        moments = self.dataset.moments
        if moments is None or not len(moments):
            raise VidretError(
                f"{root}: no moment captions (moments.jsonl); build a moment dataset with "
                "`vidret data moments SRC DST --clips K`"
            )
        self.moments: Moments = moments
        self.expert = choose_expert(self.dataset, cfg.data.expert)
        self.video_dim = self.dataset.experts[self.expert].dim
        self.max_frames = cfg.data.max_frames
        self._groups: dict[int, np.ndarray] = {}
        self._edges: dict[int, np.ndarray] = {}
        self._times: dict[int, np.ndarray] = {}
        self.text_model = resolve_model_path(cfg.text.model)
        cache = TextFeatureCache.for_dataset(
            root, self.text_model, with_tokens=True, max_tokens=cfg.text.max_tokens
        )
        self.texts: EncodedTexts = cache.get(moments.captions, progress=progress)
        self.text_dim = int(self.texts.sentence.shape[1])
        self.split_names = dict(cfg.data.names)

    def split(self, part: str) -> np.ndarray:
        """Indices of the moment captions whose video is in split `part` (train/val/test)."""
        name = self.split_names.get(part, part)
        index = self.dataset.video_index()
        rows = {index[v] for v in load_named_split(self.root, name, set(index))}
        return np.flatnonzero(np.isin(self.moments.video, sorted(rows)))

    def groups(self, row: int) -> np.ndarray:
        """Where each of video `row`'s (pooled) frames begins among its stored frames, and
        where the last ends: `[frames + 1]` indices."""
        if row not in self._groups:
            n = int(self.dataset.experts[self.expert].lengths[row])
            m = min(n, self.max_frames)
            self._groups[row] = np.round(np.linspace(0, n, m + 1)).astype(np.int64)
        return self._groups[row]

    def times(self, row: int) -> np.ndarray:
        """Seconds of each (pooled) frame of video `row`: the mean of its stored frames'."""
        if row not in self._times:
            stored = frame_times(self.dataset, self.expert, row)
            self._times[row] = _group_means(stored, self.groups(row))
        return self._times[row]

    def edges(self, row: int) -> np.ndarray:
        """Seconds where each (pooled) frame of video `row` starts and ends (`[frames + 1]`):
        a pooled frame spans its stored frames."""
        if row not in self._edges:
            stored = frame_times(self.dataset, self.expert, row)
            duration = video_duration(self.dataset.videos[row])
            edges = frame_edges(stored, duration if duration else float(stored[-1]))
            self._edges[row] = edges[self.groups(row)]
        return self._edges[row]

    def frames(self, row: int) -> np.ndarray:
        """`[frames, dim]` float32: video `row`'s features, pooled to at most max_frames."""
        n = int(self.dataset.experts[self.expert].lengths[row])
        stored = np.asarray(self.dataset.experts[self.expert].features[row, :n], np.float32)
        return _group_means(stored, self.groups(row))

    def batch(self, indices: np.ndarray) -> tuple[MomentBatch, MomentTargets]:
        """Moment captions `indices`, each with its whole video, padded."""
        rows = self.moments.video[indices]
        lengths = [len(self.times(int(r))) for r in rows]
        frames = np.zeros((len(indices), max(lengths), self.video_dim), np.float32)
        position = np.zeros((len(indices), max(lengths)), np.float32)
        edges = np.zeros((len(indices), max(lengths) + 1), np.float32)
        inside = np.zeros((len(indices), max(lengths)), np.float32)
        first = np.zeros(len(indices), np.int64)
        last = np.zeros(len(indices), np.int64)
        span = np.zeros((len(indices), 2), np.float32)
        for b, (i, row, n) in enumerate(zip(indices, rows, lengths, strict=True)):
            frames[b, :n] = self.frames(int(row))
            e = self.edges(int(row))
            duration = e[-1]
            position[b, :n] = self.times(int(row)) / duration
            edges[b, : n + 1] = e / duration
            edges[b, n + 1 :] = 1.0
            start, end = self.moments.start[i], self.moments.end[i]
            first[b], last[b], inside[b, :n] = target_frames(e, start, end)
            span[b] = (start / duration, end / duration)
        mask = np.arange(max(lengths))[None] < np.asarray(lengths)[:, None]
        batch = MomentBatch(
            frames=torch.from_numpy(frames),
            frame_mask=torch.from_numpy(mask),
            position=torch.from_numpy(position),
            **text_inputs(self.texts, indices),
        )
        targets = MomentTargets(
            torch.from_numpy(first),
            torch.from_numpy(last),
            torch.from_numpy(inside),
            torch.from_numpy(edges),
            torch.from_numpy(span),
        )
        return batch, targets


def text_inputs(texts: EncodedTexts, indices: np.ndarray) -> dict[str, torch.Tensor]:
    """The `tokens`, `token_mask` and `sentence` fields of a MomentBatch."""
    assert texts.tokens is not None and texts.lengths is not None
    lengths = np.maximum(texts.lengths[indices], 1)
    longest = int(lengths.max())
    tokens = np.asarray(texts.tokens[indices, :longest], np.float32)
    return {
        "tokens": torch.from_numpy(tokens),
        "token_mask": torch.from_numpy(np.arange(longest)[None] < lengths[:, None]),
        "sentence": torch.from_numpy(np.asarray(texts.sentence[indices], np.float32)),
    }


def _group_means(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The mean of `x`'s rows over each group `groups[g]:groups[g + 1]`."""
    sums = np.add.reduceat(np.asarray(x, np.float64), groups[:-1], axis=0)
    return (sums / np.diff(groups).reshape(-1, *([1] * (x.ndim - 1)))).astype(x.dtype)
