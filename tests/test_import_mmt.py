"""The MMT / Collaborative-Experts importer, on small pickles written in their layout."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vidret.cli import app
from vidret.data.dataset import VideoDataset
from vidret.data.import_mmt import import_mmt
from vidret.data.validate import check_dataset
from vidret.errors import VidretError


def write_release(src: Path) -> dict[str, np.ndarray]:
    """A release in CE's structured-symlinks layout, paths as its MSRVTT loader builds them:
    pooled and sequence experts, token-list captions, split lists, caption-side files."""
    rng = np.random.default_rng(0)
    src.mkdir()
    ids = [f"video{i}" for i in range(5)]
    captions = {
        vid: [["a", "man", f"does{k}", vid], ["someone", "cooks"]] for k, vid in enumerate(ids)
    }
    captions["video_no_feats"] = [["nobody", "has", "features"]]
    with open(src / "raw-captions.pkl", "wb") as f:
        pickle.dump(captions, f)

    pooled = {vid: rng.standard_normal(6).astype(np.float32) for vid in ids}
    pooled["video3"] = np.float64("nan")  # CE marks a missing expert with a scalar NaN
    pooled["video_uncaptioned"] = np.ones(6, np.float32)
    seq = {vid: rng.standard_normal((k + 2, 4)).astype(np.float32) for k, vid in enumerate(ids)}
    seq["video1"][0] = np.nan  # a NaN frame is dropped
    for folder, name, data in (
        # CE's paths: visual_feat_paths("scene.densenet161.0") with fps 25, 256 px, stride 1,
        # offset 0; MSRVTT's custom audio path (dataset_paths "custom_paths")
        ("aggregated_scene_25fps_256px_stride1_offset0", "densenet161-avg.pickle", pooled),
        ("aggregated_audio_feats", "Audio_MSRVTT_new.pickle", seq),
    ):
        (src / folder).mkdir()
        with open(src / folder / name, "wb") as f:
            pickle.dump(data, f)
    (src / "train_list_jsfusion.txt").write_text("video0\nvideo1\nvideo2\nvideo_gone\n")
    (src / "val_list_jsfusion.txt").write_text("video3\nvideo4\n")
    # Caption-side files of a CE release, never video experts: the 1k-A caption choice
    # (read by CE's MSRVTT loader) and per-caption word features (aggregated_text_feats).
    with open(src / "jsfusion_val_caption_idx.pkl", "wb") as f:
        pickle.dump({"video3": 1, "video4": 0}, f)
    (src / "aggregated_text_feats").mkdir()
    text_feats = {vid: [rng.standard_normal((2 + k, 3)) for k, _ in enumerate(caps)]
                  for vid, caps in captions.items()}  # fmt: skip
    with open(src / "aggregated_text_feats" / "w2v_MSRVTT.pickle", "wb") as f:
        pickle.dump(text_feats, f)
    return {"pooled_video0": pooled["video0"], "seq_video2": seq["video2"], "text": text_feats}


def test_import_writes_a_valid_dataset(tmp_path: Path) -> None:
    arrays = write_release(tmp_path / "release")
    report = import_mmt(tmp_path / "release", tmp_path / "out", progress=False)
    assert report.videos == 6 and report.captions == 11
    assert check_dataset(tmp_path / "out", progress=False).ok

    ds = VideoDataset.open(tmp_path / "out")
    assert set(ds.experts) == {"densenet161-avg", "Audio_MSRVTT_new"}
    row = ds.video_index()
    pooled = ds.experts["densenet161-avg"]
    assert pooled.features.shape == (6, 1, 6)
    np.testing.assert_array_equal(pooled.features[row["video0"], 0], arrays["pooled_video0"])
    assert pooled.lengths[row["video3"]] == 0  # NaN scalar -> missing
    assert pooled.lengths[row["video_no_feats"]] == 0
    seq = ds.experts["Audio_MSRVTT_new"]
    assert seq.lengths[row["video2"]] == 4 and seq.lengths[row["video1"]] == 2  # NaN row dropped
    np.testing.assert_array_equal(seq.features[row["video2"], :4], arrays["seq_video2"])
    assert ds.captions[ds.caption_video.tolist().index(row["video0"])] == "a man does0 video0"
    assert "video_gone" not in (tmp_path / "out/splits/train_list_jsfusion.txt").read_text()
    protocol = {"1k-A_train": 3, "1k-A_test": 2}
    assert report.splits == {"train_list_jsfusion": 3, "val_list_jsfusion": 2, **protocol}
    assert (tmp_path / "out/splits/1k-A_test.txt").read_text() == "video3\t1\nvideo4\t0\n"


def test_activitynet_joins_captions_into_a_paragraph(tmp_path: Path) -> None:
    write_release(tmp_path / "release")
    import_mmt(tmp_path / "release", tmp_path / "anet", dataset="activitynet", progress=False)
    ds = VideoDataset.open(tmp_path / "anet")
    assert len(ds.captions) == ds.num_videos
    assert ds.captions[ds.video_index()["video0"]] == "a man does0 video0. someone cooks."


def test_max_frames_subsamples_evenly(tmp_path: Path) -> None:
    write_release(tmp_path / "release")
    import_mmt(tmp_path / "release", tmp_path / "out", max_frames=3, progress=False)
    assert VideoDataset.open(tmp_path / "out").experts["Audio_MSRVTT_new"].frames == 3


def test_unsafe_pickle_is_refused(tmp_path: Path) -> None:
    write_release(tmp_path / "release")

    class Evil:
        def __reduce__(self):  # would run a shell command on load
            return (os.system, ("echo pwned",))

    with open(tmp_path / "release" / "evil.pkl", "wb") as f:
        pickle.dump({"video0": Evil()}, f)
    with pytest.raises(VidretError, match="refusing to load"):
        import_mmt(tmp_path / "release", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing half-written left behind


def test_missing_captions_and_existing_destination(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(VidretError, match="no raw-captions"):
        import_mmt(tmp_path / "empty", tmp_path / "out", progress=False)
    write_release(tmp_path / "release")
    (tmp_path / "taken").mkdir()
    with pytest.raises(VidretError, match="already exists"):
        import_mmt(tmp_path / "release", tmp_path / "taken", progress=False)


def test_cli_import(tmp_path: Path) -> None:
    write_release(tmp_path / "release")
    result = CliRunner().invoke(
        app, ["data", "import-mmt", str(tmp_path / "release"), str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "imported 6 videos, 11 captions" in result.output
    assert "expert Audio_MSRVTT_new: dim 4" in result.output


def test_ce_word_features_become_caption_features_a_model_can_read(tmp_path: Path) -> None:
    """CE's aggregated_text_feats (video -> one [words, dim] array per caption, in the order
    of raw-captions.pkl) are a caption-side expert: caption_features/<name>.npy, one row per
    caption of captions.jsonl, usable as the caption encoder's tokens (text.source)."""
    from helpers import TINY
    from vidret.config import load_config
    from vidret.runs.query_encoder import QueryEncoder
    from vidret.train.trainer import train

    arrays = write_release(tmp_path / "release")
    import_mmt(tmp_path / "release", tmp_path / "out", progress=False)
    ds = VideoDataset.open(tmp_path / "out")
    words = ds.caption_features["w2v_MSRVTT"]
    assert words.features.shape == (11, 3, 3) and "w2v_MSRVTT" not in ds.experts
    for row, vid in enumerate(ds.video_ids):
        for k, r in enumerate(np.flatnonzero(ds.caption_video == row)):
            want = arrays["text"][vid][k]
            assert words.lengths[r] == len(want)
            np.testing.assert_allclose(words.features[r, : len(want)], want, atol=2e-3)  # fp16

    cfg = load_config(None, [*TINY, "train.epochs=1", "train.batch_size=4", "data.split=all",
                             "text.encoder=tokens", "text.source=w2v_MSRVTT"])  # fmt: skip
    train(cfg, tmp_path / "run", tmp_path / "out", progress=False)
    with pytest.raises(VidretError, match="cannot embed a new query"):
        QueryEncoder(tmp_path / "run")
    # its videos can still be indexed; the index says why it has no query graph
    from vidret.search.build_index import build_index

    index = build_index(tmp_path / "run", tmp_path / "out", tmp_path / "index", progress=False)
    assert "cannot embed a new query" in index.info["model"]["query_tower"]["fallback"]
