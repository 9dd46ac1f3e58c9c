"""Your own videos end to end: real video files -> extract -> train -> index -> search.

The videos are made here with PyAV: each shows a coloured pattern. The model is trained
on one set of clips with captions naming the colour, and searched over *other* clips of
the same scenes (another size, motion and length), so a pass means the query found the
video whose frames match it, not a file it was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import TINY
from vidret.cli import app
from vidret.config import load_config
from vidret.data.dataset import VideoDataset
from vidret.errors import VidretError
from vidret.search.build_index import build_index
from vidret.search.engine import SearchEngine
from vidret.search.local_server import serving
from vidret.train.trainer import train
from vidret.video.decode import Sampling, UnreadableVideoError, read_frames
from vidret.video.extract import extract_dataset
from vidret.video.synthetic import SCENES, write_scenes, write_video

REPO = Path(__file__).resolve().parents[1]
FRAMES = Sampling(frames=6)


def _captions_file(folder: Path, files: dict[str, str]) -> Path:
    path = folder / "captions.jsonl"
    lines = []
    for file, scene in files.items():
        _, pattern = SCENES[scene]
        lines += [
            {"file": file, "caption": f"a {scene} pattern"},
            {"file": file, "caption": f"{scene} {pattern} on a black background"},
        ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Training clips + captions -> dataset -> a small trained model; and a search folder."""
    root = tmp_path_factory.mktemp("videos")
    train_videos = root / "train-videos"
    files = {f"{scene}.mp4": scene for scene in SCENES}
    for file, scene in files.items():
        write_video(train_videos / file, scene, seconds=2.0, size=(96, 128))
    captions = _captions_file(root, files)
    train_data = root / "train-data"
    extract_dataset(train_videos, train_data, FRAMES, captions, progress=False)

    run = root / "run"
    cfg = load_config(
        REPO / "configs/meanpool-infonce.yaml",
        # The starting temperature is pinned: this toy model (6 scenes, its training captions
        # as queries against new clips) is sized for 0.05, not for the temperature the shipped
        # config carries for msrvtt-1k, where the weak-match floor then rejects the new clips.
        [
            *TINY,
            "data.split=all",
            "train.epochs=40",
            "train.batch_size=6",
            "train.patience=100",
            "loss.temperature=0.05",
        ],
    )
    train(cfg, run, train_data, progress=False)

    # The collection to search: new clips of every scene, different size and length.
    search_videos = root / "my-videos"
    for scene in SCENES:
        write_video(search_videos / "clips" / f"{scene} clip.mkv", scene, 3.0, 8, (120, 160))
    (search_videos / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    (search_videos / "empty.webm").write_bytes(b"")
    collection = root / "collection"
    report = extract_dataset(search_videos, collection, FRAMES, progress=False)
    index = root / "index"
    build_index(run, collection, index, progress=False)
    return {"run": run, "collection": collection, "index": index, "videos": search_videos,
            "report": report}  # fmt: skip


def test_extract_writes_a_dataset_and_reports_bad_files(trained: dict) -> None:
    report = trained["report"]
    assert sorted(f for f, _ in report.skipped) == ["corrupt.mp4", "empty.webm"]
    assert "empty" in dict(report.skipped)["empty.webm"]
    dataset = VideoDataset.open(trained["collection"])
    assert dataset.num_videos == len(SCENES)
    assert dataset.metadata["captioned"] is False and dataset.captions == []
    expert = dataset.experts["efficientnet_lite0"]
    assert (expert.frames, expert.dim) == (6, 1280)
    assert (expert.lengths == 6).all()
    assert np.isfinite(np.asarray(expert.features, np.float32)).all()
    first = dataset.videos[0]
    assert first["video_id"] == "clips__blue_clip" and first["file"] == "clips/blue clip.mkv"
    assert first["duration"] == pytest.approx(3.0, abs=0.2)
    assert (trained["collection"] / first["thumbnail"]).stat().st_size > 0


def test_rerun_adds_only_new_videos(trained: dict, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    write_video(videos / "red.mp4", "red")
    out = tmp_path / "data"
    first = extract_dataset(videos, out, FRAMES, progress=False)
    before = np.load(out / "efficientnet_lite0.npy")
    write_video(videos / "blue.mp4", "blue")
    second = extract_dataset(videos, out, FRAMES, progress=False)
    assert first.added == ["red"]
    assert second.added == ["blue"] and second.kept == ["red"] and second.frames == 6
    after = np.load(out / "efficientnet_lite0.npy")
    rows = [json.loads(line)["video_id"] for line in (out / "videos.jsonl").open()]
    assert rows == ["blue", "red"]
    np.testing.assert_array_equal(after[1], before[0])  # red's features carried over
    (videos / "red.mp4").unlink()
    third = extract_dataset(videos, out, FRAMES, progress=False)
    assert third.removed == ["red"] and third.kept == ["blue"]
    with pytest.raises(VidretError, match="extracted with"):
        extract_dataset(videos, out, Sampling(frames=4), progress=False)


def test_killed_extraction_leaves_the_last_complete_dataset(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    for scene in ("red", "green", "blue"):
        write_video(videos / f"{scene}.mp4", scene)
    out = tmp_path / "data"

    class KilledError(Exception):
        pass

    class DiesOnThirdVideo:
        """The real encoder, until it is 'killed' on the third video."""

        def __init__(self) -> None:
            from vidret.video.frame_encoder import EfficientNetLite0

            self.inner, self.calls = EfficientNetLite0(), 0
            self.name, self.dim, self.size = self.inner.name, self.inner.dim, self.inner.size

        def encode(self, frames: np.ndarray) -> np.ndarray:
            self.calls += 1
            if self.calls == 3:
                raise KilledError
            return self.inner.encode(frames)

    with pytest.raises(KilledError):
        extract_dataset(videos, out, FRAMES, encoder=DiesOnThirdVideo(), commit_every=1)
    # Committed after each video: the first two are a complete, valid dataset...
    assert VideoDataset.open(out).video_ids == ["blue", "green"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers
    # ...and the re-run extracts only the missing one.
    report = extract_dataset(videos, out, FRAMES, progress=False)
    assert report.added == ["red"] and sorted(report.kept) == ["blue", "green"]


def test_unreadable_inputs_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(UnreadableVideoError, match="empty"):
        read_frames(tmp_path / "empty.mp4", FRAMES)
    (tmp_path / "text.avi").write_text("this is not a video")
    with pytest.raises(UnreadableVideoError, match="cannot decode"):
        read_frames(tmp_path / "text.avi", FRAMES)
    with pytest.raises(VidretError, match="not a folder"):
        extract_dataset(tmp_path / "text.avi", tmp_path / "o", FRAMES)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no videos here")
    with pytest.raises(VidretError, match="no video files"):
        extract_dataset(tmp_path / "notes", tmp_path / "o", FRAMES)
    bad = tmp_path / "bad-captions.jsonl"
    bad.write_text('{"file": "a.mp4", "caption": "ok"}\n{"file": "b.mp4"}\nnot json\n')
    write_video(tmp_path / "v" / "a.mp4", "red")
    with pytest.raises(VidretError, match=r"bad-captions.jsonl:2: needs a non-empty") as err:
        extract_dataset(tmp_path / "v", tmp_path / "o", FRAMES, bad)
    assert "bad-captions.jsonl:3: malformed JSON" in str(err.value)


def test_fps_sampling_gives_variable_lengths(tmp_path: Path) -> None:
    write_video(tmp_path / "v" / "short.mp4", "red", seconds=1.0, fps=10)
    write_video(tmp_path / "v" / "long.mp4", "blue", seconds=3.0, fps=10)
    extract_dataset(tmp_path / "v", tmp_path / "d", Sampling(frames=None, fps=2), progress=False)
    expert = VideoDataset.open(tmp_path / "d").experts["efficientnet_lite0"]
    assert expert.lengths.tolist() == [6, 2]  # long (3 s), short (1 s): 2 frames a second
    assert not np.asarray(expert.features[1, 2:]).any()  # padding


def test_search_finds_the_matching_video(trained: dict) -> None:
    engine = SearchEngine(trained["index"])
    ranks = {}
    for scene in SCENES:
        result = engine.search(f"a {scene} pattern", k=len(SCENES))
        ids = [h.video_id for h in result.hits]
        ranks[scene] = ids.index(f"clips__{scene}_clip") + 1
        scores = [h.score for h in result.hits]
        assert scores == sorted(scores, reverse=True)
    # Six scenes, chance of rank 1 is 1/6: demand most at rank 1 and none far off.
    assert sum(r == 1 for r in ranks.values()) >= 5, ranks
    assert max(ranks.values()) <= 2, ranks


def test_search_cli_json_and_errors(trained: dict) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["search", str(trained["index"]), "a green pattern", "-k", "3",
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [r["rank"] for r in body["results"]] == [1, 2, 3]
    assert body["results"][0]["file_name"].endswith(".mkv")
    assert body["results"][0]["video_url"].startswith("file:///")
    assert body["results"][0]["video_url"].endswith(".mkv")
    with pytest.raises(VidretError, match="empty"):
        SearchEngine(trained["index"]).search("   ")


def test_index_refuses_another_model(trained: dict, tmp_path: Path) -> None:
    """An index answers with the model that built it. One that carries its query side
    (the ONNX graph) keeps doing so when the run is trained again; one whose queries run
    through the run's checkpoint (a fallback, or an index older than the graph) refuses a
    changed checkpoint."""
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    index = tmp_path / "index"
    build_index(run, trained["collection"], index, progress=False)
    before = [(h.video_id, h.score) for h in SearchEngine(index).search("a red ball").hits]
    fallback = tmp_path / "fallback"
    shutil.copytree(index, fallback)
    info = json.loads((fallback / "index.json").read_text())
    del info["model"]["query_tower"]
    (fallback / "index.json").write_text(json.dumps(info))
    # The run is trained again (another checkpoint).
    best = run / "checkpoints" / "best.pt"
    import torch

    state = torch.load(best, weights_only=False)
    for tensor in state["model"].values():
        tensor.add_(0.01)
    torch.save(state, best)
    after = [(h.video_id, h.score) for h in SearchEngine(index).search("a red ball").hits]
    assert after == before
    with pytest.raises(VidretError, match="different model"):
        SearchEngine(fallback)
    with pytest.raises(VidretError, match="already exists"):
        build_index(run, trained["collection"], index, progress=False)
    with pytest.raises(VidretError, match="not an index folder"):
        SearchEngine(tmp_path)


def test_collection_without_captions_cannot_be_trained_on(trained: dict, tmp_path: Path) -> None:
    cfg = load_config(REPO / "configs/meanpool-infonce.yaml", [*TINY, "data.split=all"])
    with pytest.raises(VidretError, match="no captions"):
        train(cfg, tmp_path / "run", trained["collection"], progress=False)


def test_http_api(trained: dict) -> None:
    from fastapi.testclient import TestClient

    from vidret.search.server import create_app

    client = TestClient(create_app(trained["index"]))
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["videos"] == len(SCENES)

    body = client.get("/search", params={"q": "a purple pattern", "k": 3}).json()
    assert [r["rank"] for r in body["results"]] == [1, 2, 3]
    top = body["results"][0]
    assert top["video_id"] == "clips__purple_clip"
    assert top["thumbnail_url"] == "/videos/clips__purple_clip/thumbnail"
    # what a card shows: no captions in this collection, so the file name; the duration
    assert top["caption"] is None and top["file_name"] == "purple clip.mkv"
    assert top["duration"] == pytest.approx(3.0, abs=0.1) and top["source_url"] is None
    assert body["normalization"] == "none" and body["below_floor"] is False
    assert len(client.get("/search", params={"q": "dog", "k": 1000}).json()["results"]) == 6
    normalized = client.get("/search", params={"q": "a purple pattern", "normalize": "qbnorm"})
    assert normalized.status_code == 200 and normalized.json()["normalization"] == "qbnorm"

    meta = client.get(f"/videos/{top['video_id']}").json()
    assert meta["metadata"]["file"] == "clips/purple clip.mkv"
    video = client.get(top["video_url"])
    assert (
        video.status_code == 200
        and video.content == (trained["videos"] / "clips" / "purple clip.mkv").read_bytes()
    )
    partial = client.get(top["video_url"], headers={"Range": "bytes=0-99"})
    assert partial.status_code == 206 and len(partial.content) == 100  # seeking in the player
    thumb = client.get(top["thumbnail_url"])
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"

    # Bad input: a 4xx with a message naming the problem, never a 500.
    for params, words in [
        ({"q": ""}, "q:"),
        ({"q": "   "}, "empty"),
        ({"q": "x" * 501}, "at most 500"),
        ({"q": "dog", "k": 0}, "k:"),
        ({"q": "dog", "k": 1001}, "k:"),  # the CLI's limit too (MAX_K)
        ({"q": "dog", "normalize": "softmax"}, "normalize:"),
        ({"q": "dog", "k": "ten"}, "k:"),
        ({}, "q:"),
    ]:
        response = client.get("/search", params=params)
        assert response.status_code == 422, (params, response.text)
        assert words in response.json()["error"], (params, response.json())
    missing = client.get("/videos/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert client.get("/videos/nope/file").status_code == 404

    spec = client.get("/openapi.json").json()
    assert {"/search", "/videos/{video_id}", "/health"} <= set(spec["paths"])
    assert "search-form" in client.get("/").text


def test_search_page_in_chromium(trained: dict, tmp_path: Path) -> None:
    """The real page in headless Chromium, against `vidret serve` in its own process."""
    import os
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")

    with serving(["serve", str(trained["index"])]) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(base + "/")
        page.fill("#q", "a green pattern")
        page.click("button[type=submit]")
        page.wait_for_selector(".card")
        cards = page.query_selector_all(".card")
        assert len(cards) == len(SCENES)
        assert cards[0].get_attribute("data-video-id") == "clips__green_clip"
        assert "results for" in page.text_content("#status")
        # Thumbnails really loaded (natural size of the saved frame).
        assert page.evaluate("document.querySelector('.card img').naturalWidth") == 224
        screenshots = [tmp_path / "search-page.png"]
        if os.environ.get("VIDRET_SCREENSHOT_DIR"):
            screenshots.append(Path(os.environ["VIDRET_SCREENSHOT_DIR"]) / "search-page.png")
        for shot in screenshots:
            page.screenshot(path=str(shot))
        # The card says what the video is (file name here: no captions) and how long.
        assert "green clip.mkv" in cards[0].text_content()
        assert "0:03" in cards[0].text_content()
        # A click plays the video in the page: the browser reads its duration.
        cards[0].click()
        page.wait_for_function("document.getElementById('video').readyState >= 1")
        duration = page.evaluate("document.getElementById('video').duration")
        assert duration == pytest.approx(3.0, abs=0.3)
        # A query nothing matches well: the page says so, and shows the hits on request.
        page.fill("#q", "zzz qqq xylophone tax law")
        page.click("button[type=submit]")
        page.wait_for_selector("#show-weak")
        assert "no good match" in page.text_content("#status")
        assert page.query_selector_all(".card") == []
        page.click("#show-weak")
        assert len(page.query_selector_all(".card")) == len(SCENES)
        # An empty query is refused in the page, with a message.
        page.fill("#q", "  ")
        page.click("button[type=submit]")
        assert "type what you are looking for" in page.text_content("#status")
        browser.close()


def test_moment_search_in_a_long_video_and_the_player_seeks(trained: dict, tmp_path: Path) -> None:
    """A long file of three scenes, indexed in 2 s segments: "a blue pattern" finds the
    blue part, and the page's player starts at the moment (headless Chromium)."""
    import shutil

    videos = tmp_path / "long-videos"
    write_scenes(videos / "long.mp4", [("red", 4.0), ("blue", 4.0), ("green", 4.0)], fps=8,
                 size=(120, 160))  # fmt: skip
    collection = tmp_path / "collection"
    extract_dataset(videos, collection, Sampling(frames=None, fps=2.0), progress=False)
    index = tmp_path / "index"
    build_index(trained["run"], collection, index, progress=False, segment_seconds=2.0)
    engine = SearchEngine(index)
    top = engine.search("a blue pattern", k=3).hits[0]
    start, end = top.video["segment"]
    assert start >= 3.0 and end <= 9.0, top.video  # within the blue part (4-8 s), +- 1 s
    assert engine.search("a red pattern", k=1).hits[0].video["segment"][1] <= 5.0
    # a moment's card: its thumbnail and file are served (the links of every hit work)
    from fastapi.testclient import TestClient

    from vidret.search.server import create_app

    client = TestClient(create_app(index))
    for hit in client.get("/search", params={"q": "a blue pattern", "k": 5}).json()["results"]:
        assert client.get(hit["thumbnail_url"]).status_code == 200, hit
        assert client.get(hit["video_url"]).status_code == 200, hit

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    with serving(["serve", str(index)]) as base, sync_api.sync_playwright() as p:
        flags = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
        browser = p.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_page()
        page.goto(base + "/")
        page.fill("#q", "a blue pattern")
        page.click("button[type=submit]")
        page.wait_for_selector(".card")
        assert "at 0:0" in page.text_content(".card .facts")  # the moment on the card
        page.click(".card")
        page.wait_for_function("document.getElementById('video').readyState >= 1")
        page.wait_for_function(f"document.getElementById('video').currentTime >= {start} - 0.05")
        assert f"#t={start:g},{end:g}" in page.evaluate("document.getElementById('video').src")
        assert "long" in page.text_content("#now-playing")
        browser.close()
