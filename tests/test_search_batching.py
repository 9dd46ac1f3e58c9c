"""The batching server: micro-batches, the query cache, and answers identical to lone ones."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from vidret.search.batching import MicroBatcher
from vidret.search.engine import SearchEngine, SearchRequest
from vidret.search.local_server import serving
from vidret.search.query_cache import QueryCache

QUERIES = ["a red circle", "a blue square moving", "green", "purple pattern", "a dog",
           "someone is cooking", "a car on a road", "music and dancing"]  # fmt: skip


def test_concurrent_items_are_served_in_batches_in_order() -> None:
    seen: list[list[int]] = []
    release = threading.Event()

    def process(items: list[int]) -> list[int]:
        seen.append(list(items))
        release.wait(5)  # the first batch holds the worker while the others queue up
        return [10 * i for i in items]

    batcher = MicroBatcher(process, max_batch=4, window_ms=0)
    first = batcher.submit(0)
    time.sleep(0.05)  # the worker has taken item 0 alone
    futures = [batcher.submit(i) for i in range(1, 10)]
    release.set()
    assert first.result(5) == 0 and [f.result(5) for f in futures] == [10 * i for i in range(1, 10)]
    assert seen == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]  # at most max_batch, in order
    assert batcher.stats.batches == 4 and batcher.stats.largest == 4
    assert batcher.stats.mean_batch == pytest.approx(10 / 4)
    batcher.close()


def test_a_failed_batch_fails_each_of_its_requests_and_the_batcher_goes_on() -> None:
    def process(items: list[str]) -> list[str]:
        if "bad" in items:
            raise RuntimeError("broken item")
        return [s.upper() for s in items]

    batcher = MicroBatcher(process, max_batch=1)
    bad = batcher.submit("bad")
    with pytest.raises(RuntimeError, match="broken item"):
        bad.result(5)
    assert batcher.submit("ok").result(5) == "OK"
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(process, max_batch=0)
    batcher.close()


def test_query_cache_is_an_lru() -> None:
    cache = QueryCache(2)
    cache.put("a", "A")  # type: ignore[arg-type]
    cache.put("b", "B")  # type: ignore[arg-type]
    assert cache.get("a") == "A"
    cache.put("c", "C")  # type: ignore[arg-type]  # "b" is the least recently used
    assert cache.get("b") is None and cache.get("c") == "C"
    assert (cache.hits, cache.misses) == (2, 1)
    off = QueryCache(0)
    off.put("a", "A")  # type: ignore[arg-type]
    assert off.get("a") is None


def assert_same(batched: list, alone: list) -> None:
    for b, a in zip(batched, alone, strict=True):
        assert [h.video_id for h in b.hits] == [h.video_id for h in a.hits]
        np.testing.assert_allclose([h.score for h in b.hits], [h.score for h in a.hits], atol=1e-5)
        assert (b.query, b.normalization, b.floor) == (a.query, a.normalization, a.floor)


def test_search_many_equals_one_at_a_time(small_world: dict[str, Path]) -> None:
    engine = SearchEngine(small_world["index"])
    requests = [
        SearchRequest(q, k, normalize)
        for q, k, normalize in zip(
            QUERIES * 2,
            [1, 5, 10, 40, 3, 7, 2, 25] * 2,
            ["none"] * 8 + ["qbnorm", "dual_softmax"] * 4,
            strict=True,
        )
    ]
    alone = [engine.search(r.query, r.k, r.normalize) for r in requests]
    assert_same(engine.search_many(requests), alone)
    # the same query twice in a batch, and a query that needs cleaning
    twice = engine.search_many(
        [SearchRequest("  a red\u200b circle "), SearchRequest("a red circle")]
    )
    assert_same(twice, [engine.search("a red circle")] * 2)

    cached = SearchEngine(small_world["index"], cache_size=100)
    assert_same(cached.search_many(requests), alone)  # first pass: each distinct query encoded
    assert (cached.cache.hits, cached.cache.misses) == (0, len(QUERIES))
    assert_same(cached.search_many(requests), alone)  # second pass: all from the cache
    assert cached.cache.hits == len(QUERIES)


def test_concurrent_http_requests_are_batched_and_answered_as_alone(
    small_world: dict[str, Path],
) -> None:
    from vidret.search.server import create_app

    app = create_app(small_world["index"], max_batch=8, window_ms=20.0, cache_size=0)
    params = [{"q": q, "k": k} for q in QUERIES for k in (3, 10)]

    async def ask_all() -> list[dict]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.get("/search", params=p) for p in params))
            health = (await client.get("/health")).json()
        return [a.json() for a in answers], health

    together, health = asyncio.run(ask_all())
    assert health["largest_batch"] > 1 and health["batches"] < len(params)
    lone_app = create_app(small_world["index"], max_batch=1, cache_size=0)
    from fastapi.testclient import TestClient

    lone = TestClient(lone_app)
    for p, answer in zip(params, together, strict=True):
        expected = lone.get("/search", params=p).json()
        assert [r["video_id"] for r in answer["results"]] == [
            r["video_id"] for r in expected["results"]
        ]
        np.testing.assert_allclose(
            [r["score"] for r in answer["results"]],
            [r["score"] for r in expected["results"]],
            atol=2e-4,  # 4-decimal rounding of the JSON
        )
    assert TestClient(app).get("/search", params={"q": ""}).status_code == 422  # refused alone


def test_serve_with_worker_processes(small_world: dict[str, Path]) -> None:
    args = ["serve", str(small_world["index"]), "--workers", "2", "--max-batch", "4"]
    with serving(args, startup_s=120) as base:
        answers = [httpx.get(f"{base}/search", params={"q": q}, timeout=30) for q in QUERIES]
        assert all(a.status_code == 200 and a.json()["results"] for a in answers)
        assert httpx.get(f"{base}/health").json()["status"] == "ok"
