"""The metrics against a slow, obviously-correct reference, on matrices built to be awkward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidret.eval.metrics import metrics_from_ranks, retrieval_metrics, retrieval_ranks


def reference_ranks(S: np.ndarray, c2v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loops, straight from the definition: higher count + half the *other* ties."""
    n, m = S.shape
    t2v = np.zeros(n)
    for i in range(n):
        pos = S[i, c2v[i]]
        higher = sum(1 for j in range(m) if S[i, j] > pos)
        ties = sum(1 for j in range(m) if S[i, j] == pos and j != c2v[i])
        t2v[i] = higher + ties / 2
    v2t = np.zeros(m)
    for j in range(m):
        best = np.inf
        for g in np.flatnonzero(c2v == j):
            pos = S[g, j]
            higher = sum(1 for k in range(n) if S[k, j] > pos)
            ties = sum(1 for k in range(n) if S[k, j] == pos and k != g)
            best = min(best, higher + ties / 2)
        v2t[j] = best
    return t2v, v2t


def reference_metrics(ranks: np.ndarray) -> dict[str, float]:
    return {
        "R@1": 100 * np.mean([r == 0 for r in ranks]),
        "R@5": 100 * np.mean([r < 5 for r in ranks]),
        "R@10": 100 * np.mean([r < 10 for r in ranks]),
        "MdR": float(np.median(ranks)) + 1,
        "MnR": float(np.mean(ranks)) + 1,
    }


def tied_matrix(
    rng: np.random.Generator, n_videos: int, levels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Uneven captions per video (1-4) and scores from few levels, so ties are everywhere."""
    per_video = rng.integers(1, 5, size=n_videos)
    c2v = np.repeat(np.arange(n_videos), per_video)
    rng.shuffle(c2v)
    S = rng.integers(0, levels, size=(len(c2v), n_videos)).astype(np.float32)
    return S, c2v


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [2, 5, 1000])
def test_ranks_match_reference(seed: int, levels: int) -> None:
    rng = np.random.default_rng(seed)
    S, c2v = tied_matrix(rng, n_videos=int(rng.integers(2, 40)), levels=levels)
    ranks = retrieval_ranks(S, c2v)
    t2v, v2t = reference_ranks(S, c2v)
    np.testing.assert_array_equal(ranks.t2v, t2v)
    np.testing.assert_array_equal(ranks.v2t, v2t)
    m = retrieval_metrics(S, c2v)
    for direction, ref in (("t2v", t2v), ("v2t", v2t)):
        for k, v in reference_metrics(ref).items():
            assert m[direction][k] == pytest.approx(v, abs=1e-12), (direction, k)


def test_chunking_and_threads_do_not_change_ranks() -> None:
    # More rows than one chunk (255) and blocks split unevenly between threads.
    rng = np.random.default_rng(1)
    S, c2v = tied_matrix(rng, n_videos=300, levels=7)
    assert len(c2v) > 3 * 255
    one = retrieval_ranks(S, c2v, threads=1)
    three = retrieval_ranks(S, c2v, threads=3)
    np.testing.assert_array_equal(one.t2v, three.t2v)
    np.testing.assert_array_equal(one.v2t, three.v2t)
    ref_t2v, ref_v2t = reference_ranks(S, c2v)
    np.testing.assert_array_equal(one.t2v, ref_t2v)
    np.testing.assert_array_equal(one.v2t, ref_v2t)


def test_positive_tied_at_top_is_a_miss_at_1_but_a_hit_at_5() -> None:
    # Caption 0's own video ties with one other at the top: rank 0.5.
    S = np.array([[0.9, 0.9, 0.1], [0.0, 0.8, 0.2], [0.1, 0.2, 0.7]])
    m = retrieval_metrics(S, np.array([0, 1, 2]))
    ranks = retrieval_ranks(S, np.array([0, 1, 2]))
    assert ranks.t2v.tolist() == [0.5, 0.0, 0.0]
    assert m["t2v"]["R@1"] == pytest.approx(200 / 3)
    assert m["t2v"]["R@5"] == 100.0


def test_v2t_takes_the_best_of_a_videos_captions() -> None:
    # Video 0 has captions 0 and 1: caption 1 is second in its column (behind caption 2),
    # caption 0 last, so video 0's rank is 1. Video 1's caption 2 is behind caption 0.
    S = np.array([[0.1, 0.5], [0.8, 0.1], [0.9, 0.3]])
    ranks = retrieval_ranks(S, np.array([0, 0, 1]))
    assert ranks.v2t.tolist() == [1.0, 1.0]


def test_all_equal_scores_give_the_average_rank() -> None:
    S = np.zeros((4, 4))
    ranks = retrieval_ranks(S, np.arange(4))
    assert ranks.t2v.tolist() == [1.5] * 4  # 3 others tied: half of them ahead
    m = retrieval_metrics(S, np.arange(4))
    assert m["t2v"]["R@1"] == 0.0 and m["t2v"]["MdR"] == 2.5


def test_torch_input_and_dtypes_agree_with_numpy() -> None:
    rng = np.random.default_rng(3)
    S, c2v = tied_matrix(rng, n_videos=25, levels=9)
    expected = retrieval_metrics(S, c2v)
    for tensor in (
        torch.from_numpy(S),
        torch.from_numpy(S).to(torch.bfloat16),
        torch.from_numpy(S).double(),
        torch.from_numpy(S).half(),
    ):
        assert retrieval_metrics(tensor, torch.from_numpy(c2v)) == expected
    assert retrieval_metrics(S.astype(np.int32), c2v) == expected


def test_extra_k_and_rsum() -> None:
    rng = np.random.default_rng(4)
    S = rng.standard_normal((120, 60))
    c2v = np.repeat(np.arange(60), 2)
    m = retrieval_metrics(S, c2v, extra_ks=(50,))
    assert set(m["t2v"]) == {"R@1", "R@5", "R@10", "R@50", "MdR", "MnR"}
    assert m["Rsum"] == pytest.approx(
        sum(m[d][f"R@{k}"] for d in ("t2v", "v2t") for k in (1, 5, 10))
    )
    t2v, _ = reference_ranks(S, c2v)
    assert m["t2v"]["R@50"] == pytest.approx(100 * np.mean(t2v < 50))


def test_perfect_retrieval() -> None:
    # Three captions per video, each scoring its own video highest, none tied.
    S = np.repeat(np.eye(5), 3, axis=0) + np.linspace(0, 0.1, 15)[:, None]
    m = retrieval_metrics(S, np.repeat(np.arange(5), 3))
    assert m["t2v"]["R@1"] == 100.0 and m["v2t"]["R@1"] == 100.0 and m["t2v"]["MdR"] == 1.0


def test_a_videos_identical_captions_tie_with_each_other() -> None:
    # The Collaborative-Experts convention: in video-to-text, a video's other captions are
    # candidates like any other, so two of its captions with equal scores tie (rank 0.5).
    S = np.array([[0.9, 0.0], [0.9, 0.0], [0.0, 0.9]])
    ranks = retrieval_ranks(S, np.array([0, 0, 1]))
    assert ranks.v2t.tolist() == [0.5, 0.0]


@pytest.mark.parametrize(
    ("S", "c2v", "message"),
    [
        (np.zeros((3, 2)), np.array([0, 0, 0]), "no caption"),
        (np.zeros((3, 2)), np.array([0, 1]), "one entry per caption"),
        (np.zeros((3, 2)), np.array([0, 1, 2]), "outside"),
        (np.zeros((3, 2)), np.array([0.0, 1.0, 1.0]), "integers"),
        (np.zeros(3), np.array([0, 1, 2]), "matrix"),
        (np.array([[np.nan, 0.0], [0.0, 1.0]]), np.array([0, 1]), "NaN"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), np.array([0, 1]), "NaN"),
    ],
)
def test_bad_input_is_refused_clearly(S: np.ndarray, c2v: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(S, c2v)


def test_metrics_from_ranks_rejects_empty() -> None:
    with pytest.raises(ValueError, match="no ranks"):
        metrics_from_ranks(np.array([]))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda m: st.tuples(
            st.just(m),
            st.lists(st.integers(0, m - 1), min_size=m, max_size=3 * m),
            st.integers(0, 2**31 - 1),
        )
    )
)
def test_property_matches_reference(case: tuple[int, list[int], int]) -> None:
    m, extra, seed = case
    c2v = np.array(list(range(m)) + extra)  # every video has a caption, some have more
    rng = np.random.default_rng(seed)
    S = rng.integers(0, 4, size=(len(c2v), m)).astype(np.float64)
    ranks = retrieval_ranks(S, c2v)
    t2v, v2t = reference_ranks(S, c2v)
    np.testing.assert_array_equal(ranks.t2v, t2v)
    np.testing.assert_array_equal(ranks.v2t, v2t)
