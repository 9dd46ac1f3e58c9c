"""Test-time similarity normalization: dual softmax and QB-Norm, off unless asked for.

Both re-weigh a caption x video similarity matrix by how strongly each candidate matches
*other* queries: a "hub" video that is close to every caption is pushed down. A query's
ranking is what changes, so each direction gets its own matrix:

* text-to-video ranks the row of a caption; the normalizer is per video (a column);
* video-to-text ranks the column of a video; the normalizer is per caption (a row).

Dual softmax (Cheng et al. 2021, the inference side of the dual-softmax loss) multiplies
each similarity by a softmax prior over the *other direction's* queries, with temperature T:

    t2v[c, v] = S[c, v] * softmax_c'(S[c', v] / T)[c]   (prior over the test captions)
    v2t[c, v] = S[c, v] * softmax_v'(S[c, v'] / T)[v]   (prior over the test videos)

It is transductive: the prior is taken over the test queries themselves, as the DSL code
does. QB-Norm (Bogolin et al. 2022, `ioanacroi/qb-norm`) takes it over a *query bank*
instead, drawn from training data and never from the test queries, with an inverse
temperature beta:

    t2v[c, v] = exp(beta S[c, v]) / sum_{q in bank} exp(beta B[q, v])

With the dynamic inverted softmax (the default, as in the reference code) a caption's row
is normalized only when its top video is among the videos that some bank query ranks in
its top k (the "activation set"); other rows keep their plain similarities. For
video-to-text the bank is training videos and the gallery the test captions.

QB-Norm's scores are computed in the log domain (log is monotone, so ranks are
unchanged), in float64; dual softmax's in float64 too unless no prior can leave
float32's normal range. So neither exp(beta S) overflows nor a small prior underflows
into ties. The normalizers' sums of exponentials take float32 terms: they agree with
float64 ones to ~1e-7 relative. The passes run in row chunks under
PyTorch: vectorized, threaded, and a column reduction of a C-ordered matrix done chunk
by chunk stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch

from vidret.errors import VidretError
from vidret.eval.metrics import DEFAULT_KS, metrics_from_ranks, retrieval_ranks

NormalizationMethod = Literal["none", "dual_softmax", "qbnorm"]
METHODS: tuple[str, ...] = ("none", "dual_softmax", "qbnorm")
_CHUNK = 4096  # rows per chunk: bounds the float64 temporaries to ~chunk x columns


@dataclass(frozen=True)
class Normalization:
    """A test-time normalization and its settings (recorded beside the metrics)."""

    method: NormalizationMethod = "none"
    # Defaults chosen on msrvtt-1k's validation split (BENCHMARKS "Gains on msrvtt-1k":
    # mean validation Rsum over four backbones); the references' own defaults, T 0.01
    # (CLIP's logit scale of 100) and beta 20, lost Rsum there on every backbone.
    temperature: float = 0.1  # dual softmax
    beta: float = 5.0  # QB-Norm's inverse temperature
    k: int = 1  # QB-Norm: a bank query activates its top-k gallery items
    dynamic: bool = True  # QB-Norm: dynamic inverted softmax (False: plain inverted softmax)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise VidretError(f"normalization {self.method!r}: choose one of {', '.join(METHODS)}")
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise VidretError(f"dual softmax temperature {self.temperature}: must be > 0")
        if not (np.isfinite(self.beta) and self.beta > 0):
            raise VidretError(f"QB-Norm beta {self.beta}: must be > 0")
        if self.k < 1:
            raise VidretError(f"QB-Norm k {self.k}: must be >= 1")

    @property
    def active(self) -> bool:
        return self.method != "none"

    def describe(self) -> dict[str, Any]:
        """The settings that matter for this method, for results files."""
        if self.method == "dual_softmax":
            return {"method": self.method, "temperature": self.temperature}
        if self.method == "qbnorm":
            d = asdict(self)
            d.pop("temperature")
            return d
        return {"method": "none"}

    def label(self) -> str:
        if self.method == "dual_softmax":
            return f"dual softmax (T={self.temperature:g})"
        if self.method == "qbnorm":
            kind = "dynamic inverted softmax" if self.dynamic else "inverted softmax"
            return f"QB-Norm ({kind}, beta={self.beta:g}, k={self.k})"
        return "none"


@dataclass(frozen=True)
class QueryBank:
    """Similarities of training queries to the test galleries.

    text_to_test_videos: `[bank captions, test videos]`, the t2v bank;
    test_captions_to_videos: `[test captions, bank videos]`, the v2t bank."""

    text_to_test_videos: np.ndarray
    test_captions_to_videos: np.ndarray


def column_logsumexp(M: np.ndarray, scale: float) -> np.ndarray:
    """`log sum_i exp(scale * M[i, j])` for every column j (float64), in row chunks."""
    T = _tensor(M)
    peak = torch.full((T.shape[1],), -torch.inf, dtype=T.dtype)
    for lo in range(0, T.shape[0], _CHUNK):
        peak = torch.maximum(peak, T[lo : lo + _CHUNK].amax(dim=0))
    acc = torch.zeros(T.shape[1], dtype=torch.float64)
    for lo in range(0, T.shape[0], _CHUNK):
        acc += torch.exp((T[lo : lo + _CHUNK] - peak) * scale).sum(dim=0, dtype=torch.float64)
    return (scale * peak.double() + torch.log(acc)).numpy()


def row_logsumexp(M: np.ndarray, scale: float) -> np.ndarray:
    """`log sum_j exp(scale * M[i, j])` for every row i (float64), in row chunks."""
    T = _tensor(M)
    out = torch.empty(T.shape[0], dtype=torch.float64)
    for lo in range(0, T.shape[0], _CHUNK):
        chunk = T[lo : lo + _CHUNK]
        peak = chunk.amax(dim=1, keepdim=True)
        total = torch.exp((chunk - peak) * scale).sum(dim=1, dtype=torch.float64)
        out[lo : lo + _CHUNK] = scale * peak[:, 0].double() + torch.log(total)
    return out.numpy()


def activation_set(bank: np.ndarray, k: int) -> np.ndarray:
    """Bool per gallery column: among the top k of at least one bank query (row)."""
    T = _tensor(bank)
    k = min(k, T.shape[1])
    active = torch.zeros(T.shape[1], dtype=torch.bool)
    for lo in range(0, T.shape[0], _CHUNK):
        active[T[lo : lo + _CHUNK].topk(k, dim=1).indices.reshape(-1)] = True
    return active.numpy()


def column_activation_set(bank: np.ndarray, k: int) -> np.ndarray:
    """Bool per gallery row: among the top k of at least one bank query (column)."""
    T = _tensor(bank)
    k = min(k, T.shape[0])
    active = torch.zeros(T.shape[0], dtype=torch.bool)
    if k == 1:  # a running maximum is far cheaper than a running top k
        active[torch.from_numpy(_column_argmax(bank))] = True
        return active.numpy()
    best = torch.full((0, T.shape[1]), -torch.inf, dtype=T.dtype)
    best_rows = torch.zeros((0, T.shape[1]), dtype=torch.int64)
    for lo in range(0, T.shape[0], _CHUNK):  # a running top k of each column
        chunk = T[lo : lo + _CHUNK]
        rows = torch.arange(lo, lo + len(chunk))[:, None].expand(chunk.shape)
        scores, rows = torch.cat([best, chunk]), torch.cat([best_rows, rows])
        top = scores.topk(min(k, len(scores)), dim=0).indices
        best, best_rows = scores.gather(0, top), rows.gather(0, top)
    active[best_rows.reshape(-1)] = True
    return active.numpy()


def dual_softmax_t2v(S: np.ndarray, temperature: float) -> np.ndarray:
    """S times the softmax over captions of S / T, column by column."""
    dtype = _prior_dtype(S, temperature)
    lse = torch.from_numpy(column_logsumexp(S, 1.0 / temperature)).to(dtype)
    return _rowwise(S, lambda lo, chunk: chunk * torch.exp(chunk / temperature - lse), dtype)


def dual_softmax_v2t(S: np.ndarray, temperature: float) -> np.ndarray:
    """S times the softmax over videos of S / T, row by row."""
    dtype = _prior_dtype(S, temperature)
    lse = torch.from_numpy(row_logsumexp(S, 1.0 / temperature)).to(dtype)

    def rows(lo: int, chunk: torch.Tensor) -> torch.Tensor:
        return chunk * torch.exp(chunk / temperature - lse[lo : lo + len(chunk), None])

    return _rowwise(S, rows, dtype)


def _prior_dtype(S: np.ndarray, temperature: float) -> torch.dtype:
    """float32 where no prior can fall below float32's normal range (exp(-80) ~ 2e-35: the
    spread of the scores over T stays under 80), else float64, so no prior underflows to
    zero and ties candidates it should order. float32 halves the time and memory."""
    T = _tensor(S)
    if T.dtype == torch.float32 and float(T.amax() - T.amin()) / temperature < 80.0:
        return torch.float32
    return torch.float64


def qbnorm_t2v(S: np.ndarray, bank: np.ndarray, norm: Normalization) -> np.ndarray:
    """QB-Norm of each caption's row of `S` [captions, videos], the bank [bank captions,
    videos]. A normalized row holds beta * S - log(sum over the bank of exp(beta * bank));
    a row the dynamic rule leaves alone keeps S (rows are ranked on their own, so the
    scales need not agree)."""
    if bank.shape[1] != S.shape[1]:
        raise VidretError(
            f"query bank has {bank.shape[1]} video columns, the similarities {S.shape[1]}"
        )
    lse = torch.from_numpy(column_logsumexp(bank, norm.beta))
    normalize = torch.ones(S.shape[0], dtype=torch.bool)
    if norm.dynamic:
        top = torch.from_numpy(_row_argmax(S))
        normalize = torch.from_numpy(activation_set(bank, norm.k))[top]

    def rows(lo: int, chunk: torch.Tensor) -> torch.Tensor:
        which = normalize[lo : lo + len(chunk), None]
        return torch.where(which, norm.beta * chunk - lse, chunk)

    return _rowwise(S, rows)


def qbnorm_v2t(S: np.ndarray, bank: np.ndarray, norm: Normalization) -> np.ndarray:
    """QB-Norm of each video's column of `S` [captions, videos], the bank [captions, bank
    videos]: the same rule as `qbnorm_t2v` with videos querying captions."""
    if bank.shape[0] != S.shape[0]:
        raise VidretError(
            f"query bank has {bank.shape[0]} caption rows, the similarities {S.shape[0]}"
        )
    lse = torch.from_numpy(row_logsumexp(bank, norm.beta))
    normalize = torch.ones(S.shape[1], dtype=torch.bool)
    if norm.dynamic:
        top = torch.from_numpy(_column_argmax(S))
        normalize = torch.from_numpy(column_activation_set(bank, norm.k))[top]

    def rows(lo: int, chunk: torch.Tensor) -> torch.Tensor:
        return torch.where(normalize, norm.beta * chunk - lse[lo : lo + len(chunk), None], chunk)

    return _rowwise(S, rows)


def normalized_views(
    S: np.ndarray, norm: Normalization, bank: QueryBank | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The `[captions, videos]` matrices text-to-video and video-to-text rank by."""
    S = np.asarray(S)
    if norm.method == "none":
        return S, S
    if norm.method == "dual_softmax":
        return dual_softmax_t2v(S, norm.temperature), dual_softmax_v2t(S, norm.temperature)
    if bank is None:
        raise VidretError("QB-Norm needs a query bank of training captions and videos")
    return (
        qbnorm_t2v(S, bank.text_to_test_videos, norm),
        qbnorm_v2t(S, bank.test_captions_to_videos, norm),
    )


def _tensor(M: np.ndarray) -> torch.Tensor:
    """A tensor sharing `M`'s memory where it can (C-ordered float32/float64)."""
    M = np.asarray(M)
    if M.dtype not in (np.float32, np.float64):
        M = M.astype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(M))


def _rowwise(
    S: np.ndarray,
    fn: Callable[[int, torch.Tensor], torch.Tensor],
    dtype: torch.dtype = torch.float64,
) -> np.ndarray:
    """`fn(first_row, chunk)` over row chunks of S (as `dtype`), into a new matrix."""
    T = _tensor(S)
    out = torch.empty(T.shape, dtype=dtype)
    for lo in range(0, T.shape[0], _CHUNK):
        out[lo : lo + _CHUNK] = fn(lo, T[lo : lo + _CHUNK].to(dtype))
    return out.numpy()


def _row_argmax(S: np.ndarray) -> np.ndarray:
    return _tensor(S).argmax(dim=1).numpy()


def _column_argmax(S: np.ndarray) -> np.ndarray:
    """Argmax of each column, in row chunks (a column-wise pass over a C-ordered matrix is
    slow in one go)."""
    T = _tensor(S)
    best = torch.full((T.shape[1],), -torch.inf, dtype=T.dtype)
    arg = torch.zeros(T.shape[1], dtype=torch.int64)
    for lo in range(0, T.shape[0], _CHUNK):
        values, rows = T[lo : lo + _CHUNK].max(dim=0)
        better = values > best  # strictly: the first of equal maxima wins, as argmax's
        best, arg = torch.where(better, values, best), torch.where(better, rows + lo, arg)
    return arg.numpy()


def normalized_metrics(
    S: np.ndarray,
    caption_to_video: np.ndarray,
    norm: Normalization,
    bank: QueryBank | None = None,
    extra_ks: tuple[int, ...] = (),
) -> dict[str, Any]:
    """`retrieval_metrics` of the normalized matrices, with the normalization recorded."""
    from vidret.eval.metrics import retrieval_metrics

    if not norm.active:
        return retrieval_metrics(S, caption_to_video, extra_ks)
    t2v_sims, v2t_sims = normalized_views(S, norm, bank)
    ks = tuple(DEFAULT_KS) + tuple(k for k in extra_ks if k not in DEFAULT_KS)
    t2v = metrics_from_ranks(retrieval_ranks(t2v_sims, caption_to_video).t2v, ks)
    v2t = metrics_from_ranks(retrieval_ranks(v2t_sims, caption_to_video).v2t, ks)
    rsum = sum(t2v[f"R@{k}"] + v2t[f"R@{k}"] for k in DEFAULT_KS)
    return {"t2v": t2v, "v2t": v2t, "Rsum": float(rsum), "normalization": norm.describe()}
