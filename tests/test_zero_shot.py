"""Zero-shot search: ImageNet concepts from stored frame features, queries mapped to
concept names, an index that `search` and `serve` use without a trained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidret.cli import app
from vidret.search.concepts import (
    NUM_CONCEPTS,
    ConceptQueryEncoder,
    concept_label,
    concept_names,
    crop_concepts,
    frame_concepts,
    pool_frames,
    vocabulary,
)
from vidret.video.frame_encoder import load_torch_model

# ImageNet classes the crafted videos show (indices of the standard class list)
GUITAR, RETRIEVER, SCHOOL_BUS = 402, 207, 779


@pytest.fixture(scope="module")
def network() -> torch.nn.Module:
    return load_torch_model(with_classifier=True)


def test_frame_concepts_are_the_networks_own_classification(network: torch.nn.Module) -> None:
    images = torch.rand(4, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        expected = torch.softmax(network(images), dim=1).numpy()
        pooled = network.extract_features(images).mean(dim=(2, 3)).numpy()  # what extract stores
    np.testing.assert_allclose(frame_concepts(pooled), expected, atol=1e-5)
    # stored as float16, as `vidret extract` keeps them: the same classes come out
    stored = frame_concepts(pooled.astype(np.float16))
    assert (stored.argmax(1) == expected.argmax(1)).all()


def test_pooling_over_frames_by_hand() -> None:
    p = np.array([[0.1, 0.7], [0.5, 0.2], [0.9, 0.0], [0.3, 0.4], [7.0, 7.0]])  # row 4: padding
    np.testing.assert_allclose(pool_frames(p, 4, "max"), [0.9, 0.7])
    np.testing.assert_allclose(pool_frames(p, 4, "mean"), [0.45, 0.325])
    np.testing.assert_allclose(pool_frames(p, 4, "top3"), [(0.9 + 0.5 + 0.3) / 3, 1.3 / 3])
    np.testing.assert_allclose(pool_frames(p, 0, "max"), [0.0, 0.0])


@pytest.fixture(scope="module")
def concepts() -> ConceptQueryEncoder:
    return ConceptQueryEncoder(top=5)


def test_queries_map_to_the_concepts_they_name(concepts: ConceptQueryEncoder) -> None:
    names = concept_names()
    assert len(names) == NUM_CONCEPTS and "tabby cat" in names[281]  # WordNet synonyms
    assert not any("Equus" in n for n in names[339])  # no Latin where a common name exists
    w = concepts.weights(["an acoustic guitar", "a golden retriever", "a yellow school bus"])
    assert [int(row.argmax()) for row in w] == [GUITAR, RETRIEVER, SCHOOL_BUS]
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-5)
    assert ((w > 0).sum(axis=1) >= 5).all()
    one = ConceptQueryEncoder(top=1, name_vectors=concepts.name_vectors()).weights(["a guitar"])
    # top 1: the best class, and any tied with it (both guitars are "guitar")
    assert one.sum() == pytest.approx(1.0) and set(np.flatnonzero(one[0])) <= {402, 546}
    # The examples: a broader term finds its classes; a broad query spreads over all
    # the classes it names (tied), not over five picked by index.
    horse, dog, clock = concepts.weights(["a horse", "a dog", "a clock"])
    assert int(horse.argmax()) == 339  # common sorrel horse, through its broader term
    dogs = [c for c in range(NUM_CONCEPTS) if "dog" in vocabulary()[c]["broader"]]
    assert len(dogs) > 50 and (dog[dogs] > 0).mean() > 0.8
    assert set(np.argsort(-clock)[:3]) == {409, 530, 892}  # analog, digital, wall clock


def crafted_dataset(root: Path, network: torch.nn.Module, captions: bool = False) -> Path:
    """Three 'videos' whose frame features the network's own classifier reads as a
    guitar, a golden retriever and a school bus (checked here with the network's layer);
    with `captions`, two captions each (a model can be trained on it)."""
    fc = network._fc
    classes = [GUITAR, RETRIEVER, SCHOOL_BUS]
    rng = np.random.default_rng(0)
    features = np.zeros((3, 6, 1280), np.float16)
    lengths = np.array([6, 4, 5])
    for i, c in enumerate(classes):
        direction = fc.weight[c].detach().numpy()
        frames = 6 * direction / np.linalg.norm(direction) + 0.05 * rng.standard_normal((6, 1280))
        features[i] = np.clip(frames, 0, None)  # pooled swish outputs are mostly >= 0
        with torch.inference_mode():
            logits = fc(torch.from_numpy(features[i, : lengths[i]].astype(np.float32)))
        assert (logits.argmax(1) == c).all(), "the crafted features must show the class"
    root.mkdir()
    np.save(root / "efficientnet_lite0.npy", features)
    np.save(root / "efficientnet_lite0.lengths.npy", lengths)
    names = ["guitar_clip", "dog_clip", "bus_clip"]
    (root / "videos.jsonl").write_text("".join(json.dumps({"video_id": n}) + "\n" for n in names))
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "name": "crafted",
                "captioned": captions,
                "experts": {"efficientnet_lite0": {"dim": 1280}},
            }
        )
    )
    if captions:
        texts = {"guitar_clip": ["a man plays a guitar", "music on a guitar"],
                 "dog_clip": ["a dog in a garden", "a golden dog runs"],
                 "bus_clip": ["a bus on the road", "a yellow bus stops"]}  # fmt: skip
        (root / "captions.jsonl").write_text(
            "".join(
                json.dumps({"video_id": v, "caption": t}) + "\n" for v in names for t in texts[v]
            )
        )
    return root


def test_zero_shot_index_search_and_serve(tmp_path: Path, network: torch.nn.Module) -> None:
    data = crafted_dataset(tmp_path / "data", network)
    index = tmp_path / "index"
    runner = CliRunner()
    built = runner.invoke(app, ["index", "--zero-shot", "--data", str(data), "--out", str(index)])
    assert built.exit_code == 0, built.output
    assert "zero-shot over 1000 ImageNet concepts" in built.output
    info = json.loads((index / "index.json").read_text())
    floor_settings = {"queries": 100, "percentile": 95.0}
    assert info["model"]["zero_shot"] == {
        "concepts": "imagenet-1k", "pooling": "mean", "crops": "frame", "top": 3,
        "floor": floor_settings,
    }  # fmt: skip
    # the floor: the 95th percentile of the shipped unrelated sentences' best scores here
    from vidret.search.concepts import ConceptQueryEncoder
    from vidret.search.engine import SearchEngine
    from vidret.search.zero_shot_index import calibration_queries

    engine = SearchEngine(index)
    best = [engine.search(q, k=1).hits[0].score for q in calibration_queries()]
    assert info["score_floor"] == pytest.approx(np.percentile(best, 95), abs=1e-5)
    assert "weak-match floor: score" in built.output
    assert isinstance(engine.encoder.inner, ConceptQueryEncoder)

    for query, expected in [("a golden retriever", "dog_clip"), ("school bus", "bus_clip"),
                            ("someone plays an acoustic guitar", "guitar_clip")]:  # fmt: skip
        shown = runner.invoke(app, ["search", str(index), query, "--json"])
        assert shown.exit_code == 0, shown.output
        body = json.loads(shown.stdout)
        assert body["results"][0]["video_id"] == expected, (query, body)
        # the strongest five concepts (ties may spread the weight over more)
        assert body["concepts"] and 0 < sum(body["concepts"].values()) <= 1 + 1e-3
        # why the top hit matched: its best frame for the query, and that frame's top concept
        evidence = body["results"][0]["evidence"]
        top_concept = max(body["concepts"], key=body["concepts"].get)
        assert evidence["concept"] == top_concept and evidence["time"] is None, evidence
        assert 0 <= evidence["frame"] < 6 and evidence["probability"] > 0.2
    text = runner.invoke(app, ["search", str(index), "school bus", "-k", "1"]).output
    assert "zero-shot: the query as ImageNet concepts: school bus" in text

    from fastapi.testclient import TestClient

    from vidret.search.server import create_app

    client = TestClient(create_app(index))
    assert client.get("/health").json()["model_run"] == "zero-shot (ImageNet concepts)"
    answer = client.get("/search", params={"q": "a yellow school bus", "k": 3}).json()
    assert answer["results"][0]["video_id"] == "bus_clip" and "school bus" in answer["concepts"]
    _page_shows_the_concepts(index, answer["concepts"])


def _page_shows_the_concepts(index: Path, concepts: dict[str, float]) -> None:
    """The page in headless Chromium says how it read the query: the concepts, weighted."""
    import shutil

    from vidret.search.local_server import serving

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("the page check needs Debian's chromium (the API's concepts passed)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    with serving(["serve", str(index)]) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        page = browser.new_page()
        page.goto(base + "/?q=a+yellow+school+bus&k=10")
        page.wait_for_selector(".card")
        shown = page.text_content("#concepts")
        assert shown.startswith("read as ImageNet concepts: school bus (")
        for name, weight in concepts.items():
            assert f"{name} ({weight:.2f})" in shown
        first = page.query_selector_all(".card")[0]
        assert first.get_attribute("data-video-id") == "bus_clip"
        assert "matched: school bus at frame " in first.text_content()
        browser.close()


def test_zero_shot_refuses_what_it_cannot_read(tmp_path: Path, demo_dir: Path) -> None:
    runner = CliRunner()
    out = str(tmp_path / "index")
    wrong = runner.invoke(app, ["index", "--zero-shot", "--data", str(demo_dir), "--out", out])
    assert wrong.exit_code != 0 and "has no 'efficientnet_lite0' frame features" in str(
        wrong.exception
    )
    both = runner.invoke(
        app, ["index", "--zero-shot", "--run", "x", "--data", str(demo_dir), "--out", out]
    )
    assert "leave out --run" in str(both.exception)
    neither = runner.invoke(app, ["index", "--data", str(demo_dir), "--out", out])
    assert "--zero-shot" in str(neither.exception)
    pooled = runner.invoke(
        app, ["index", "--zero-shot", "--pooling", "median", "--data", str(demo_dir), "--out", out]
    )
    assert "choose one of max, mean, top3" in str(pooled.exception)
    stray = runner.invoke(
        app, ["index", "--run", "x", "--crops", "--data", str(demo_dir), "--out", out]
    )
    assert "--crops belongs to --zero-shot" in str(stray.exception)


def test_fused_scores_are_the_weighted_sum(tmp_path: Path, network: torch.nn.Module) -> None:
    from helpers import TINY
    from vidret.search.engine import SearchEngine

    data = crafted_dataset(tmp_path / "data", network, captions=True)
    runner = CliRunner()
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--quiet",
            "--config", "configs/meanpool-infonce.yaml"]  # fmt: skip
    for item in [*TINY, "train.epochs=1", "data.split=all", "train.batch_size=3"]:
        args += ["--set", item]
    trained = runner.invoke(app, args, catch_exceptions=False)
    assert trained.exit_code == 0, trained.output
    indexes = {}
    for name, extra in [("model", ["--run", str(run)]), ("concepts", ["--zero-shot"]),
                        ("fused", ["--run", str(run), "--fuse", "0.3"])]:  # fmt: skip
        out = tmp_path / name
        built = runner.invoke(app, ["index", "--data", str(data), "--out", str(out), *extra])
        assert built.exit_code == 0, built.output
        indexes[name] = SearchEngine(out)
    assert "0.7 x the model's + 0.3 x the zero-shot concepts'" in built.output
    for query in ["a yellow school bus", "a dog", "guitar music"]:
        scores = {}
        for name, engine in indexes.items():
            result = engine.search(query, k=3)
            scores[name] = {h.video_id: h.score for h in result.hits}
        for video, fused in scores["fused"].items():
            expected = 0.7 * scores["model"][video] + 0.3 * scores["concepts"][video]
            assert fused == pytest.approx(expected, abs=1e-5)
        assert indexes["fused"].search(query).concepts == indexes["concepts"].search(query).concepts
    bad = runner.invoke(app, ["index", "--zero-shot", "--fuse", "0.3", "--data", str(data),
                              "--out", str(tmp_path / "x")])  # fmt: skip
    assert "without --zero-shot" in str(bad.exception)


def test_crop_concepts_by_hand() -> None:
    """A frame's concepts with --crops: each class's best over the frame and its real
    regions, computed here from frame_concepts of each crop one by one."""
    rng = np.random.default_rng(1)
    frames = rng.random((3, 1280)).astype(np.float32)
    regions = rng.random((3, 4, 1280)).astype(np.float32) * 3
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], bool)
    got = crop_concepts(frames, regions, mask)
    for t in range(3):
        crops = [frame_concepts(frames[t])] + [
            frame_concepts(regions[t, r]) for r in range(4) if mask[t, r]
        ]
        np.testing.assert_allclose(got[t], np.max(crops, axis=0), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(crop_concepts(frames), frame_concepts(frames))


def test_crops_find_an_object_that_fills_one_region(
    tmp_path: Path, network: torch.nn.Module
) -> None:
    """A golden retriever in one grid cell of one frame of the bus clip, nowhere else: the
    whole frames read as a bus (or a guitar), so only an index with --crops sees the dog,
    and its evidence names that frame."""
    data = crafted_dataset(tmp_path / "data", network)
    no_regions = CliRunner().invoke(
        app, ["index", "--zero-shot", "--crops", "--data", str(data), "--out", str(tmp_path / "x")]
    )
    assert "extract the videos with `vidret extract --regions 9`" in str(no_regions.exception)
    fc = network._fc
    features = np.load(data / "efficientnet_lite0.npy")
    features[1] = features[2]  # no dog clip: row 1 is another bus
    np.save(data / "efficientnet_lite0.npy", features)
    names = ["guitar_clip", "bus_clip_b", "bus_clip"]
    (data / "videos.jsonl").write_text("".join(json.dumps({"video_id": n}) + "\n" for n in names))
    regions = np.zeros((3, 6, 9, 1280), np.float16)
    regions[:] = features[:, :, None, :]  # every cell looks like its frame...
    dog = fc.weight[RETRIEVER].detach().numpy()
    regions[2, 3, 4] = np.clip(8 * dog / np.linalg.norm(dog), 0, None)  # ...but one
    with torch.inference_mode():
        assert fc(torch.from_numpy(regions[2, 3, 4].astype(np.float32))).argmax() == RETRIEVER
    np.save(data / "efficientnet_lite0.regions.npy", regions)
    runner = CliRunner()
    scores = {}
    for crops in (False, True):
        index = tmp_path / f"index-{crops}"
        args = ["index", "--zero-shot", "--data", str(data), "--out", str(index)]
        built = runner.invoke(app, args + (["--crops"] if crops else []))
        assert built.exit_code == 0, built.output
        shown = runner.invoke(app, ["search", str(index), "a golden retriever", "--json"])
        body = json.loads(shown.stdout)
        scores[crops] = {r["video_id"]: r for r in body["results"]}
    with_crops, without = scores[True], scores[False]
    assert max(with_crops, key=lambda v: with_crops[v]["score"]) == "bus_clip"
    assert with_crops["bus_clip"]["score"] > 10 * without["bus_clip"]["score"]
    assert with_crops["bus_clip"]["evidence"]["frame"] == 3
    assert with_crops["bus_clip"]["evidence"]["concept"] == concept_label(RETRIEVER)
    # the other clips' frames and cells show no dog: crops leave their scores as they were
    for other in ("guitar_clip", "bus_clip_b"):
        assert with_crops[other]["score"] == pytest.approx(without[other]["score"], abs=1e-6)
    info = json.loads((tmp_path / "index-True" / "index.json").read_text())
    assert info["model"]["zero_shot"]["crops"] == "frame + 9 regions"
