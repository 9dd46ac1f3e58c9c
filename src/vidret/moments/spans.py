"""Between frames and seconds: each frame's span of time, a moment's target frames, and
the best spans read off CDNet's start and end scores.

A frame covers the time from the midpoint with its previous frame to the midpoint with
its next one; the first starts at 0 and the last ends at the video's duration. A span
predicted from start frame i to end frame j is (edge i, edge j + 1).
"""

from __future__ import annotations

import numpy as np
import torch

from vidret.eval.temporal import TOP, non_maximum_suppression

CANDIDATES = 200  # best (start, end) pairs kept before non-maximum suppression


def frame_edges(times: np.ndarray, duration: float) -> np.ndarray:
    """`[T + 1]` seconds: where each of the T frames at `times` starts and ends."""
    times = np.asarray(times, np.float64)
    middle = (times[1:] + times[:-1]) / 2
    return np.concatenate([[0.0], middle, [max(duration, float(times[-1]) if len(times) else 0.0)]])


def target_frames(edges: np.ndarray, start: float, end: float) -> tuple[int, int, np.ndarray]:
    """The frames holding a moment's start and its end, and which frames lie inside it
    (more than half of the frame's span within [start, end]; for a moment shorter than
    that, the frames it touches)."""
    frames = len(edges) - 1
    first = int(np.clip(np.searchsorted(edges, start, side="right") - 1, 0, frames - 1))
    last = int(np.clip(np.searchsorted(edges, end, side="left") - 1, first, frames - 1))
    overlap = np.clip(np.minimum(edges[1:], end) - np.maximum(edges[:-1], start), 0, None)
    inside = overlap > 0.5 * (edges[1:] - edges[:-1])
    if not inside.any():  # a moment shorter than half a frame: its frames, never none
        inside[first : last + 1] = True
    return first, last, inside


def best_spans(
    start_logits: torch.Tensor, end_logits: torch.Tensor, edges: np.ndarray, top: int = TOP
) -> np.ndarray:
    """`[top, 2]` seconds, best first, of one video's valid frames (logits `[T]`, edges
    `[T + 1]`): pairs start <= end scored p_start(i) p_end(j), then non-maximum
    suppression."""
    frames = len(edges) - 1
    p_start = start_logits[:frames].float().log_softmax(0)
    p_end = end_logits[:frames].float().log_softmax(0)
    joint = p_start[:, None] + p_end[None, :]
    joint = joint.masked_fill(torch.ones_like(joint, dtype=torch.bool).tril(-1), float("-inf"))
    flat = joint.flatten()
    keep = min(CANDIDATES, int(torch.isfinite(flat).sum()))
    scores, order = flat.topk(keep)
    i, j = np.divmod(order.numpy(), frames)
    spans = np.stack([edges[i], edges[j + 1]], axis=1)
    return non_maximum_suppression(spans, scores.numpy(), keep=top)
