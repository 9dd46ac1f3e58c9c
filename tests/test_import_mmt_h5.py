"""MMT's feature release, as gabeur/mmt ships it and its loader reads it.

The fixture is written from `base/base_dataset.py::get_sample_data` and the MSR-VTT
`configure_train_test_splits` of gabeur/mmt, not from our importer: one HDF5 file per
video at `vid_feat_files/mult_h5/<c1>/<c2>/<c3>/<video>.h5` beside `symlinked-feats/`
(MMT's `cache_dir = dirname(data_dir)/vid_feat_files/mult_h5`), captions as arrays of
byte words in `raw_captions.<i>` (the loader decodes each word as UTF-8), experts in
`features.<expert>` with an empty array or a NaN first value marking a missing one, and
`features_t.<expert>` start/end times that the loader uses for s3d and vggish only.
Expected times are computed with the loader's own rule (`get_feature_timings`: starts
`linspace(0, (n-1)*w, n)`, ends `linspace(w, (n-1)*w + w, n)`, then their mean).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from vidret.data.dataset import VideoDataset
from vidret.data.import_mmt import import_mmt
from vidret.data.splits import scored_captions
from vidret.data.validate import check_dataset
from vidret.errors import VidretError

h5py = pytest.importorskip("h5py")

DIMS = {"rgb": 16, "s3d": 8, "face": 4, "vggish": 6}  # small stand-ins for 2048/1024/512/128
N_FEATS = {"rgb": 40, "s3d": 7, "face": 1, "vggish": 5}


def _loader_times(n: int, width: float) -> np.ndarray:
    """MMT's get_feature_timings with stride = width, averaged over (start, end)."""
    starts = np.linspace(0, (n - 1) * width, num=n)
    ends = np.linspace(width, (n - 1) * width + width, num=n)
    return np.stack((starts, ends), axis=-1).mean(axis=1)


def write_release(root: Path, videos: int = 12) -> dict:
    rng = np.random.default_rng(0)
    truth: dict = {"captions": {}, "features": {}, "s3d_t": {}}
    h5_root = root / "vid_feat_files" / "mult_h5"
    for i in range(videos):
        vid = f"video{i}"
        path = h5_root / vid[0] / vid[1] / vid[2] / f"{vid}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        caps = [f"a person number {i} does thing {k}" for k in range(3 + i % 2)]
        truth["captions"][vid] = caps
        with h5py.File(path, "w") as f:
            for k, cap in enumerate(caps):
                f[f"raw_captions.{k}"] = np.array([w.encode() for w in cap.split()], dtype="S")
                f[f"raw_captions_t.{k}"] = np.zeros((len(cap.split()), 2))
            for expert, dim in DIMS.items():
                n = N_FEATS[expert] + i % 3
                x = rng.standard_normal((n, dim)).astype(np.float32)
                if expert == "face" and i % 4 == 0:
                    x[0, 0] = np.nan  # the loader's missing marker
                if expert == "vggish" and i == 5:
                    x = np.zeros((0, dim), np.float32)  # an empty array: missing too
                f[f"features.{expert}"] = x
                truth["features"][(vid, expert)] = x
                if expert in ("s3d", "vggish", "rgb") and len(x):
                    t = np.stack([np.arange(n) * 1.5, np.arange(n) * 1.5 + 1.0], axis=1)
                    f[f"features_t.{expert}"] = t  # rgb's are ignored by the loader
                    truth["s3d_t"][(vid, expert)] = t.mean(axis=1)
    lists = root / "symlinked-feats"
    lists.mkdir()
    ids = [f"video{i}" for i in range(videos)]
    (lists / "train_list_jsfusion.txt").write_text("\n".join(ids[:8]) + "\n")
    (lists / "val_list_jsfusion.txt").write_text("\n".join(ids[8:]) + "\n")
    truth["idx"] = {vid: (int(vid[5:]) * 7) % 3 for vid in ids[8:]}
    with open(lists / "jsfusion_val_caption_idx.pkl", "wb") as f:
        pickle.dump(truth["idx"], f, protocol=2)
    (lists / "train_list.txt").write_text("\n".join(ids[:6]) + "\n")
    (lists / "val_list.txt").write_text("\n".join(ids[6:8]) + "\n")
    (lists / "test_list.txt").write_text("\n".join(ids[8:]) + "\n")
    return truth


def test_the_mmt_release_imports_as_its_loader_reads_it(tmp_path: Path) -> None:
    truth = write_release(tmp_path / "MSRVTT")
    report = import_mmt(
        tmp_path / "MSRVTT", tmp_path / "out", "msrvtt", max_frames=30, progress=False
    )
    ds = VideoDataset.open(tmp_path / "out")
    assert set(ds.experts) == set(DIMS)
    assert report.videos == 12 and report.captions == sum(
        len(c) for c in truth["captions"].values()
    )
    index = ds.video_index()
    for vid, caps in truth["captions"].items():
        rows = np.flatnonzero(ds.caption_video == index[vid])
        assert [ds.captions[r] for r in rows] == caps  # byte words decoded, order kept
    for (vid, expert), x in truth["features"].items():
        e, row = ds.experts[expert], index[vid]
        missing = len(x) == 0 or np.isnan(x[0, 0])
        if missing:
            assert e.lengths[row] == 0
            continue
        keep = (
            np.linspace(0, len(x) - 1, 30).round().astype(int) if len(x) > 30 else np.arange(len(x))
        )
        np.testing.assert_array_equal(e.features[row, : e.lengths[row]], x[keep])
        got_t = e.times[row, : e.lengths[row]]
        if expert in ("s3d", "vggish"):
            np.testing.assert_allclose(got_t, truth["s3d_t"][(vid, expert)][keep], rtol=1e-6)
        elif expert == "rgb":  # the file's times are ignored, 0.2 s widths used
            np.testing.assert_allclose(got_t, _loader_times(len(x), 0.2)[keep], rtol=1e-6)
        else:  # face: no time
            assert np.isnan(got_t).all()


def test_1k_a_scores_the_caption_the_index_names(tmp_path: Path) -> None:
    truth = write_release(tmp_path / "MSRVTT")
    import_mmt(tmp_path / "MSRVTT", tmp_path / "out", "msrvtt", progress=False)
    out = tmp_path / "out"
    assert scored_captions(out, "1k-A_test") == truth["idx"]
    assert all(k is None for k in scored_captions(out, "1k-A_train").values())
    report = check_dataset(out, progress=False)
    assert report.ok, report.problems
    splits = report.summary["splits"]
    assert splits["1k-A_test"] == {"videos": 4, "captions": 4}  # one caption per video
    assert splits["1k-A_train"]["captions"] == sum(
        len(truth["captions"][f"video{i}"]) for i in range(8)
    )
    assert {s: splits[s]["videos"] for s in ("full_train", "full_val", "full_test")} == {
        "full_train": 6, "full_val": 2, "full_test": 4}  # fmt: skip

    from vidret.batches.prepared import prepare_data
    from vidret.config import load_config

    cfg = load_config(None, ["data.split=named", "data.names={train: 1k-A_train, test: 1k-A_test}"])
    prepared = prepare_data(cfg, out, progress=False)
    scored = [prepared.dataset.captions[r] for r in prepared.scored["test"]]
    assert scored == [truth["captions"][v][k] for v, k in truth["idx"].items()]
    assert "train" not in prepared.scored  # training uses every caption


def test_bad_releases_are_clear_errors_and_write_nothing(tmp_path: Path) -> None:
    write_release(tmp_path / "MSRVTT")
    bad = tmp_path / "MSRVTT" / "vid_feat_files" / "mult_h5" / "v" / "i" / "d" / "video3.h5"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(VidretError, match=r"video3\.h5: not a readable HDF5 file"):
        import_mmt(tmp_path / "MSRVTT", tmp_path / "out", "msrvtt", progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))

    write_release(tmp_path / "B")
    (tmp_path / "B" / "symlinked-feats" / "jsfusion_val_caption_idx.pkl").unlink()
    with pytest.raises(VidretError, match=r"jsfusion_val_caption_idx\.pkl: missing"):
        import_mmt(tmp_path / "B", tmp_path / "out", "msrvtt", progress=False)

    write_release(tmp_path / "C")
    misplaced = tmp_path / "C" / "vid_feat_files" / "mult_h5" / "v" / "i" / "d" / "other0.h5"
    (tmp_path / "C" / "vid_feat_files" / "mult_h5" / "v" / "i" / "d" / "video0.h5").rename(
        misplaced
    )
    with pytest.raises(VidretError, match=r"other0\.h5: an MMT feature file must be at"):
        import_mmt(tmp_path / "C", tmp_path / "out", "msrvtt", progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_imports_the_mmt_layout(tmp_path: Path) -> None:
    import subprocess
    import sys

    write_release(tmp_path / "MSRVTT")
    subprocess.run(
        [sys.executable, "-m", "vidret", "data", "import-mmt", str(tmp_path / "MSRVTT"),
         str(tmp_path / "out"), "--dataset", "msrvtt"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "vidret", "data", "check", str(tmp_path / "out"), "--json"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    summary = json.loads(done.stdout)
    assert summary["splits"]["1k-A_test"] == {"videos": 4, "captions": 4}


def test_train_and_eval_score_1k_a_as_published(tmp_path: Path) -> None:
    """Import -> train on the named 1k-A splits -> `vidret eval --split 1k-A_test`: the
    test metrics come from exactly one caption per test video, against all test videos."""
    import subprocess
    import sys

    from helpers import TINY
    from vidret.config import load_config
    from vidret.train.trainer import train

    truth = write_release(tmp_path / "MSRVTT")
    import_mmt(tmp_path / "MSRVTT", tmp_path / "out", "msrvtt", progress=False)
    cfg = load_config(
        None,
        [*TINY, "train.batch_size=4", "train.epochs=2", "data.split=named",
         "data.names={train: 1k-A_train, test: 1k-A_test}"],
    )  # fmt: skip
    result = train(cfg, tmp_path / "run", tmp_path / "out", progress=False)
    assert "test" in result
    saved = tmp_path / "sims.npz"
    subprocess.run(
        [sys.executable, "-m", "vidret", "eval", "--run", str(tmp_path / "run"), "--data",
         str(tmp_path / "out"), "--split", "1k-A_test", "--save-sims", str(saved)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    with np.load(saved) as z:
        sims, columns = z["sims"], z["caption_to_video"]
    assert sims.shape == (4, 4) and sorted(columns.tolist()) == [0, 1, 2, 3]
    own = json.loads((tmp_path / "run" / "test_metrics.json").read_text())["test"]
    from vidret.eval.metrics import retrieval_metrics

    assert retrieval_metrics(sims, columns)["Rsum"] == pytest.approx(own["Rsum"])
    assert len(truth["idx"]) == 4


def test_an_unknown_file_in_the_release_is_named(tmp_path: Path) -> None:
    write_release(tmp_path / "MSRVTT")
    stray = tmp_path / "MSRVTT" / "vid_feat_files" / "mult_h5" / "v" / "i" / "d" / "notes.txt"
    stray.write_text("left here by mistake")
    with pytest.raises(VidretError, match=r"notes\.txt: not an HDF5 feature file"):
        import_mmt(tmp_path / "MSRVTT", tmp_path / "out", "msrvtt", progress=False)


def test_lsmdc_csv_lists_and_activitynet_paragraphs(tmp_path: Path) -> None:
    """LSMDC's loader reads the first tab-separated column of its two CSVs; ActivityNet
    uses train_list.txt and val_1_list.txt, and its captions form one paragraph."""
    truth = write_release(tmp_path / "LSMDC")
    lists = tmp_path / "LSMDC" / "symlinked-feats"
    row = "{}\t00.01.02.000\t00.01.05.000\tSomeone looks at someone.\n"
    (lists / "LSMDC16_annos_training.csv").write_text(
        "".join(row.format(f"video{i}") for i in range(9))
    )
    (lists / "LSMDC16_challenge_1000_publictect.csv").write_text(
        "".join(row.format(f"video{i}") for i in (9, 10, 11))
    )
    import_mmt(tmp_path / "LSMDC", tmp_path / "lsmdc", "lsmdc", progress=False)
    assert scored_captions(tmp_path / "lsmdc", "test") == {
        "video9": None,
        "video10": None,
        "video11": None,
    }
    assert len(scored_captions(tmp_path / "lsmdc", "train")) == 9

    write_release(tmp_path / "ANET")
    lists = tmp_path / "ANET" / "symlinked-feats"
    (lists / "train_list.txt").write_text("\n".join(f"video{i}" for i in range(10)) + "\n")
    (lists / "val_1_list.txt").write_text("video10\nvideo11\n")
    import_mmt(tmp_path / "ANET", tmp_path / "anet", "activitynet", progress=False)
    ds = VideoDataset.open(tmp_path / "anet")
    assert len(ds.captions) == 12  # one paragraph per video
    first = ds.captions[int(np.flatnonzero(ds.caption_video == ds.video_index()["video0"])[0])]
    assert first == " ".join(c + "." for c in truth["captions"]["video0"])
    assert list(scored_captions(tmp_path / "anet", "val1")) == ["video10", "video11"]


def _reference_scored_captions(release: Path, vid: str, captions_per_video: int) -> list[str]:
    """What gabeur/mmt's `BaseDataset.__getitem__` scores for a test video: the file's
    `raw_captions.<i>` in order, then `captions[:captions_per_video]` (its MSRVTT test
    configs set 1; CE's `num_test_captions` 1 likewise takes caption 0)."""
    path = release / "vid_feat_files" / "mult_h5" / vid[0] / vid[1] / vid[2] / f"{vid}.h5"
    with h5py.File(path, "r") as f:
        count = len([k for k in f if k.startswith("raw_captions.")])
        captions = [" ".join(w.decode() for w in f[f"raw_captions.{i}"][()]) for i in range(count)]
    return captions[:captions_per_video]


def test_1k_b_and_full_score_captions_as_the_references_do(tmp_path: Path) -> None:
    """1k-B scores each test video's first caption (MMT: captions_per_video 1, "the first
    text caption"; CE: num_test_captions 1); the full split has both conventions: all
    captions (CE's evaluation, 20) and the first (MMT's default)."""
    release = tmp_path / "MSRVTT"
    truth = write_release(release)
    lists = release / "symlinked-feats"
    ids = [f"video{i}" for i in range(12)]
    (lists / "train_list_miech.txt").write_text("\n".join(ids[:9]) + "\n")
    (lists / "test_list_miech.txt").write_text("\n".join(ids[9:]) + "\n")
    import_mmt(release, tmp_path / "out", "msrvtt", progress=False)
    ds = VideoDataset.open(tmp_path / "out")
    index = ds.video_index()

    def scored(split: str) -> dict[str, list[str]]:
        out = {}
        for vid, k in scored_captions(tmp_path / "out", split).items():
            rows = np.flatnonzero(ds.caption_video == index[vid])
            out[vid] = [ds.captions[r] for r in rows] if k is None else [ds.captions[rows[k]]]
        return out

    assert scored("1k-B_test") == {v: _reference_scored_captions(release, v, 1) for v in ids[9:]}
    assert scored("full-first_test") == {
        v: _reference_scored_captions(release, v, 1) for v in ids[8:]}  # fmt: skip
    assert scored("full_test") == {v: truth["captions"][v] for v in ids[8:]}
    assert scored("1k-B_train") == {v: truth["captions"][v] for v in ids[:9]}
    splits = check_dataset(tmp_path / "out", progress=False).summary["splits"]
    assert splits["1k-B_test"] == {"videos": 3, "captions": 3}
    assert splits["full-first_test"] == {"videos": 4, "captions": 4}
