"""Test-time normalization against the reference computations and their special cases.

The references are written here the way their authors' code computes them, independently
of vidret's log-domain, chunked implementation:
* QB-Norm, `ioanacroi/qb-norm` dynamic_inverted_softmax.py: argsort the bank's rows for
  the activation set, exp(beta * sims), divide the activated query rows by the bank's
  column sums, leave the other rows as they were;
* dual softmax, the DSL code: `sims * softmax(sims / temp, dim=0) * len(sims)`, where rows
  are the queries of the direction being ranked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidret.cli import app
from vidret.errors import VidretError
from vidret.eval.metrics import retrieval_metrics
from vidret.eval.normalization import (
    Normalization,
    QueryBank,
    normalized_metrics,
    normalized_views,
)
from vidret.json_output import rounded


def positive_ranks(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """0-based rank of each row's positive column by a full sort (no ties in these data)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.argmax(order == positive[:, None], axis=1)


def reference_qbnorm(train_test: np.ndarray, test_test: np.ndarray, beta: float, k: int):
    retrieved = np.unique(np.argsort(-train_test, axis=1)[:, :k].reshape(-1))
    top1 = np.argsort(-test_test, axis=1)[:, 0]
    normalize = np.nonzero(np.isin(top1, retrieved))[0]
    out = test_test.astype(np.float64).copy()
    exp_test = np.exp(test_test.astype(np.float64) * beta)
    sums = np.exp(train_test.astype(np.float64) * beta).sum(axis=0)
    out[normalize, :] = exp_test[normalize, :] / sums
    return out, normalize


def reference_dual_softmax(sims: np.ndarray, temp: float) -> np.ndarray:
    s = torch.from_numpy(sims.astype(np.float64))
    return (s * torch.softmax(s / temp, dim=0) * len(s)).numpy()


def hub_world(seed: int = 0):
    """Captions x videos cosines where video 0 is a 'hub', close to every caption."""
    rng = np.random.default_rng(seed)
    n = 40
    c2v = np.repeat(np.arange(n), 2)
    S = rng.uniform(-0.2, 0.4, (2 * n, n))
    S[np.arange(2 * n), c2v] += 0.3
    S[:, 0] += 0.35  # the hub
    bank = rng.uniform(-0.2, 0.4, (300, n))
    bank[:, 0] += 0.35
    bank[:, 1:8] += 0.5  # the bank's queries are about videos 0-7 only
    video_bank = rng.uniform(-0.2, 0.4, (2 * n, 120))
    return S.astype(np.float32), c2v, QueryBank(bank.astype(np.float32), video_bank)


@pytest.mark.parametrize("k", [1, 3])
def test_qbnorm_t2v_matches_the_reference_algorithm(k: int) -> None:
    S, c2v, bank = hub_world()
    norm = Normalization("qbnorm", beta=20.0, k=k)
    t2v, _ = normalized_views(S, norm, bank)
    expected, normalized_rows = reference_qbnorm(bank.text_to_test_videos, S, 20.0, k)
    assert 0 < len(normalized_rows) < len(S)  # both kinds of row are exercised
    np.testing.assert_array_equal(positive_ranks(t2v, c2v), positive_ranks(expected, c2v))
    # normalized rows hold log(exp(beta s) / sum): the reference's values, in log space
    np.testing.assert_allclose(
        t2v[normalized_rows], np.log(expected[normalized_rows]), rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize("k", [1, 2])
def test_qbnorm_v2t_is_the_same_algorithm_with_videos_as_queries(k: int) -> None:
    S, _, bank = hub_world(1)
    _, v2t = normalized_views(S, Normalization("qbnorm", beta=20.0, k=k), bank)
    expected, normalized = reference_qbnorm(bank.test_captions_to_videos.T, S.T, 20.0, k)
    assert 0 < len(normalized) < S.shape[1]  # both kinds of column are exercised
    np.testing.assert_allclose(
        np.argsort(-v2t.T, axis=1, kind="stable")[:, :5],
        np.argsort(-expected, axis=1, kind="stable")[:, :5],
    )


def test_inverted_softmax_normalizes_every_row_and_demotes_the_hub() -> None:
    S, c2v, bank = hub_world()
    plain = retrieval_metrics(S, c2v)
    norm = Normalization("qbnorm", beta=20.0, dynamic=False)
    t2v, _ = normalized_views(S, norm, bank)
    lse = np.log(np.exp(20.0 * bank.text_to_test_videos.astype(np.float64)).sum(0))
    np.testing.assert_allclose(t2v, 20.0 * S.astype(np.float64) - lse, rtol=1e-6, atol=1e-7)
    # the hub wins most rows before and far fewer after
    assert (S.argmax(1) == 0).mean() > 0.5 > (t2v.argmax(1) == 0).mean()
    assert normalized_metrics(S, c2v, norm, bank)["t2v"]["R@1"] > plain["t2v"]["R@1"]


def test_qbnorm_special_cases_leave_ranks_alone() -> None:
    S, c2v, _ = hub_world()
    plain = retrieval_metrics(S, c2v)
    # a bank whose every column has the same normalizer changes no row's order
    flat = QueryBank(np.zeros((10, S.shape[1]), np.float32), np.zeros((S.shape[0], 7)))
    same = normalized_metrics(S, c2v, Normalization("qbnorm", dynamic=False), flat)
    assert same["t2v"] == plain["t2v"] and same["v2t"] == plain["v2t"]
    # a bank that activates no test query's top video: the dynamic rule normalizes nothing
    S2 = S.copy()
    S2[:, 0] += 10.0  # every test query's top video is 0 ...
    bank = np.zeros((10, S.shape[1]), np.float32)
    bank[:, 1] = 1.0  # ... and every bank query's is 1
    t2v, _ = normalized_views(S2, Normalization("qbnorm"), QueryBank(bank, np.zeros((80, 7))))
    np.testing.assert_array_equal(t2v, S2.astype(np.float64))


@pytest.mark.parametrize("temp", [0.01, 0.1])
def test_dual_softmax_matches_the_dsl_code_in_both_directions(temp: float) -> None:
    S, c2v, _ = hub_world(2)
    t2v, v2t = normalized_views(S, Normalization("dual_softmax", temperature=temp))
    expected_t2v = reference_dual_softmax(S, temp)  # rows: captions, prior over captions
    expected_v2t = reference_dual_softmax(S.T, temp).T  # rows: videos, prior over videos
    np.testing.assert_allclose(t2v * len(S), expected_t2v, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(v2t * S.shape[1], expected_v2t, rtol=1e-6, atol=1e-12)
    m = normalized_metrics(S, c2v, Normalization("dual_softmax", temperature=temp))
    assert m["normalization"] == {"method": "dual_softmax", "temperature": temp}
    np.testing.assert_array_equal(
        np.sort(positive_ranks(expected_t2v, c2v)), np.sort(positive_ranks(t2v, c2v))
    )


def test_dual_softmax_with_a_flat_prior_changes_nothing() -> None:
    S, c2v, _ = hub_world(3)
    S = S + 1.0  # positive scores: multiplying by a near-constant prior keeps their order
    plain = retrieval_metrics(S, c2v)
    m = normalized_metrics(S, c2v, Normalization("dual_softmax", temperature=1e6))
    assert m["t2v"] == plain["t2v"] and m["v2t"] == plain["v2t"]


def test_dual_softmax_does_not_underflow_into_ties() -> None:
    # exp(-2 / 0.01) underflows float32; the float64 prior keeps every score distinct
    S = np.array([[1.0, -1.0, -0.99], [-1.0, 1.0, -0.98], [-0.97, -0.96, 1.0]], np.float32)
    t2v, v2t = normalized_views(S, Normalization("dual_softmax", temperature=0.01))
    assert all(len(set(row)) == 3 for row in t2v)  # t2v ranks each row
    assert all(len(set(column)) == 3 for column in v2t.T)  # v2t ranks each column
    assert (t2v.astype(np.float32) == 0).sum() == 6  # what a float32 prior would have tied


def test_bad_settings_are_refused() -> None:
    with pytest.raises(VidretError, match="choose one of none, dual_softmax, qbnorm"):
        Normalization("qb")  # type: ignore[arg-type]
    with pytest.raises(VidretError, match="temperature"):
        Normalization("dual_softmax", temperature=0.0)
    with pytest.raises(VidretError, match="beta"):
        Normalization("qbnorm", beta=float("nan"))
    with pytest.raises(VidretError, match="needs a query bank"):
        normalized_views(np.eye(3), Normalization("qbnorm"))


def test_eval_cli_normalizes_saved_sims_and_a_run(
    tmp_path: Path, small_world: dict[str, Path]
) -> None:
    runner = CliRunner()
    run = str(small_world["run"])
    saved = tmp_path / "s.npz"
    args = ["eval", "--run", run, "--split", "val", "--json", "--normalize", "qbnorm"]
    direct = runner.invoke(app, [*args, "--save-sims", str(saved)])
    assert direct.exit_code == 0, direct.output
    assert "scored split 'val'" in direct.stderr and "QB-Norm" in direct.stderr
    with np.load(saved) as z:
        S, c2v = z["sims"], z["caption_to_video"]
        bank = QueryBank(z["bank_text_to_videos"], z["bank_captions_to_videos"])
    assert bank.text_to_test_videos.shape[1] == S.shape[1]
    assert bank.test_captions_to_videos.shape[0] == S.shape[0]
    # the bank is the training part: none of its captions are the scored ones
    same_row = (bank.text_to_test_videos[:, None, :] == S[None, :, :]).all(axis=-1)
    assert not same_row.any()
    expected = rounded(normalized_metrics(S, c2v, Normalization("qbnorm"), bank))
    assert json.loads(direct.stdout) == expected
    again = runner.invoke(app, ["eval", "--sims", str(saved), "--json", "--normalize", "qbnorm"])
    assert again.exit_code == 0 and json.loads(again.stdout) == expected

    np.savez(tmp_path / "plain.npz", sims=S, caption_to_video=c2v)
    no_bank = runner.invoke(
        app, ["eval", "--sims", str(tmp_path / "plain.npz"), "--normalize", "qbnorm"]
    )
    assert no_bank.exit_code != 0 and "holds no query bank" in str(no_bank.exception)
    other = runner.invoke(app, ["eval", "--run", run, "--split", "all", "--normalize", "qbnorm"])
    assert other.exit_code != 0 and "run's own train/val/test" in str(other.exception)


def test_the_cli_defaults_are_the_validation_chosen_ones() -> None:
    """`vidret eval`'s --temperature and --beta default to Normalization's, the settings
    chosen on msrvtt-1k's validation split (T 0.1, beta 5; BENCHMARKS)."""
    import inspect

    from vidret.cli.eval_cmd import eval_command

    params = inspect.signature(eval_command).parameters
    assert params["temperature"].default == Normalization.temperature == 0.1
    assert params["beta"].default == Normalization.beta == 5.0
