"""The hardening pass (issue 25), each case built the way it was found: a real race against
a running server, real symlink loops, real malformed HDF5 and pickle releases, a real
file name that is not UTF-8. The CLI cases that are one line each are in
test_bad_inputs.py's catalogue."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
import threading
import time
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from test_bad_inputs import run_vidret
from vidret.data.format import video_id_problem
from vidret.search.local_server import serving
from vidret.search.server import create_app
from vidret.video.synthetic import write_video

h5py = pytest.importorskip("h5py")

PASSWD = "root:x:0:0"


def _index_pointing_at(
    small_world: dict[str, Path], root: Path, path: str, videos: Path, thumbnail: str = ""
) -> tuple[Path, str]:
    """A copy of the small world's index whose first video's file is `path` (in `videos`)."""
    index = root / "index"
    shutil.copytree(small_world["index"], index)
    rows = [json.loads(line) for line in (index / "videos.jsonl").read_text().splitlines()]
    rows[0]["path"] = path
    if thumbnail:
        rows[0]["thumbnail"] = thumbnail
    (index / "videos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    info = json.loads((index / "index.json").read_text())
    info["files"] = {"videos": str(videos), "thumbnails": str(videos)}
    (index / "index.json").write_text(json.dumps(info))
    return index, rows[0]["video_id"]


# ---- 1. the check-then-open race, against a running server


def test_a_file_swapped_for_a_link_is_never_served(
    small_world: dict[str, Path], tmp_path: Path
) -> None:
    """A thread swaps the video file between a regular file and a symlink to /etc/passwd
    (each swap one atomic rename) while a running `vidret serve` is asked for it: every
    answer is the video or a 404, never the password file (before the fix: 17% of
    answers were /etc/passwd, some 500s)."""
    videos = tmp_path / "videos"
    videos.mkdir()
    clip = write_video(videos / "clip.mp4", "red", seconds=1.0, size=(64, 64)).read_bytes()
    swap = videos / "swap.mp4"
    swap.write_bytes(clip)
    index, vid = _index_pointing_at(small_world, tmp_path, str(swap), videos)
    stop = threading.Event()
    swaps = [0]

    def swapper() -> None:
        while not stop.is_set():
            link, regular = videos / ".link.tmp", videos / ".file.mp4.tmp"
            link.unlink(missing_ok=True)
            os.symlink("/etc/passwd", link)
            os.replace(link, swap)
            regular.write_bytes(clip)
            os.replace(regular, swap)
            swaps[0] += 1

    statuses: dict[int, int] = {}
    with serving(["serve", str(index)]) as base:
        thread = threading.Thread(target=swapper, daemon=True)
        thread.start()
        try:
            with httpx.Client(base_url=base, timeout=10) as client:
                deadline = time.monotonic() + 8
                while time.monotonic() < deadline:
                    response = client.get(f"/videos/{vid}/file")
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    assert PASSWD not in response.text
                    if response.status_code == 200:
                        assert response.content == clip  # what was checked is what is sent
        finally:
            stop.set()
            thread.join()
    assert set(statuses) <= {200, 404}, statuses
    assert statuses.get(200, 0) > 10 and swaps[0] > 100, (statuses, swaps)


def test_byte_ranges_and_a_hard_link(small_world: dict[str, Path], tmp_path: Path) -> None:
    """Range requests still work on the descriptor; a hard link inside the folder is
    served as the file it is (README: what a hard link there means)."""
    videos = tmp_path / "videos"
    videos.mkdir()
    data = write_video(videos / "clip.mp4", "red", seconds=1.0, size=(64, 64)).read_bytes()
    os.link(videos / "clip.mp4", videos / "same.mp4")
    index, vid = _index_pointing_at(small_world, tmp_path, str(videos / "same.mp4"), videos)
    client = TestClient(create_app(index))
    whole = client.get(f"/videos/{vid}/file")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    part = client.get(f"/videos/{vid}/file", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = client.get(f"/videos/{vid}/file", headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    past = client.get(f"/videos/{vid}/file", headers={"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416


# ---- 2. symlink loops


def test_a_symlink_loop_is_a_problem_not_a_crash(
    small_world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").symlink_to(videos / "b.mp4")
    (videos / "b.mp4").symlink_to(videos / "a.mp4")
    (videos / "t.jpg").symlink_to(videos / "t.jpg")
    index, vid = _index_pointing_at(small_world, tmp_path, "a.mp4", videos, thumbnail="t.jpg")
    client = TestClient(create_app(index))
    found = client.get("/search", params={"q": "a red pattern", "k": 50})
    assert found.status_code == 200
    hit = next(h for h in found.json()["results"] if h["video_id"] == vid)
    assert hit["video_url"] is None and hit["thumbnail_url"] is None
    assert client.get(f"/videos/{vid}/file").status_code == 404
    assert client.get(f"/videos/{vid}/thumbnail").status_code == 404

    data = tmp_path / "data"
    shutil.copytree(small_world["data"], data, ignore=shutil.ignore_patterns("cache"))
    (data / "loop.mp4").symlink_to(data / "loop.mp4")
    lines = (data / "videos.jsonl").read_text().splitlines()
    lines[0] = json.dumps({**json.loads(lines[0]), "path": "loop.mp4"})
    (data / "videos.jsonl").write_text("\n".join(lines) + "\n")
    for args in (
        ["data", "check", str(data)],
        ["index", "--run", str(small_world["run"]), "--data", str(data), "--out",
         str(tmp_path / "i")],
    ):  # fmt: skip
        code, output = run_vidret(args, capsys)
        assert code != 0 and "Traceback" not in output
        assert "videos.jsonl:1: 'path'" in output and "cannot be resolved" in output


# ---- 3. the id alphabet

BAD_IDS = ["a/b", "<b>x</b>", "../../etc/passwd", "x?y", "h#t", "p%41", "a\nb", "a\x00b",
           ".", "..", "%2e%2e", "", " ", "a b", "é", "x" * 201]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_IDS, ids=[repr(b) for b in BAD_IDS])
def test_ids_outside_the_alphabet_are_refused_with_their_line(
    small_world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, bad: str
) -> None:
    data = tmp_path / "data"
    shutil.copytree(small_world["data"], data, ignore=shutil.ignore_patterns("cache"))
    lines = (data / "videos.jsonl").read_text().splitlines()
    lines[2] = json.dumps({**json.loads(lines[2]), "video_id": bad})
    (data / "videos.jsonl").write_text("\n".join(lines) + "\n")
    code, output = run_vidret(["data", "check", str(data)], capsys)
    assert code == 1 and "Traceback" not in output
    assert "videos.jsonl:3:" in output and "video_id" in output


def test_the_ids_of_the_field_fit_the_alphabet() -> None:
    for good in ("video7", "v_-Hx1Y2z", "0001_American_Beauty_00.00.51.926-00.00.54.129",
                 "clips__blue_clip-2", "_x"):  # fmt: skip
        assert video_id_problem(good) is None, good


def test_urls_escape_the_id(tmp_path: Path) -> None:
    from vidret.search.hits import card

    (tmp_path / "x?y.jpg").write_bytes(b"\xff\xd8\xff")
    shown = card({"video_id": "x?y", "thumbnail": "x?y.jpg"}, {"thumbnails": str(tmp_path)})
    assert shown["thumbnail_url"] == "/videos/x%3Fy/thumbnail"


# ---- 5. demo-videos into a user's folder


def test_demo_videos_keep_a_users_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "captions.jsonl").write_text('{"file": "holiday.mp4", "caption": "mine"}\n')
    code, output = run_vidret(["data", "demo-videos", str(folder)], capsys)
    assert code == 2 and "not empty" in output and "--overwrite" in output
    assert (folder / "captions.jsonl").read_text().count("mine") == 1
    code, output = run_vidret(["data", "demo-videos", str(folder), "--clips", "1",
                               "--overwrite"], capsys)  # fmt: skip
    assert code == 0, output
    assert "mine" not in (folder / "captions.jsonl").read_text()


# ---- 6. a file name that is not UTF-8; a subfolder that cannot be read


def test_extract_names_a_bad_file_name_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = tmp_path / "videos"
    write_video(videos / "good.mp4", "red", seconds=0.5, size=(64, 64))
    bad = os.fsdecode(bytes(videos) + b"/caf\xe9.mp4")  # Latin-1 bytes: not UTF-8
    shutil.copy(videos / "good.mp4", bad)
    hidden = videos / "private"
    write_video(hidden / "inside.mp4", "blue", seconds=0.5, size=(64, 64))
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if not isinstance(path, int) and os.fspath(path) == str(
            hidden
        ):  # as for a folder of another user (root reads all)
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "out"
    code, output = run_vidret(["extract", str(videos), "--out", str(out), "--frames", "2"], capsys)
    assert code == 0, output
    assert "caf\\xe9.mp4" in output and "not valid UTF-8" in output
    assert "private/" in output and "not readable" in output
    rows = [json.loads(x) for x in (out / "videos.jsonl").read_text().splitlines()]
    assert [r["file"] for r in rows] == ["good.mp4"]


# ---- 7. the importer on malformed releases


def _h5_release(root: Path, change: object) -> Path:
    """A one-video MMT release (two, so a split has room) with `change(file)` applied to
    the first video's HDF5 file."""
    for i, vid in enumerate(("video0", "video1")):
        path = root / "vid_feat_files" / "mult_h5" / vid[0] / vid[1] / vid[2] / f"{vid}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            f["raw_captions.0"] = np.array([b"a", b"dog", b"runs"], dtype="S")
            f["features.rgb"] = np.arange(12, dtype=np.float32).reshape(4, 3) + i
            if i == 0:
                change(f)  # type: ignore[operator]
    return root


def _replace(key: str, value: object) -> object:
    def change(f: object) -> None:
        del f[key]  # type: ignore[attr-defined]
        f[key] = value  # type: ignore[index]

    return change


def _group(f: object) -> None:
    del f["features.rgb"]  # type: ignore[attr-defined]
    f.create_group("features.rgb")  # type: ignore[attr-defined]


H5_CASES = [
    ("caption not UTF-8", _replace("raw_captions.0", np.array([b"caf\xe9"], dtype="S")), "raw_captions.0 is not valid UTF-8"),
    ("a group where features belong", _group, "features.rgb is a Group"),
    ("string features", _replace("features.rgb", np.array([["a", "b"]], dtype="S")), "expected numbers"),
    ("zero-dim features", _replace("features.rgb", np.float32(1.0)), "features.rgb has shape []"),
    ("a group as caption", lambda f: (f.__delitem__("raw_captions.0"), f.create_group("raw_captions.0")), "raw_captions.0 is a Group"),
    ("features of 0 dimensions", _replace("features.rgb", np.zeros((3, 0), np.float32)), "0 dimensions"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expect"), [c[1:] for c in H5_CASES], ids=[c[0] for c in H5_CASES]
)
def test_malformed_hdf5_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture, change: object, expect: str
) -> None:
    src = _h5_release(tmp_path / "release", change)
    code, output = run_vidret(["data", "import-mmt", str(src), str(tmp_path / "out")], capsys)
    assert code == 2 and "Traceback" not in output, output
    assert "video0.h5" in output and expect in output, output
    assert not (tmp_path / "out").exists()


def test_hdf5_nan_features_are_dropped_and_a_huge_declared_array_is_not_read(
    tmp_path: Path,
) -> None:
    from vidret.data.import_mmt import import_mmt

    def change(f: object) -> None:
        x = np.arange(12, dtype=np.float32).reshape(4, 3)
        x[2, 1] = np.inf
        x[1, 0] = np.nan
        _replace("features.rgb", x)(f)
        # 32 KB on disk, 40 GB declared: only the kept rows may be read
        f.create_dataset("features.big", shape=(10**7, 1000), dtype=np.float32, chunks=(64, 1000))
        f["features.rgb.lengths"] = np.ones((2, 3), np.float32)  # would clash with rgb's

    src = _h5_release(tmp_path / "release", change)
    assert (src / "vid_feat_files/mult_h5/v/i/d/video0.h5").stat().st_size < 100_000
    import_mmt(src, tmp_path / "out", max_frames=8, progress=False)
    out = tmp_path / "out"
    rgb, lengths = np.load(out / "rgb.npy"), np.load(out / "rgb.lengths.npy")
    assert lengths.tolist() == [2, 4]  # video0 lost its NaN and Inf rows, as pickles do
    np.testing.assert_array_equal(rgb[0, :2], [[0, 1, 2], [9, 10, 11]])
    assert np.isfinite(np.load(out / "rgb.times.npy")[0, :2]).all()
    assert np.load(out / "big.npy", mmap_mode="r").shape == (2, 8, 1000)
    assert np.load(out / "rgb_lengths.npy").shape == (2, 2, 3)  # its own file, not rgb's


def test_hdf5_video_ids_outside_the_alphabet_are_left_out(tmp_path: Path) -> None:
    from vidret.data.import_mmt import import_mmt

    src = _h5_release(tmp_path / "release", lambda f: None)
    bad = src / "vid_feat_files/mult_h5/%/2/e/%2e%2e.h5"
    bad.parent.mkdir(parents=True)
    shutil.copy(src / "vid_feat_files/mult_h5/v/i/d/video0.h5", bad)
    report = import_mmt(src, tmp_path / "out", progress=False)
    assert report.videos == 2 and any("'%2e%2e'" in s for s in report.skipped)


def _pickle_release(root: Path, captions: dict, expert: dict, text: dict | None = None) -> Path:
    root.mkdir(parents=True)
    with open(root / "raw-captions.pkl", "wb") as f:
        pickle.dump(captions, f)
    (root / "feats").mkdir()
    with open(root / "feats" / "rgb.pkl", "wb") as f:
        pickle.dump(expert, f)
    if text is not None:
        (root / "aggregated_text_feats").mkdir()
        with open(root / "aggregated_text_feats" / "w2v.pkl", "wb") as f:
            pickle.dump(text, f)
    return root


CAPS = {"video0": [["a", "dog"]], "video1": [["a", "cat"]]}
FEATS = {"video0": np.ones((3, 4), np.float32), "video1": np.zeros((2, 4), np.float32)}

PICKLE_CASES = [
    ("caption not UTF-8", {"video0": [b"caf\xe9"], "video1": ["a cat"]}, FEATS, None, "not valid UTF-8"),
    ("ragged features", CAPS, {**FEATS, "video0": [[1.0, 2.0], [3.0]]}, None, "video 'video0' are not an array"),
    ("dict-valued features", CAPS, {**FEATS, "video0": {"a": 1}}, None, "video 'video0' are not an array"),
    ("string features", CAPS, {**FEATS, "video0": "abc"}, None, "video 'video0' are not an array"),
    ("empty text features", CAPS, FEATS, {"video0": [[]], "video1": [[]]}, "word features are empty"),
    ("ragged text features", CAPS, FEATS, {"video0": [[[1.0], [1.0, 2.0]]], "video1": [[[1.0]]]}, "video 'video0' are not arrays"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("captions", "expert", "text", "expect"),
    [c[1:] for c in PICKLE_CASES],
    ids=[c[0] for c in PICKLE_CASES],
)
def test_malformed_pickles_are_a_clear_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    captions: dict,
    expert: dict,
    text: dict | None,
    expect: str,
) -> None:
    src = _pickle_release(tmp_path / "release", captions, expert, text)
    code, output = run_vidret(["data", "import-mmt", str(src), str(tmp_path / "out")], capsys)
    assert code == 2 and "Traceback" not in output, output
    assert expect in output, output
    assert not (tmp_path / "out").exists()


def test_pickle_ids_outside_the_alphabet_and_zero_dim_values(tmp_path: Path) -> None:
    from vidret.data.dataset import VideoDataset
    from vidret.data.import_mmt import import_mmt

    captions = {**CAPS, "": ["x"], "a/b": ["y"], "../../etc/passwd": ["z"], "video2": 7}
    feats = {**FEATS, "video1": np.float32("nan")}  # a zero-dim NaN: the missing marker
    src = _pickle_release(tmp_path / "release", captions, feats)
    report = import_mmt(src, tmp_path / "out", progress=False)
    assert report.videos == 2
    skipped = "\n".join(report.skipped)
    for bad in ("''", "'a/b'", "'../../etc/passwd'", "video2"):
        assert bad in skipped, skipped
    ds = VideoDataset.open(tmp_path / "out")
    assert ds.video_ids == ["video0", "video1"]
    assert ds.experts["rgb"].lengths.tolist() == [3, 0]


# ---- 8. modes of what is written


def test_written_files_keep_the_umask_mode(small_world: dict[str, Path], tmp_path: Path) -> None:
    from vidret.search.build_index import build_index

    old = os.umask(0o022)
    try:
        build_index(small_world["run"], small_world["data"], tmp_path / "index", progress=False)
    finally:
        os.umask(old)
    index = tmp_path / "index"
    assert stat.S_IMODE(index.stat().st_mode) == 0o755
    for path in index.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


# ---- 12. moment hits: the caption of the moment, not of another clip


def test_segment_captions_are_the_moments_they_overlap() -> None:
    from vidret.data.moments import Moments
    from vidret.search.segments import segment_caption

    class Data:  # the two fields segment_caption reads
        moments: ClassVar = Moments(
            ["a dog runs", "a man is cooking"],
            np.array([0, 0]),
            np.array([0.0, 10.0]),
            np.array([10.0, 20.0]),
        )
        videos: ClassVar = [{"video_id": "long0"}]

    assert segment_caption(Data, 0, 11.0, 16.0) == "a man is cooking"  # type: ignore[arg-type]
    assert segment_caption(Data, 0, 2.0, 12.0) == "a dog runs"  # type: ignore[arg-type]
    assert segment_caption(Data, 0, 25.0, 30.0) is None  # type: ignore[arg-type]


# ---- 13. scoring a run trained on every video; margins of a run without them


def test_eval_of_a_run_trained_on_all_videos_points_to_split_all(
    small_world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from helpers import TINY

    args = ["train", "--data", str(small_world["data"]), "--out", str(tmp_path / "run"),
            "--quiet", *[a for t in [*TINY, "train.epochs=1", "data.split=all"]
                         for a in ("--set", t)]]  # fmt: skip
    code, output = run_vidret(args, capsys)
    assert code == 0, output
    assert "no test videos in this split" in output
    code, output = run_vidret(["eval", "--run", str(tmp_path / "run")], capsys)
    assert code == 2 and "data.split=all" in output and "--split all" in output
    code, output = run_vidret(["eval", "--run", str(tmp_path / "run"), "--split", "all"], capsys)
    assert code == 0, output


def test_margins_of_a_run_without_adaptive_margins_warn(
    small_world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["margins", "--run", str(small_world["run"]), "--out", str(tmp_path / "fig"),
            "--batch", "16"]  # fmt: skip
    code, output = run_vidret(args, capsys)
    assert code == 0, output
    assert "loss 'infonce', which uses no adaptive margin" in output


# ---- 11. a Ray address that does not answer


def test_a_ray_address_that_does_not_answer_fails_at_once(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from vidret.errors import VidretError
    from vidret.video.ray_extract import check_reachable

    began = time.monotonic()
    with pytest.raises(VidretError, match="--ray-address nonsense:1: nothing answers"):
        check_reachable("nonsense:1")
    assert time.monotonic() - began < 10
