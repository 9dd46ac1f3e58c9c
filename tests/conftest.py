"""Shared fixtures: the generated demo dataset, and the real data beside the project."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from vidret.data.demo import make_demo_dataset

REPO = Path(__file__).resolve().parents[1]

# Caches (caption features) of the test session go to a folder of their own, shared with
# the subprocesses tests start, so a developer's own cache is never touched.
os.environ.setdefault("VIDRET_CACHE_DIR", tempfile.mkdtemp(prefix="vidret-test-cache-"))
os.environ["HF_HUB_OFFLINE"] = "1"


def shared_data_dir() -> Path:
    """`$VIDRET_SHARED_DATA`, else `../shared/data` beside the repository."""
    return Path(os.environ.get("VIDRET_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def msrvtt_1k() -> Path:
    path = shared_data_dir() / "msrvtt-1k"
    if not (path / "videos.jsonl").exists():
        pytest.skip(f"real data not found at {path} (set VIDRET_SHARED_DATA to the data folder)")
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated dataset, made once per test session; tests must not modify it."""
    return make_demo_dataset(
        tmp_path_factory.mktemp("demo") / "demo", num_videos=120, captions_per_video=5, seed=0
    )


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small dataset, a model trained on it for one epoch, its index, and a folder with
    one real video file; made once per session, tests must not modify them."""
    from helpers import TINY
    from vidret.config import load_config
    from vidret.search.build_index import build_index
    from vidret.train.trainer import train
    from vidret.video.synthetic import write_video

    root = tmp_path_factory.mktemp("small-world")
    data = make_demo_dataset(root / "data", num_videos=40, captions_per_video=3, seed=0)
    run = root / "run"
    cfg = load_config(REPO / "configs/meanpool-infonce.yaml", [*TINY, "train.epochs=1"])
    train(cfg, run, data, progress=False)
    index = root / "index"
    build_index(run, data, index, progress=False)
    videos = root / "videos"
    write_video(videos / "clip.mp4", "red", seconds=1.0, size=(64, 64))
    return {"root": root, "data": data, "run": run, "index": index, "videos": videos}
