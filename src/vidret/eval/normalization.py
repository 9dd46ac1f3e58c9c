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

The normalized scores are computed in the log domain (log is monotone, so ranks are
unchanged) and in float64, so neither exp(beta S) overflows nor a small prior underflows
into ties.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from vidret.errors import VidretError
from vidret.eval.metrics import DEFAULT_KS, metrics_from_ranks, retrieval_ranks

NormalizationMethod = Literal["none", "dual_softmax", "qbnorm"]
METHODS: tuple[str, ...] = ("none", "dual_softmax", "qbnorm")
_CHUNK = 4096  # rows per chunk: bounds the float64 temporaries to ~chunk x columns


@dataclass(frozen=True)
class Normalization:
    """A test-time normalization and its settings (recorded beside the metrics)."""

    method: NormalizationMethod = "none"
    temperature: float = 0.01  # dual softmax: on cosines, CLIP's logit scale of 100
    beta: float = 20.0  # QB-Norm's inverse temperature (the reference's default)
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
    """`log sum_i exp(scale * M[i, j])` for every column j, in row chunks, float64."""
    M = np.asarray(M)
    peak = M.max(axis=0).astype(np.float64)
    acc = np.zeros(M.shape[1], np.float64)
    for lo in range(0, M.shape[0], _CHUNK):
        acc += np.exp(scale * (M[lo : lo + _CHUNK].astype(np.float64) - peak)).sum(axis=0)
    return scale * peak + np.log(acc)


def row_logsumexp(M: np.ndarray, scale: float) -> np.ndarray:
    """`log sum_j exp(scale * M[i, j])` for every row i, in row chunks, float64."""
    M = np.asarray(M)
    out = np.empty(M.shape[0], np.float64)
    for lo in range(0, M.shape[0], _CHUNK):
        chunk = M[lo : lo + _CHUNK].astype(np.float64)
        peak = chunk.max(axis=1, keepdims=True)
        out[lo : lo + _CHUNK] = scale * peak[:, 0] + np.log(
            np.exp(scale * (chunk - peak)).sum(axis=1)
        )
    return out


def activation_set(bank: np.ndarray, k: int) -> np.ndarray:
    """Bool per gallery column: among the top k of at least one bank query (row)."""
    k = min(k, bank.shape[1])
    active = np.zeros(bank.shape[1], bool)
    for lo in range(0, bank.shape[0], _CHUNK):
        chunk = bank[lo : lo + _CHUNK]
        top = np.argpartition(-chunk, k - 1, axis=1)[:, :k] if k > 1 else chunk.argmax(1)[:, None]
        active[top.ravel()] = True
    return active


def dual_softmax_t2v(S: np.ndarray, temperature: float) -> np.ndarray:
    """S times the softmax over captions of S / T, column by column (float64)."""
    lse = column_logsumexp(S, 1.0 / temperature)
    out = np.empty(S.shape, np.float64)
    for lo in range(0, S.shape[0], _CHUNK):
        chunk = S[lo : lo + _CHUNK].astype(np.float64)
        out[lo : lo + _CHUNK] = chunk * np.exp(chunk / temperature - lse)
    return out


def dual_softmax_v2t(S: np.ndarray, temperature: float) -> np.ndarray:
    """S times the softmax over videos of S / T, row by row (float64)."""
    lse = row_logsumexp(S, 1.0 / temperature)
    out = np.empty(S.shape, np.float64)
    for lo in range(0, S.shape[0], _CHUNK):
        chunk = S[lo : lo + _CHUNK].astype(np.float64)
        out[lo : lo + _CHUNK] = chunk * np.exp(chunk / temperature - lse[lo : lo + _CHUNK, None])
    return out


def qbnorm_rows(S: np.ndarray, bank: np.ndarray, norm: Normalization) -> np.ndarray:
    """QB-Norm of each query row of `S` [queries, gallery] with `bank` [bank, gallery].

    A normalized row holds beta * S - log(sum over the bank of exp(beta * bank)); a row the
    dynamic rule leaves alone keeps S (rows are ranked on their own, so the scales need
    not agree)."""
    if bank.shape[1] != S.shape[1]:
        raise VidretError(
            f"query bank has {bank.shape[1]} gallery columns, the similarities {S.shape[1]}"
        )
    lse = column_logsumexp(bank, norm.beta)
    if norm.dynamic:
        normalize = activation_set(bank, norm.k)[np.asarray(S).argmax(axis=1)]
    else:
        normalize = np.ones(S.shape[0], bool)
    out = np.empty(S.shape, np.float64)
    for lo in range(0, S.shape[0], _CHUNK):
        chunk = S[lo : lo + _CHUNK].astype(np.float64)
        rows = normalize[lo : lo + _CHUNK]
        chunk[rows] = norm.beta * chunk[rows] - lse
        out[lo : lo + _CHUNK] = chunk
    return out


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
    t2v = qbnorm_rows(S, bank.text_to_test_videos, norm)
    # Video-to-text: videos query the test captions; transpose so queries are rows.
    v2t = qbnorm_rows(S.T, bank.test_captions_to_videos.T, norm).T
    return t2v, v2t


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
