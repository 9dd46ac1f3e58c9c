"""Caption features: exact Sentence-BERT outputs, cached by text, never trusted half-written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vidret.text.cache as cache_module
from vidret.text.cache import TextFeatureCache
from vidret.text.sentence_bert import default_model_path, encode_texts, load_sentence_model

TEXTS = ["a man is cooking pasta in a kitchen", "a dog runs on the beach", "two people dance"]


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts how many texts reach the model."""
    calls: list[int] = []

    def wrapped(texts, *args, **kwargs):
        calls.append(len(texts))
        return encode_texts(texts, *args, **kwargs)

    monkeypatch.setattr(cache_module, "encode_texts", wrapped)
    return calls


def test_sentence_vectors_are_the_models_own(tmp_path: Path) -> None:
    model = load_sentence_model(str(default_model_path()))
    expected = model.encode(TEXTS, convert_to_numpy=True)
    enc = encode_texts(TEXTS, default_model_path(), with_tokens=True, max_tokens=32, progress=False)
    np.testing.assert_allclose(enc.sentence, expected, atol=1e-5)
    # all-MiniLM-L6-v2 is mean pooling + normalization: the token features must give it back.
    for i in range(len(TEXTS)):
        pooled = enc.tokens[i, : enc.lengths[i]].astype(np.float32).mean(0)
        np.testing.assert_allclose(pooled / np.linalg.norm(pooled), expected[i], atol=2e-3)
        assert not enc.tokens[i, enc.lengths[i] :].any()


def test_cache_encodes_each_text_once(tmp_path: Path, counting: list[int]) -> None:
    cache = TextFeatureCache(tmp_path / "c", default_model_path(), False, 32)
    first = cache.get(TEXTS, progress=False)
    again = TextFeatureCache(tmp_path / "c", default_model_path(), False, 32).get(
        list(reversed(TEXTS)), progress=False
    )
    assert counting == [3]
    np.testing.assert_array_equal(again.sentence, first.sentence[::-1])
    more = cache.get([*TEXTS, "a cat sleeps", "a cat sleeps"], progress=False)
    assert counting == [3, 1]  # only the new text, once
    np.testing.assert_array_equal(more.sentence[4], more.sentence[3])


def test_a_damaged_cache_is_rebuilt_not_trusted(tmp_path: Path, counting: list[int]) -> None:
    cache = TextFeatureCache(tmp_path / "c", default_model_path(), True, 16)
    good = cache.get(TEXTS, progress=False)
    manifest = tmp_path / "c" / "manifest.json"
    meta = json.loads(manifest.read_text())
    meta["count"] = 99  # as if texts and arrays came from different writes
    manifest.write_text(json.dumps(meta))
    (tmp_path / ".c.x.partial").mkdir()  # what a killed writer leaves: ignored
    rebuilt = cache.get(TEXTS, progress=False)
    assert counting == [3, 3]
    np.testing.assert_allclose(rebuilt.sentence, good.sentence, atol=1e-6)
    (tmp_path / "c" / "tokens.npy").write_bytes(b"truncated")
    cache.get(TEXTS, progress=False)
    assert counting == [3, 3, 3]


def test_cache_location_follows_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VIDRET_CACHE_DIR", str(tmp_path / "env"))
    root = cache_module.cache_root(tmp_path / "data")
    assert root.parent == tmp_path / "env" and root.name.startswith("data-")
    monkeypatch.delenv("VIDRET_CACHE_DIR")
    (tmp_path / "data").mkdir()
    assert cache_module.cache_root(tmp_path / "data") == (tmp_path / "data" / "cache").resolve()
    # a folder marked read-only (r-x, as ../shared/data is) is not written into, even by root
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "data").chmod(0o555)
    try:
        root = cache_module.cache_root(tmp_path / "data")
    finally:
        (tmp_path / "data").chmod(0o755)
    assert root.parent == tmp_path / "home" / ".cache" / "vidret" and root.name.startswith("data-")
