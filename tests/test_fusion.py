"""Score fusion (vidret.eval.fusion, `vidret eval --runs`): standardization by validation,
weights given or chosen on validation only, and the concatenated-vector identity an index
of a fusion relies on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import TINY
from vidret.cli import app
from vidret.config import load_config
from vidret.errors import VidretError
from vidret.eval.fusion import Fusion, choose_fusion, parse_weights, simplex_grid
from vidret.eval.metrics import retrieval_metrics
from vidret.train.trainer import train

REPO = Path(__file__).resolve().parents[1]


def _normalized(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_fused_matrix_by_hand() -> None:
    a = np.array([[1.0, 3.0], [5.0, 7.0]])
    b = np.array([[0.0, 0.1], [0.2, 0.3]])
    fusion = Fusion(["a", "b"], [0.25, 0.75], means=[4.0, 0.15], stds=[2.0, 0.1])
    want = 0.25 * (a - 4.0) / 2.0 + 0.75 * (b - 0.15) / 0.1
    np.testing.assert_allclose(fusion.fuse([a, b]), want, rtol=1e-6)


def test_concatenated_weighted_vectors_give_the_fused_ranking() -> None:
    """The index of a fusion: [sqrt(w/s) t_i] . [sqrt(w/s) v_i] = fused score + a constant."""
    rng = np.random.default_rng(0)
    texts = [_normalized(rng, 30, 8), _normalized(rng, 30, 5)]
    videos = [_normalized(rng, 12, 8), _normalized(rng, 12, 5)]
    sims = [t @ v.T for t, v in zip(texts, videos, strict=True)]
    fusion = choose_fusion(["a", "b"], sims, np.arange(30) % 12, weights=[0.3, 0.7])
    scales = fusion.vector_scales()
    t_cat = np.concatenate([s * t for s, t in zip(scales, texts, strict=True)], axis=1)
    v_cat = np.concatenate([s * v for s, v in zip(scales, videos, strict=True)], axis=1)
    inner = t_cat @ v_cat.T
    constant = sum(
        w * m / s for w, m, s in zip(fusion.weights, fusion.means, fusion.stds, strict=True)
    )
    np.testing.assert_allclose(inner - constant, fusion.fuse(sims), atol=1e-5)
    assert (np.argsort(-inner, axis=1) == np.argsort(-fusion.fuse(sims), axis=1)).all()


def test_auto_weights_are_chosen_on_validation() -> None:
    """One informative run and one of noise: the grid gives the informative one all weight
    (or nearly), and its validation Rsum is the best on the grid."""
    rng = np.random.default_rng(1)
    c2v = np.repeat(np.arange(20), 3)
    good = rng.standard_normal((60, 20)) * 0.5
    good[np.arange(60), c2v] += 2.0
    noise = rng.standard_normal((60, 20))
    fusion = choose_fusion(["good", "noise"], [good, noise], c2v, weights=None)
    assert fusion.chosen_on == "validation" and fusion.weights[0] >= 0.8
    best = max(
        retrieval_metrics(
            Fusion(["g", "n"], w, fusion.means, fusion.stds).fuse([good, noise]), c2v
        )["Rsum"]
        for w in simplex_grid(2)
    )
    assert fusion.validation["Rsum"] == pytest.approx(best)


def test_weights_grid_and_parsing() -> None:
    assert len(simplex_grid(2)) == 1 + 11 and len(simplex_grid(3)) == 1 + 66
    assert all(abs(sum(w) - 1) < 1e-9 and min(w) >= 0 for w in simplex_grid(4))
    assert simplex_grid(3)[0] == [1 / 3] * 3  # equal weights are tried first
    assert parse_weights("auto", 2) is None
    assert parse_weights("1,3", 2) == [0.25, 0.75]
    for bad in ("1", "a,b", "-1,2", "0,0", "nan,1"):
        with pytest.raises(VidretError, match="--weights"):
            parse_weights(bad, 2)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> list[Path]:
    root = tmp_path_factory.mktemp("fusion")
    runs = []
    for seed in (0, 1):
        cfg = load_config(REPO / "configs/meanpool-infonce.yaml", [*TINY, f"train.seed={seed}"])
        train(cfg, root / f"seed{seed}", demo_dir, progress=False)
        runs.append(root / f"seed{seed}")
    return runs


def test_eval_runs_fuses_two_trained_runs(two_runs: list[Path], tmp_path: Path) -> None:
    from vidret.eval.fusion import fuse_runs
    from vidret.eval.scoring import score_run

    joined = ",".join(map(str, two_runs))
    result = CliRunner().invoke(app, ["eval", "--runs", joined, "--weights", "1,1", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["fusion"]["weights"] == [0.5, 0.5]
    # the same as fusing by hand: each test matrix standardized by its validation matrix
    val = [score_run(r, split="val").sims for r in two_runs]
    test = [score_run(r, split="test") for r in two_runs]
    by_hand = sum(0.5 * (t.sims - v.mean()) / v.std() for t, v in zip(test, val, strict=True))
    want = retrieval_metrics(by_hand, test[0].caption_to_video)
    assert body["Rsum"] == pytest.approx(want["Rsum"])
    fusion, _, _ = fuse_runs(two_runs, None)
    assert fusion.chosen_on == "validation" and sum(fusion.weights) == pytest.approx(1.0)


def test_eval_runs_refuses_runs_of_other_splits(
    two_runs: list[Path], tmp_path: Path, demo_dir: Path
) -> None:
    other = tmp_path / "other-split"
    cfg = load_config(REPO / "configs/meanpool-infonce.yaml", [*TINY, "data.seed=5"])
    train(cfg, other, demo_dir, progress=False)
    result = CliRunner().invoke(app, ["eval", "--runs", f"{two_runs[0]},{other}"])
    assert isinstance(result.exception, VidretError)
    assert "other data settings" in str(result.exception) and "'seed'" in str(result.exception)
    result = CliRunner().invoke(app, ["eval", "--runs", str(two_runs[0])])
    assert isinstance(result.exception, VidretError)
    assert "at least two runs" in str(result.exception)


def test_fused_index_serves_the_fused_score(
    two_runs: list[Path], demo_dir: Path, tmp_path: Path
) -> None:
    """`vidret index --run A --run B`: one FAISS search ranks every video by
    sum_i w_i (t_i.v_i - m_i) / s_i, the fused score, up to the constant sum_i w_i m_i / s_i."""
    from vidret.eval.fusion import fusion_of_runs
    from vidret.search.build_index import build_index
    from vidret.search.engine import SearchEngine
    from vidret.search.index import VideoIndex

    out = tmp_path / "fused"
    args = ["index", "--run", str(two_runs[0]), "--run", str(two_runs[1]), "--data",
            str(demo_dir), "--out", str(out), "--weights", "0.3,0.7"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "0.3 x seed0, 0.7 x seed1" in result.output
    engine = SearchEngine(out)
    fusion = fusion_of_runs(two_runs, [0.3, 0.7])
    constant = sum(
        w * m / s for w, m, s in zip(fusion.weights, fusion.means, fusion.stds, strict=True)
    )
    # each run's own similarities, from an index of that run alone
    singles = []
    for i, run in enumerate(two_runs):
        build_index(run, demo_dir, tmp_path / f"single{i}", progress=False, bank_size=0)
        singles.append(SearchEngine(tmp_path / f"single{i}"))
    videos = VideoIndex.load(out).videos
    for query in ("a red circle moving", "blue squares"):
        hits = engine.search(query, k=len(videos)).hits
        single = [{h.video_id: h.similarity for h in e.search(query, k=len(videos)).hits}
                  for e in singles]  # fmt: skip
        for h in hits:
            parts = zip(fusion.weights, single, fusion.means, fusion.stds, strict=True)
            fused = sum(w * (s[h.video_id] - m) / sd for w, s, m, sd in parts)
            assert h.score - constant == pytest.approx(fused, abs=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    health_ok = engine.index.info["model"]["run"] == "fusion of seed0 + seed1"
    assert health_ok and engine.index.info["score_floor"] is None
