"""Search-time normalization and the weak-match floor: the index's query bank gives the
same orderings as the evaluation's normalization of the bank's similarity matrix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidret.cli import app
from vidret.errors import VidretError
from vidret.eval.normalization import (
    Normalization,
    QueryBank,
    dual_softmax_t2v,
    normalized_views,
)
from vidret.models.similarity import similarity
from vidret.models.types import Embeddings
from vidret.search.build_index import build_index
from vidret.search.engine import SearchEngine
from vidret.search.query_bank import build_bank


def unit(rng: np.random.Generator, n: int, experts: int = 1, d: int = 8) -> Embeddings:
    v = torch.from_numpy(rng.standard_normal((n, experts, d)).astype(np.float32))
    return Embeddings(v / v.norm(dim=-1, keepdim=True), torch.ones(n, experts))


@pytest.mark.parametrize("experts", [1, 3])
def test_bank_rescoring_equals_the_evaluation_normalizations(experts: int) -> None:
    rng = np.random.default_rng(experts)
    bank_text, videos, queries = (
        unit(rng, 300, experts),
        unit(rng, 50, experts),
        unit(rng, 20, experts),
    )
    videos.weights[::7, 0] = 0.0  # some videos miss an expert: the model's formula copes
    bank = build_bank(bank_text, videos, Normalization("qbnorm", beta=20.0, k=2), 0.05)
    B = similarity(bank_text, videos).double().numpy()
    S = similarity(queries, videos).double().numpy()
    ids = np.arange(S.shape[1])
    # QB-Norm: the evaluation's t2v rows, query by query (each ranks its candidates alone)
    expected, _ = normalized_views(
        S, Normalization("qbnorm", beta=20.0, k=2), QueryBank(B, np.zeros((20, 3)))
    )
    for q in range(len(S)):
        order = np.argsort(-S[q], kind="stable")
        got = bank.rescore(S[q, order], ids[order], "qbnorm")
        np.testing.assert_allclose(got, expected[q, order], rtol=1e-6, atol=1e-9)
    # dual softmax: the query's prior over the bank's captions and itself
    for q in range(len(S)):
        with_query = dual_softmax_t2v(np.vstack([B, S[q : q + 1]]), 0.05)[-1]
        got = bank.rescore(S[q], ids, "dual_softmax")
        np.testing.assert_allclose(got, with_query, rtol=1e-6, atol=1e-12)
    # the activation set: every video in some bank caption's top 2, and only those
    top2 = np.argsort(-B, axis=1)[:, :2]
    assert set(np.flatnonzero(bank.activated)) == set(top2.ravel().tolist())
    assert bank.floor == pytest.approx(np.percentile(B.max(axis=1), 5.0))


def test_search_orders_by_the_normalization_and_flags_weak_matches(
    small_world: dict[str, Path],
) -> None:
    engine = SearchEngine(small_world["index"])
    assert engine.index.bank is not None and engine.index.info["score_floor"] is not None
    plain = engine.search("a red circle", k=10)
    assert plain.normalization == "none" and plain.floor == engine.index.info["score_floor"]
    for method in ("qbnorm", "dual_softmax"):
        result = engine.search("a red circle", k=40, normalize=method)
        assert result.normalization == method
        ids = np.array([engine.index.videos.index(h.video) for h in result.hits])
        sims = np.array([h.similarity for h in result.hits])
        by_raw = np.argsort(-sims, kind="stable")
        normalized = engine.index.bank.rescore(sims[by_raw], ids[by_raw], method)
        expected = np.argsort(-normalized, kind="stable")
        assert [int(i) for i in ids] == [int(i) for i in ids[by_raw][expected]]
        # `score` is what the hits are ordered by (the normalized score), in order; the
        # model's similarity stands beside it
        scores = [h.score for h in result.hits]
        assert scores == sorted(scores, reverse=True)
        np.testing.assert_allclose(scores, normalized[expected], rtol=1e-6)
    assert all(h.score == h.similarity for h in plain.hits)
    runner = CliRunner()
    shown = runner.invoke(app, ["search", str(small_world["index"]), "a red circle", "--json",
                                "-k", "20", "--normalize", "qbnorm"])  # fmt: skip
    rows = json.loads(shown.stdout)["results"]
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert all(-1 <= r["similarity"] <= 1 for r in rows)
    with pytest.raises(VidretError, match="choose one of none, dual_softmax, qbnorm"):
        engine.search("a red circle", normalize="softmax")


def test_index_without_a_bank_refuses_to_normalize(
    small_world: dict[str, Path], tmp_path: Path
) -> None:
    index = tmp_path / "index"
    build_index(small_world["run"], small_world["data"], index, progress=False, bank_size=0)
    info = json.loads((index / "index.json").read_text())
    assert info["query_bank"] is None and info["score_floor"] is None
    engine = SearchEngine(index)
    assert not engine.search("a red circle").below_floor  # no floor, no verdict
    with pytest.raises(VidretError, match="built without a query bank"):
        engine.search("a red circle", normalize="qbnorm")
    runner = CliRunner()
    shown = runner.invoke(app, ["search", str(index), "red", "--normalize", "qbnorm"])
    assert shown.exit_code != 0 and "--query-bank" in str(shown.exception)
    (index / "query_bank.npz").write_bytes(b"junk")  # an unused file is never read ...
    SearchEngine(index)
    damaged = small_world["root"] / "damaged-bank"
    build_index(small_world["run"], small_world["data"], damaged, progress=False)
    (damaged / "query_bank.npz").write_bytes(b"junk")  # ... a used one is checked
    with pytest.raises(VidretError, match=r"query_bank\.npz: damaged"):
        SearchEngine(damaged)


def test_search_cli_says_when_nothing_matches_well(small_world: dict[str, Path]) -> None:
    runner = CliRunner()
    floor = json.loads((small_world["index"] / "index.json").read_text())["score_floor"]
    first = (small_world["data"] / "captions.jsonl").read_text().splitlines()[0]
    real = json.loads(first)["caption"]  # a caption of the model's own training data
    nonsense = "zzz qqq xylophone tax law"
    found = {}
    for query in (real, nonsense):
        shown = runner.invoke(app, ["search", str(small_world["index"]), query, "--json"])
        assert shown.exit_code == 0, shown.output
        body = json.loads(shown.stdout)
        assert body["score_floor"] == pytest.approx(floor, abs=1e-4)
        best = max(r["similarity"] for r in body["results"])
        assert body["below_floor"] == (best < floor)
        found[query] = body["below_floor"]
        text = runner.invoke(app, ["search", str(small_world["index"]), query]).stdout
        assert ("no good match" in text) == body["below_floor"]
    assert found == {real: False, nonsense: True}


def test_cards_describe_videos_known_only_by_features() -> None:
    """MSR-VTT's videos exist here only as features: a card gets the caption, the clip's
    duration (end - start) and the source link; never a non-web link."""
    from vidret.search.hits import card as _links

    meta = {"video_id": "video0", "caption": "a car is shown", "start": 137.72, "end": 149.44,
            "url": "https://www.youtube.com/watch?v=9lZi22qLlEo"}  # fmt: skip
    card = _links(meta, roots={})
    assert card["caption"] == "a car is shown" and card["file_name"] is None
    assert card["duration"] == pytest.approx(11.72)
    assert card["source_url"] == card["video_url"] == meta["url"]
    assert card["thumbnail_url"] is None
    bad = _links({**meta, "url": "javascript:alert(1)", "duration": 3}, roots={})
    assert bad["source_url"] is None and bad["video_url"] is None and bad["duration"] == 3.0
    named = _links({"video_id": "v", "file": "clips/dog run.mp4"}, roots={})
    assert named["file_name"] == "dog run.mp4" and named["duration"] is None
