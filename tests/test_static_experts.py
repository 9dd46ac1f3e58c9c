"""Static supervision experts: exact mean pooling, cached, rebuilt when features change."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

import vidret.batches.static_experts as static_module
from vidret.batches.static_experts import mean_pooled, static_experts
from vidret.data.dataset import VideoDataset
from vidret.text.sentence_bert import default_model_path


def test_mean_pooling_uses_valid_frames_only(tmp_path: Path, demo_dir: Path) -> None:
    folder = tmp_path / "d"
    shutil.copytree(demo_dir, folder)
    ds = VideoDataset.open(folder)
    motion = ds.experts["motion"]
    pooled = mean_pooled(ds, "motion", progress=False)
    for row in range(10):
        n = motion.lengths[row]
        expected = motion.features[row, :n].mean(0) if n else np.zeros(motion.dim)
        np.testing.assert_allclose(pooled[row], expected, rtol=1e-5, atol=1e-6)


def test_cached_and_invalidated_by_new_features(
    tmp_path: Path, demo_dir: Path, monkeypatch
) -> None:
    folder = tmp_path / "d"
    shutil.copytree(demo_dir, folder)
    calls = []
    real = static_module._pool
    monkeypatch.setattr(static_module, "_pool", lambda e, p: calls.append(e.name) or real(e, p))
    ds = VideoDataset.open(folder)
    first = mean_pooled(ds, "appearance", progress=False)
    mean_pooled(VideoDataset.open(folder), "appearance", progress=False)
    assert calls == ["appearance"]
    feats = np.load(folder / "appearance.npy")
    np.save(folder / "appearance.npy", feats * 2)  # re-extracted features
    again = mean_pooled(VideoDataset.open(folder), "appearance", progress=False)
    assert calls == ["appearance", "appearance"]
    np.testing.assert_allclose(again, 2 * first, rtol=1e-5)


def test_static_experts_align_with_captions_and_videos(demo_dir: Path) -> None:
    ds = VideoDataset.open(demo_dir)
    experts = static_experts(ds, ["appearance", "motion"], default_model_path(), progress=False)
    assert experts.text.shape == (len(ds.captions), 384)
    assert set(experts.video) == {"appearance", "motion"}
    assert experts.video["motion"].shape == (ds.num_videos, 32)
