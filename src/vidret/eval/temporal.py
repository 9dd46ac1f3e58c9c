"""Moment retrieval metrics: temporal IoU, R@n at IoU thresholds, mean IoU.

The definitions moment-localization papers use (TALL, 2D-TAN, CDNet's tables): a query
counts for `R{n}@{m}` when at least one of its n best predicted spans has IoU >= m with
its annotated span; `mIoU` is the mean IoU of each query's best prediction. Numbers are
percentages, like the retrieval metrics. Also what every localizer shares: its
predictions (`MomentPredictions`) and non-maximum suppression of its spans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLDS = (0.3, 0.5, 0.7)
RANKS = (1, 5)


def temporal_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of spans `[..., 2]` (start, end) against `[..., 2]`, broadcast; 0 when apart."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    inter = np.clip(np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def moment_metrics(
    predictions: np.ndarray,
    truth: np.ndarray,
    ranks: tuple[int, ...] = RANKS,
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> dict[str, float]:
    """`predictions` `[queries, n, 2]`: each query's spans, best first (n >= max rank,
    or fewer: missing ranks count as misses); `truth` `[queries, 2]`."""
    predictions = np.asarray(predictions, np.float64)
    truth = np.asarray(truth, np.float64)
    if predictions.ndim != 3 or predictions.shape[2] != 2 or truth.shape != (len(predictions), 2):
        raise ValueError(
            f"predictions {predictions.shape} and truth {truth.shape}: give [queries, n, 2] "
            "and [queries, 2]"
        )
    iou = temporal_iou(predictions, truth[:, None, :])  # [queries, n]
    out: dict[str, float] = {}
    for n in ranks:
        best = iou[:, :n].max(axis=1) if iou.shape[1] else np.zeros(len(iou))
        for m in thresholds:
            out[f"R{n}@{m}"] = float(100 * np.mean(best >= m - 1e-9))
    out["mIoU"] = float(100 * iou[:, 0].mean()) if iou.shape[1] else 0.0
    return out


NMS_IOU = 0.5
TOP = 5


@dataclass
class MomentPredictions:
    spans: np.ndarray  # [moments, TOP, 2] best first
    truth: np.ndarray  # [moments, 2]
    videos: int


def non_maximum_suppression(spans: np.ndarray, scores: np.ndarray, keep: int = TOP) -> np.ndarray:
    """The best `keep` spans, each overlapping every better kept one by IoU <= NMS_IOU;
    fewer spans than `keep` are padded by repeating the last."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for i in order:
        if all(temporal_iou(spans[i], spans[j]) <= NMS_IOU for j in kept):
            kept.append(int(i))
        if len(kept) == keep:
            break
    while len(kept) < keep:
        kept.append(kept[-1])
    return spans[kept]
