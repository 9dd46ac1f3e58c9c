"""Search inside long videos: an index of segments, and hits merged into moments.

`vidret index --segment-seconds S` cuts every video into windows of S seconds starting
every S/2 (the last cut at the video's end; a video shorter than S is one segment) and
embeds each window's frames as the model embeds a video (`vidret.data.timeline`). Each
FAISS row is one segment; its metadata is the video's, with `segment: [start, end]`.

A search ranks segments, then merges a video's hits that overlap or touch into one
moment (their union, scored by its best segment), so the answer to "the dog jumps into
the pool" is (video, start, end, score) and a video does not fill the list with its
neighbouring windows. Only hits scoring within `MERGE_TOLERANCE` of the moment's best
widen it; a weaker hit touching it is dropped (as non-maximum suppression would): all
windows of a video overlap their neighbours, so merging every one would make each
moment the whole video.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from vidret.data.moments import video_duration
from vidret.data.timeline import frame_times
from vidret.progress import progress_bar

if TYPE_CHECKING:  # merging hits is on the search path, which runs without PyTorch
    from vidret.data.dataset import VideoDataset
    from vidret.models.types import Embeddings

MERGE_TOLERANCE = 0.05  # similarity below a moment's best that still widens it


def segment_spans(duration: float, seconds: float) -> np.ndarray:
    """`[segments, 2]`: windows of `seconds` every `seconds / 2`, the last ending at the end."""
    if duration <= seconds:
        return np.array([[0.0, duration]])
    step = seconds / 2
    starts = np.arange(0.0, duration - seconds + 1e-9, step)
    if starts[-1] + seconds < duration - 1e-9:
        starts = np.append(starts, duration - seconds)
    return np.stack([starts, starts + seconds], axis=1)


def embed_segments(
    model: Any,
    dataset: VideoDataset,
    experts: list[str],
    videos: list[dict[str, Any]],
    seconds: float,
    progress: bool = True,
    regions: list[str] | tuple[str, ...] = (),
) -> tuple[Embeddings, list[dict[str, Any]]]:
    """Every video's segments embedded, and their metadata (the video's + `segment`)."""
    import torch

    from vidret.batches.windows import window_batch
    from vidret.models.types import Embeddings

    vectors, weights, rows = [], [], []
    for row in progress_bar(range(dataset.num_videos), enabled=progress, desc="segments"):
        duration = video_duration(dataset.videos[row])
        if duration is None:  # from the frames: the last frame's time
            duration = float(max(frame_times(dataset, e, row).max(initial=0.0) for e in experts))
        spans = segment_spans(max(duration, 1e-3), seconds)
        with torch.inference_mode():
            embedded = model.embed_video(window_batch(dataset, experts, row, spans, regions))
        vectors.append(embedded.vectors)
        weights.append(embedded.weights)
        rows += [
            _with_caption(
                {**videos[row], "segment": [round(float(s), 3), round(float(e), 3)]},
                segment_caption(dataset, row, float(s), float(e)),
            )
            for s, e in spans
        ]
    return Embeddings(torch.cat(vectors), torch.cat(weights)), rows


def segment_caption(dataset: VideoDataset, row: int, start: float, end: float) -> str | None:
    """What a segment's card says: the moment caption of the video that overlaps the
    segment most (a caption of another part of the video would mislead), None when no
    moment overlaps it; without moment captions, the video's own first caption."""
    moments = dataset.moments
    if moments is None or not len(moments):
        return dataset.videos[row].get("caption") or _first_caption(dataset, row)
    mine = np.flatnonzero(moments.video == row)
    if not len(mine):
        return None
    overlap = np.minimum(moments.end[mine], end) - np.maximum(moments.start[mine], start)
    best = int(np.argmax(overlap))
    return moments.captions[int(mine[best])] if overlap[best] > 0 else None


def _first_caption(dataset: VideoDataset, row: int) -> str | None:
    at = np.flatnonzero(dataset.caption_video == row)
    return dataset.captions[int(at[0])] if len(at) else None


def _with_caption(meta: dict[str, Any], caption: str | None) -> dict[str, Any]:
    meta = {k: v for k, v in meta.items() if k != "caption"}
    return meta if caption is None else {**meta, "caption": caption}


def merge_hits(
    scores: np.ndarray, ids: np.ndarray, videos: list[dict[str, Any]], k: int
) -> list[tuple[float, dict[str, Any]]]:
    """The best `k` moments from ranked segment hits: a hit that overlaps or touches
    moments of its video already kept widens the best of them (their union, scored by
    its best segment) if it scores within MERGE_TOLERANCE of it, else is dropped; a
    video's moments never overlap each other."""
    spans: list[list[float]] = []
    found: list[tuple[float, dict[str, Any]]] = []
    alive: list[bool] = []
    by_video: dict[str, list[int]] = {}
    for score, i in zip(scores, ids, strict=True):
        meta = videos[int(i)]
        span = [float(meta["segment"][0]), float(meta["segment"][1])]
        mine = by_video.setdefault(meta["video_id"], [])
        touching = [m for m in mine if alive[m] and _touch(span, spans[m])]
        if not touching:
            mine.append(len(found))
            spans.append(span)
            found.append((float(score), meta))
            alive.append(True)
            continue
        keep = touching[0]  # the first kept is the best scored
        if score < found[keep][0] - MERGE_TOLERANCE:
            continue  # a weaker neighbour of the moment: suppressed
        spans[keep] = [min(spans[keep][0], span[0]), max(spans[keep][1], span[1])]
        grown = True
        while grown:  # the union may now reach other moments of the video
            grown = False
            for m in mine:
                if m != keep and alive[m] and _touch(spans[m], spans[keep]):
                    spans[keep] = [
                        min(spans[keep][0], spans[m][0]),
                        max(spans[keep][1], spans[m][1]),
                    ]
                    alive[m], grown = False, True
    out = [
        (score, {**meta, "segment": [round(spans[m][0], 3), round(spans[m][1], 3)]})
        for m, (score, meta) in enumerate(found)
        if alive[m]
    ]
    return out[:k]


def _touch(a: list[float], b: list[float]) -> bool:
    return a[0] <= b[1] and a[1] >= b[0]
