"""The static caption encoder (`text.encoder: static`): distilled once and cached, encoding
as model2vec's own `StaticModel.encode` does, and a run with it trains, indexes (its query
graph within 1e-4 of PyTorch) and searches.

model2vec's distillation runs every vocabulary token through MiniLM (about a minute on two
cores); here it is replaced by a table of random vectors over MiniLM's tokenizer, written
by model2vec itself (`StaticModel(...).save_pretrained`), so everything after the
distillation is vidret's code on model2vec's format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import TINY
from vidret.config import load_config
from vidret.search.build_index import build_index
from vidret.search.engine import SearchEngine
from vidret.text.sentence_bert import default_model_path
from vidret.text.static_model import encode_static, is_static_model, static_model
from vidret.train.trainer import train

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["a man is cooking pasta", "Two DOGS run on the beach!", "un café ☃ à Paris", "x " * 40]


@pytest.fixture
def distilled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """model2vec's `distill` as a random table over the source's tokenizer; the models it
    was asked for. The cache is this test's own."""
    import model2vec.distill
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    monkeypatch.setenv("VIDRET_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[str] = []

    def distill(model_name: str, pca_dims: int = 256, **_: object) -> StaticModel:
        calls.append(model_name)
        tokenizer = Tokenizer.from_file(str(Path(model_name) / "tokenizer.json"))
        rng = np.random.default_rng(0)
        table = rng.standard_normal((tokenizer.get_vocab_size(), pca_dims)).astype(np.float32)
        return StaticModel(table, tokenizer, normalize=True, base_model_name=model_name)

    monkeypatch.setattr(model2vec.distill, "distill", distill)
    return calls


def test_distilled_once_then_read_from_the_cache(distilled: list[str]) -> None:
    first = static_model(default_model_path())
    again = static_model(default_model_path())
    assert first == again and is_static_model(first)
    assert distilled == [str(default_model_path())]  # the second call read the cache
    assert not is_static_model(default_model_path())


def test_encodes_as_model2vec_does(distilled: list[str]) -> None:
    from model2vec import StaticModel

    folder = static_model(default_model_path())
    want = StaticModel.from_pretrained(str(folder)).encode(TEXTS)
    got = encode_static(TEXTS, folder)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 256)
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("config", ["meanpool-infonce.yaml", "mmt-infonce.yaml"])
def test_trains_indexes_and_searches(
    distilled: list[str], demo_dir: Path, tmp_path: Path, config: str
) -> None:
    cfg = load_config(REPO / "configs" / config, [*TINY, "train.epochs=1", "text.encoder=static"])
    train(cfg, tmp_path / "run", demo_dir, progress=False)
    index = build_index(tmp_path / "run", demo_dir, tmp_path / "index", progress=False)
    tower = index.info["model"]["query_tower"]
    assert "fallback" not in tower, tower
    assert tower["max_difference"] <= 1e-4 and tower["add_special_tokens"] is False
    assert is_static_model(Path(index.info["model"]["text_model"]))
    hits = SearchEngine(tmp_path / "index").search("a red ball", k=5).hits
    assert len(hits) == 5 and hits[0].score >= hits[-1].score
