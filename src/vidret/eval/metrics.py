"""Retrieval metrics with the conventions of the MMT and Collaborative-Experts code.

Definitions (docs: ../shared/docs/METHOD.md section 6):

* ranks are 0-based: the number of candidates scored strictly higher than the positive,
  plus half the number of *other* candidates tied with it (ties averaged over all orders);
* R@1 = 100 * mean(rank == 0); R@K = 100 * mean(rank < K) for K >= 5; MdR = median + 1;
  MnR = mean + 1;
* text-to-video: each caption queries all videos;
* video-to-text: a video's rank is the minimum, over its captions, of that caption's
  rank among all captions.

How it is computed: ranks are *counted*, never sorted. The minimum over a video's
captions is reached by its highest-scoring caption (any lower-scoring caption has at
least as many candidates above it as that one has above-or-tied), so each video needs
one threshold, and both directions are counted in a single pass over the matrix, in
row chunks, with threads (NumPy releases the GIL). Memory beyond the input is a few
small buffers per thread.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

# At most 255 rows per chunk, so that per-column hit counts of one chunk fit in uint8.
_CHUNK_ROWS = 255
DEFAULT_KS = (1, 5, 10)


@dataclass(frozen=True)
class RetrievalRanks:
    """0-based ranks with ties averaged: one per caption (t2v) and one per video (v2t)."""

    t2v: np.ndarray  # float64 [num_captions]
    v2t: np.ndarray  # float64 [num_videos]


def retrieval_metrics(
    sims: Any, caption_to_video: Any, extra_ks: Sequence[int] = (), threads: int | None = None
) -> dict[str, Any]:
    """Text-to-video and video-to-text metrics of a caption x video similarity matrix.

    Args:
        sims: `[num_captions, num_videos]` similarities, NumPy array or torch tensor.
        caption_to_video: int array `[num_captions]`: the video column of each caption.
            Every video must have at least one caption.
        extra_ks: more recall cut-offs to report, e.g. `(50,)` for ActivityNet's R@50.
        threads: worker threads (default: the CPUs this process may use).

    Returns:
        `{"t2v": {"R@1", "R@5", "R@10", "MdR", "MnR"}, "v2t": {...}, "Rsum": float}`.
    """
    ranks = retrieval_ranks(sims, caption_to_video, threads=threads)
    ks = tuple(DEFAULT_KS) + tuple(k for k in extra_ks if k not in DEFAULT_KS)
    t2v = metrics_from_ranks(ranks.t2v, ks)
    v2t = metrics_from_ranks(ranks.v2t, ks)
    rsum = sum(t2v[f"R@{k}"] + v2t[f"R@{k}"] for k in DEFAULT_KS)
    return {"t2v": t2v, "v2t": v2t, "Rsum": float(rsum)}


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """R@K, MdR and MnR from 0-based averaged ranks (see the module docstring)."""
    ranks = np.asarray(ranks, np.float64)
    if ranks.size == 0:
        raise ValueError("no ranks to summarize: the similarity matrix has no queries")
    out: dict[str, float] = {}
    for k in ks:
        hits = ranks == 0 if k == 1 else ranks < k
        out[f"R@{k}"] = float(100.0 * hits.mean())
    out["MdR"] = float(np.median(ranks) + 1.0)
    out["MnR"] = float(ranks.mean() + 1.0)
    return out


def retrieval_ranks(sims: Any, caption_to_video: Any, threads: int | None = None) -> RetrievalRanks:
    """Count the t2v rank of every caption and the v2t rank of every video in one pass."""
    S = _as_numpy_matrix(sims)
    num_captions, num_videos = S.shape
    c2v = _check_caption_to_video(caption_to_video, num_captions, num_videos)

    positives = S[np.arange(num_captions), c2v]
    _refuse_nan(positives, "the positive (caption, own video) similarities")
    # Each video's best caption score: the v2t threshold (see module docstring).
    best = np.full(num_videos, -np.inf, dtype=S.dtype)
    np.maximum.at(best, c2v, positives)

    threads = threads or len(os.sched_getaffinity(0))
    bounds = np.linspace(0, num_captions, max(1, min(threads, num_captions)) + 1).astype(int)
    blocks = list(itertools.pairwise(bounds))

    t2v_above = np.empty(num_captions, np.int64)
    t2v_tied = np.empty(num_captions, np.int64)

    def count_block(block: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, bool]:
        lo, hi = block
        return _count_rows(S, lo, hi, positives, best, t2v_above, t2v_tied)

    if len(blocks) == 1:
        results = [count_block(blocks[0])]
    else:
        with ThreadPoolExecutor(len(blocks)) as pool:
            results = list(pool.map(count_block, blocks))
    if any(has_nan for _, _, has_nan in results):
        raise ValueError(
            "the similarity matrix contains NaN; ranks would be meaningless. A common cause "
            "is normalizing an all-zero embedding."
        )
    v2t_above = sum(r[0] for r in results)
    v2t_tied = sum(r[1] for r in results)

    # `tied` counts the positive itself (t2v) or the best caption itself (v2t).
    t2v = t2v_above + 0.5 * (t2v_tied - 1)
    v2t = v2t_above + 0.5 * (v2t_tied - 1)
    return RetrievalRanks(t2v=t2v.astype(np.float64), v2t=v2t.astype(np.float64))


def _count_rows(
    S: np.ndarray,
    lo: int,
    hi: int,
    positives: np.ndarray,
    best: np.ndarray,
    t2v_above: np.ndarray,
    t2v_tied: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Count rows [lo, hi): fills the t2v counts in place, returns v2t counts and a NaN flag."""
    num_videos = S.shape[1]
    v2t_above = np.zeros(num_videos, np.int64)
    v2t_tied = np.zeros(num_videos, np.int64)
    mask = np.empty((_CHUNK_ROWS, num_videos), dtype=bool)
    has_nan = False
    for start in range(lo, hi, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, hi)
        rows = stop - start
        chunk = S[start:stop]
        m = mask[:rows]
        pos = positives[start:stop, None]
        np.greater(chunk, pos, out=m)
        t2v_above[start:stop] = np.count_nonzero(m, axis=1)
        np.equal(chunk, pos, out=m)
        t2v_tied[start:stop] = np.count_nonzero(m, axis=1)
        # Column sums of at most 255 booleans fit in uint8: far faster than int64 sums.
        np.greater(chunk, best, out=m)
        v2t_above += m.view(np.uint8).sum(axis=0, dtype=np.uint8)
        np.equal(chunk, best, out=m)
        v2t_tied += m.view(np.uint8).sum(axis=0, dtype=np.uint8)
        # NaN is never >, < or == anything, so it would silently lower every rank: detect
        # it from the row maxima, which NaN propagates into.
        has_nan = has_nan or bool(np.isnan(chunk.max(axis=1)).any())
    return v2t_above, v2t_tied, has_nan


def _as_numpy_matrix(sims: Any) -> np.ndarray:
    if hasattr(sims, "detach") and hasattr(sims, "cpu"):
        import torch  # already imported by whoever made the tensor, so this costs nothing

        t = sims.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()  # NumPy has no bfloat16; the widening is exact, so ties are kept
        sims = t.numpy()
    S = np.asarray(sims)
    if S.ndim != 2:
        raise ValueError(f"sims must be a [num_captions, num_videos] matrix, got shape {S.shape}")
    if S.dtype.kind not in "fiu":
        raise ValueError(f"sims must be numeric, got dtype {S.dtype}")
    if S.dtype.kind in "iu":
        S = S.astype(np.float64)
    return S


def _check_caption_to_video(c2v: Any, num_captions: int, num_videos: int) -> np.ndarray:
    if hasattr(c2v, "detach"):
        c2v = c2v.detach().cpu().numpy()
    c2v = np.asarray(c2v)
    if c2v.shape != (num_captions,):
        raise ValueError(
            f"caption_to_video must have one entry per caption ({num_captions}), "
            f"got shape {c2v.shape}"
        )
    if c2v.dtype.kind not in "iu":
        raise ValueError(f"caption_to_video must hold integers, got dtype {c2v.dtype}")
    c2v = c2v.astype(np.int64)
    if num_captions and (c2v.min() < 0 or c2v.max() >= num_videos):
        raise ValueError(f"caption_to_video has entries outside 0..{num_videos - 1}")
    missing = np.flatnonzero(np.bincount(c2v, minlength=num_videos) == 0)
    if len(missing):
        raise ValueError(
            f"{len(missing)} video column(s) have no caption (first: {missing[:5].tolist()}); "
            "video-to-text ranks need at least one caption per video"
        )
    return c2v


def _refuse_nan(values: np.ndarray, what: str) -> None:
    if np.isnan(values).any():
        first = int(np.flatnonzero(np.isnan(values))[0])
        raise ValueError(f"{what} contain NaN (first at caption {first})")
