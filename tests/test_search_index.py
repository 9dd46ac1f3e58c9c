"""Index kinds and multi-expert scoring: the index must return the model's own ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import TINY
from vidret.batches.prepared import prepare_data, video_batch
from vidret.config import load_config
from vidret.models.similarity import similarity
from vidret.runs.folder import load_trained_model
from vidret.runs.query_encoder import QueryEncoder
from vidret.search.build_index import build_index
from vidret.search.engine import SearchEngine
from vidret.search.faiss_index import build_faiss_index
from vidret.train.trainer import train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ce_run(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Path:
    """A collaborative-experts model: two experts, one of them missing for some videos."""
    run = tmp_path_factory.mktemp("ce") / "run"
    cfg = load_config(REPO / "configs/ce-infonce.yaml", [*TINY, "train.epochs=2"])
    train(cfg, run, demo_dir, progress=False)
    return run


def test_multi_expert_index_returns_the_models_ranking(
    ce_run: Path, demo_dir: Path, tmp_path: Path
) -> None:
    build_index(ce_run, demo_dir, tmp_path / "index", progress=False)
    engine = SearchEngine(tmp_path / "index")
    assert engine.index.experts is not None  # two experts: exact re-scoring is on

    cfg, model, info = load_trained_model(ce_run)
    data = prepare_data(cfg, demo_dir, experts=list(info["signature"]["experts"]))
    missing = (data.dataset.experts[data.experts[1]].lengths == 0).sum()
    assert missing > 0  # the case where FAISS's inner product alone would be wrong
    with torch.inference_mode():
        videos = model.embed_video(video_batch(data, np.arange(data.dataset.num_videos)))
    queries = QueryEncoder(ce_run, backend="torch")  # the model's own query side, in PyTorch
    for caption in data.dataset.captions[:20]:
        expected = similarity(queries.embed(caption), videos)[0].numpy()
        hits = engine.search(caption, k=10).hits
        order = np.argsort(-expected, kind="stable")[:10]
        assert [h.video_id for h in hits] == [data.dataset.video_ids[i] for i in order]
        np.testing.assert_allclose([h.score for h in hits], expected[order], atol=1e-5)


@pytest.mark.parametrize("kind", ["flat16", "hnsw", "ivf"])
def test_approximate_kinds_find_the_exact_neighbours(kind: str) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 64))
    vectors = centres[rng.integers(0, 50, 5000)] + 0.5 * rng.normal(size=(5000, 64))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:100] + 0.1 * rng.normal(size=(100, 64))
    exact, _ = build_faiss_index(vectors, "flat")
    approx, params = build_faiss_index(vectors, kind)
    _, want = exact.search(queries.astype(np.float32), 10)
    _, got = approx.search(queries.astype(np.float32), 10)
    recall = np.mean([len(set(w) & set(g)) / 10 for w, g in zip(want, got, strict=True)])
    assert recall >= 0.95, (kind, params, recall)


def test_unknown_kind_is_refused() -> None:
    from vidret.errors import VidretError

    with pytest.raises(VidretError, match="choose one of"):
        build_faiss_index(np.zeros((3, 4), np.float32), "lsh")
