"""The generated demo set: deterministic, and its similarity is graded as promised."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vidret.data.dataset import VideoDataset
from vidret.data.demo import make_demo_dataset


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = make_demo_dataset(tmp_path / "a", num_videos=40, captions_per_video=3, seed=7)
    b = make_demo_dataset(tmp_path / "b", num_videos=40, captions_per_video=3, seed=7)
    c = make_demo_dataset(tmp_path / "c", num_videos=40, captions_per_video=3, seed=8)
    for name in ("videos.jsonl", "captions.jsonl", "appearance.npy", "motion.npy"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "captions.jsonl").read_bytes() != (c / "captions.jsonl").read_bytes()
    meta = json.loads((a / "dataset.json").read_text())
    assert meta["generated"] is True and "generated" in meta["name"]


def _pooled_cosine(ds: VideoDataset) -> np.ndarray:
    x = np.asarray(ds.experts["appearance"].features).mean(axis=1)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def test_similarity_is_graded(demo_dir: Path) -> None:
    ds = VideoDataset.open(demo_dir)
    scene = np.array([v["scene"] for v in ds.videos])
    topic = np.array([v["category"] for v in ds.videos])
    cos = _pooled_cosine(ds)
    off = ~np.eye(len(scene), dtype=bool)
    same_scene = (scene[:, None] == scene[None, :]) & off
    same_topic = (topic[:, None] == topic[None, :]) & ~same_scene & off
    unrelated = topic[:, None] != topic[None, :]
    assert same_scene.any() and same_topic.any()
    assert cos[same_scene].mean() > cos[same_topic].mean() + 0.1
    assert cos[same_topic].mean() > cos[unrelated].mean() + 0.1


def test_captions_share_words_with_their_scene(demo_dir: Path) -> None:
    ds = VideoDataset.open(demo_dir)
    words = [set(c.split()) for c in ds.captions]
    scene = np.array([ds.videos[v]["scene"] for v in ds.caption_video])
    same = [
        len(words[i] & words[j])
        for i in range(0, 200, 7)
        for j in range(len(words))
        if i != j and scene[i] == scene[j]
    ]
    other = [
        len(words[i] & words[j])
        for i in range(0, 200, 7)
        for j in range(0, len(words), 5)
        if scene[i] != scene[j]
    ]
    assert np.mean(same) > np.mean(other) + 1.5


def test_motion_expert_has_variable_length_and_missing_videos(tmp_path: Path) -> None:
    ds = VideoDataset.open(make_demo_dataset(tmp_path / "d", num_videos=300, seed=0))
    lengths = ds.experts["motion"].lengths
    assert lengths.min() == 0 and lengths.max() <= ds.experts["motion"].frames
    assert len(set(lengths.tolist())) > 3
    motion = np.asarray(ds.experts["motion"].features)
    for row in np.flatnonzero(lengths < motion.shape[1])[:20]:
        assert not motion[row, lengths[row] :].any()  # padding is zero
