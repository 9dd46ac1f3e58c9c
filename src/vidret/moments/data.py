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

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidret.config.moments import MomentRunConfig
from vidret.data.dataset import VideoDataset
from vidret.data.moments import Moments, video_duration
from vidret.data.splits import load_named_split
from vidret.data.timeline import frame_times
from vidret.errors import VidretError
from vidret.losses.moment import MomentTargets
from vidret.models.cdnet import MomentBatch
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
        self._videos: dict[int, VideoFrames] = {}
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

    def video(self, row: int) -> VideoFrames:
        """Video `row`'s frames as CDNet reads them (cached: the same for every caption)."""
        if row not in self._videos:
            self._videos[row] = read_frames(self.dataset, self.expert, row, self.max_frames)
        return self._videos[row]

    def edges(self, row: int) -> np.ndarray:
        return self.video(row).edges

    def batch(self, indices: np.ndarray) -> tuple[MomentBatch, MomentTargets]:
        """Moment captions `indices`, each with its whole video, padded."""
        videos = [self.video(int(r)) for r in self.moments.video[indices]]
        longest = max(len(v.times) for v in videos)
        edges = np.ones((len(indices), longest + 1), np.float32)
        inside = np.zeros((len(indices), longest), np.float32)
        first = np.zeros(len(indices), np.int64)
        last = np.zeros(len(indices), np.int64)
        span = np.zeros((len(indices), 2), np.float32)
        for b, (i, video) in enumerate(zip(indices, videos, strict=True)):
            n, duration = len(video.times), video.edges[-1]
            edges[b, : n + 1] = video.edges / duration
            start, end = self.moments.start[i], self.moments.end[i]
            first[b], last[b], inside[b, :n] = target_frames(video.edges, start, end)
            span[b] = (start / duration, end / duration)
        batch = MomentBatch(**frame_inputs(videos), **text_inputs(self.texts, indices))
        targets = MomentTargets(
            torch.from_numpy(first),
            torch.from_numpy(last),
            torch.from_numpy(inside),
            torch.from_numpy(edges),
            torch.from_numpy(span),
        )
        return batch, targets


@dataclass
class VideoFrames:
    """The frames of a video (or of a window of it) as CDNet reads them."""

    features: np.ndarray  # float32 [frames, dim]
    times: np.ndarray  # [frames] seconds
    edges: np.ndarray  # [frames + 1] seconds: where each frame starts and ends


def read_frames(
    dataset: VideoDataset,
    expert: str,
    row: int,
    max_frames: int,
    window: tuple[float, float] | None = None,
) -> VideoFrames:
    """Video `row`'s frames of `expert` (those whose time lies in `window`, if given,
    at least the nearest one), pooled to at most `max_frames`: each pooled frame the mean
    of a run of neighbours, spanning their time. Reads only the frames it keeps."""
    stored = dataset.experts[expert]
    times = frame_times(dataset, expert, row)
    duration = video_duration(dataset.videos[row])
    edges = frame_edges(times, duration if duration else float(times[-1]))
    first, last = 0, len(times)
    if window is not None:
        inside = np.flatnonzero((times >= window[0]) & (times < window[1]))
        if len(inside):
            first, last = int(inside[0]), int(inside[-1]) + 1
        else:  # a window between two frames: the nearest one
            first = int(np.argmin(np.abs(times - (window[0] + window[1]) / 2)))
            last = first + 1
    features = np.asarray(stored.features[row, first:last], np.float32)
    n = last - first
    groups = np.round(np.linspace(0, n, min(n, max_frames) + 1)).astype(np.int64)
    return VideoFrames(
        _group_means(features, groups),
        _group_means(times[first:last], groups),
        edges[first : last + 1][groups],
    )


def frame_inputs(videos: list[VideoFrames]) -> dict[str, torch.Tensor]:
    """The `frames`, `frame_mask` and `position` fields of a MomentBatch: positions are
    fractions of each video's (or window's) span."""
    longest = max(len(v.times) for v in videos)
    frames = np.zeros((len(videos), longest, videos[0].features.shape[1]), np.float32)
    position = np.zeros((len(videos), longest), np.float32)
    for b, v in enumerate(videos):
        n, start, length = len(v.times), v.edges[0], v.edges[-1] - v.edges[0]
        frames[b, :n] = v.features
        position[b, :n] = (v.times - start) / max(length, 1e-9)
    lengths = np.array([len(v.times) for v in videos])
    return {
        "frames": torch.from_numpy(frames),
        "frame_mask": torch.from_numpy(np.arange(longest)[None] < lengths[:, None]),
        "position": torch.from_numpy(position),
    }


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
