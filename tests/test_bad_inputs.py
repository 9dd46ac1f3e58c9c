"""A catalogue of bad inputs, as a careless or a hostile user gives them.

Every case runs the real `vidret` entry point (`vidret.cli.main`, in this process) or the
HTTP API, and must end with a non-zero exit (or a 4xx), no traceback, and a message that
names the file, line, key or parameter at fault. A case that raises anything but the
CLI's own exit fails with that traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from helpers import TINY
from vidret.cli import main
from vidret.search.build_index import build_index
from vidret.search.server import create_app
from vidret.video.synthetic import write_video

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Env:
    """What the cases start from: a dataset, a run trained on it, an index, a video folder."""

    data: Path
    run: Path
    index: Path
    videos: Path
    scratch: Path  # a fresh folder per case

    def copy_data(self, change: Callable[[Path], object]) -> Path:
        """A copy of the good dataset with `change` applied to it."""
        copy = self.scratch / "data"
        shutil.copytree(self.data, copy, ignore=shutil.ignore_patterns("cache"))
        change(copy)
        return copy

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.scratch / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def copy_index(self, change: Callable[[Path], object]) -> Path:
        copy = self.scratch / "index"
        shutil.copytree(self.index, copy)
        change(copy)
        return copy


@pytest.fixture(scope="module")
def base(small_world: dict[str, Path]) -> Env:
    w = small_world
    return Env(w["data"], w["run"], w["index"], w["videos"], w["root"])


@pytest.fixture
def env(base: Env, tmp_path: Path) -> Env:
    return Env(base.data, base.run, base.index, base.videos, tmp_path)


def run_vidret(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """`vidret ARGS` in this process: its exit code and everything it printed."""
    old = sys.argv
    sys.argv = ["vidret", *args]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _lines(path: Path, change: Callable[[list[str]], list[str]]) -> None:
    path.write_text("".join(line + "\n" for line in change(path.read_text().splitlines())))


def _video_field(folder: Path, key: str, value: object) -> None:
    def put(lines: list[str]) -> list[str]:
        first = json.loads(lines[0])
        first[key] = value
        return [json.dumps(first), *lines[1:]]

    _lines(folder / "videos.jsonl", put)


def _npy(folder: Path, name: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    path = folder / name
    np.save(path, change(np.load(path)))


def _nan_row(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[3, 0, 0] = np.nan
    return a


def _keep_videos(folder: Path, n: int) -> None:
    """The dataset cut to its first `n` videos (their captions and feature rows)."""
    rows = [json.dumps({**json.loads(r), "duration": 2.0})  # placed in time: a moment source
            for r in (folder / "videos.jsonl").read_text().splitlines()[:n]]  # fmt: skip
    (folder / "videos.jsonl").write_text("".join(r + "\n" for r in rows))
    kept = {json.loads(r)["video_id"] for r in rows}
    captions = [c for c in (folder / "captions.jsonl").read_text().splitlines()
                if json.loads(c)["video_id"] in kept]  # fmt: skip
    (folder / "captions.jsonl").write_text("".join(c + "\n" for c in captions))
    for path in folder.glob("*.npy"):
        np.save(path, np.load(path)[:n])
    shutil.rmtree(folder / "splits", ignore_errors=True)


def _symlink_out(folder: Path) -> None:
    (folder / "clip.mp4").symlink_to("/etc/passwd")
    _video_field(folder, "path", str(folder / "clip.mp4"))


def _lock_held_by_another_process(folder: Path) -> subprocess.Popen:
    """A separate process holding `folder`'s lock (this process's own locks re-enter)."""
    code = (
        "import sys, time; from vidret.locking import folder_lock\n"
        f"with folder_lock({str(folder)!r}):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


CONFIG = str(REPO / "configs/meanpool-infonce.yaml")

# (id, arguments built from the environment, text the message must contain)
CASES: list[tuple[str, Callable[[Env], list[str]], str]] = [
    # ---- vidret data check
    ("check: no such folder", lambda e: ["data", "check", str(e.scratch / "nope")], "nope"),
    (
        "check: empty videos.jsonl, cause said first",
        lambda e: ["data", "check", str(e.copy_data(lambda d: (d / "videos.jsonl").write_text("")))],
        "videos.jsonl: holds no videos",
    ),
    (
        "check: malformed JSON line",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: _lines(d / "videos.jsonl", lambda ls: [ls[0], "{oops", *ls[2:]]))),
        ],
        "videos.jsonl:2: malformed JSON",
    ),
    (
        "check: non-UTF-8 bytes in captions.jsonl",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: (d / "captions.jsonl").write_bytes(
                (d / "captions.jsonl").read_bytes().replace(b"\n", b"\n\xff\xfe", 1)))),
        ],
        "captions.jsonl:2: not UTF-8",
    ),
    (
        "check: duplicate video id",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: _lines(d / "videos.jsonl", lambda ls: [ls[0], ls[0], *ls[2:]]))),
        ],
        "duplicate video_id",
    ),
    (
        "check: caption of an unknown video",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: _lines(d / "captions.jsonl", lambda ls: [
                *ls, json.dumps({"video_id": "ghost", "caption": "a ghost"})]))),
        ],
        "caption of unknown video 'ghost'",
    ),
    (
        "check: empty caption",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: _lines(d / "captions.jsonl", lambda ls: [
                json.dumps({"video_id": json.loads(ls[0])["video_id"], "caption": "  "}), *ls[1:]]))),
        ],
        "captions.jsonl:1: empty caption",
    ),
    (
        "check: NaN in features",
        lambda e: ["data", "check", str(e.copy_data(lambda d: _npy(d, "appearance.npy", _nan_row)))],
        "appearance.npy: row 3",
    ),
    (
        "check: features of the wrong rank",
        lambda e: [
            "data", "check", str(e.copy_data(lambda d: _npy(d, "appearance.npy", lambda a: a[:, 0]))),
        ],
        "appearance.npy: expected shape",
    ),
    (
        "check: fewer feature rows than videos",
        lambda e: ["data", "check", str(e.copy_data(lambda d: _npy(d, "appearance.npy", lambda a: a[:-1])))],
        "appearance.npy: has 39 rows",
    ),
    (
        "check: lengths out of range",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: _npy(d, "motion.lengths.npy", lambda a: a + 1000))),
        ],
        "motion.lengths.npy: row 0",
    ),
    (
        "check: truncated .npy",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: (d / "motion.npy").write_bytes((d / "motion.npy").read_bytes()[:100]))),
        ],
        "motion.npy: cannot read",
    ),
    (
        "check: video path outside the data",
        lambda e: ["data", "check", str(e.copy_data(lambda d: _video_field(d, "path", "/etc/passwd")))],
        "videos.jsonl:1: 'path'",
    ),
    (
        "check: thumbnail path traversal",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: _video_field(d, "thumbnail", "../../../../etc/shadow"))),
        ],
        "videos.jsonl:1: 'thumbnail'",
    ),
    (
        "check: javascript: url",
        lambda e: [
            "data", "check", str(e.copy_data(lambda d: _video_field(d, "url", "javascript:alert(1)"))),
        ],
        "videos.jsonl:1: 'url'",
    ),
    (
        "check: a video path that is a symlink out of the folder",
        lambda e: ["data", "check", str(e.copy_data(_symlink_out))],
        "resolves to /etc/passwd",
    ),
    (
        "check: malformed dataset.json",
        lambda e: ["data", "check", str(e.copy_data(lambda d: (d / "dataset.json").write_text("{")))],
        "dataset.json:1: malformed JSON",
    ),
    (
        "check: declared dim differs",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: (d / "dataset.json").write_text(
                json.dumps({"experts": {"appearance": {"dim": 7}}})))),
        ],
        "experts.appearance.dim = 7",
    ),
    (
        "check: split names an unknown video",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: (d / "splits" / "extra.txt").write_text("ghost\n"))),
        ],
        "splits/extra.txt:1: unknown video id 'ghost'",
    ),
    (
        "check: a video without captions",
        lambda e: [
            "data", "check",
            str(e.copy_data(lambda d: _lines(d / "captions.jsonl", lambda ls: [
                line for line in ls if json.loads(line)["video_id"] != json.loads(
                    (d / "videos.jsonl").read_text().splitlines()[0])["video_id"]]))),
        ],
        "videos.jsonl:1: video",
    ),
    # ---- vidret train
    (
        "train: binary config file",
        lambda e: ["train", "--data", str(e.data), "--config", str(e.file("bin.yaml", b"x\x00\xff\xfe"))],
        "bin.yaml: not a text file",
    ),
    (
        "train: config that is not YAML",
        lambda e: ["train", "--data", str(e.data), "--config", str(e.file("c.yaml", "train: [1,"))],
        "c.yaml: not valid YAML",
    ),
    (
        "train: config that is a list",
        lambda e: ["train", "--data", str(e.data), "--config", str(e.file("c.yaml", "- 1\n- 2\n"))],
        "c.yaml: a config must be a mapping",
    ),
    (
        "train: unknown key",
        lambda e: ["train", "--data", str(e.data), "--config", str(e.file("c.yaml", "train:\n  epoch: 3\n"))],
        "train.epoch: unknown key",
    ),
    ("train: lr=.inf", lambda e: ["train", "--data", str(e.data), "--set", "train.lr=.inf"], "train.lr"),
    ("train: lr=.nan", lambda e: ["train", "--data", str(e.data), "--set", "train.lr=.nan"], "train.lr"),
    ("train: threads=-1", lambda e: ["train", "--data", str(e.data), "--set", "train.threads=-1"], "train.threads"),
    ("train: threads=0", lambda e: ["train", "--data", str(e.data), "--set", "train.threads=0"], "train.threads"),
    (
        "train: heads not dividing the width",
        lambda e: [
            "train", "--data", str(e.data), "--set", "model.backbone=mmt", "--set", "model.heads=3",
        ],
        "must be divisible by model.heads (3)",
    ),
    ("train: --set without =", lambda e: ["train", "--data", str(e.data), "--set", "train.lr"], "--set 'train.lr'"),
    ("train: --set with no key", lambda e: ["train", "--data", str(e.data), "--set", ".=1"], "--set '.=1'"),
    ("train: lr not a number", lambda e: ["train", "--data", str(e.data), "--set", "train.lr=abc"], "train.lr"),
    ("train: unknown backbone", lambda e: ["train", "--data", str(e.data), "--out", str(e.scratch / "r"), "--set", "model.backbone=resnet"], "model.backbone 'resnet': choose one of meanpool"),
    ("train: unknown objective", lambda e: ["train", "--data", str(e.data), "--out", str(e.scratch / "r"), "--set", "loss.name=cmgds"], "loss.name 'cmgds': choose one of triplet"),
    ("train: a loss key the objective does not read", lambda e: ["train", "--data", str(e.data), "--config", CONFIG, "--set", "loss.margin=0.3"], "loss.margin is not read by loss.name 'infonce'"),
    ("train: unknown split kind", lambda e: ["train", "--data", str(e.data), "--set", "data.split=bogus"], "data.split"),
    (
        "train: unknown validation metric",
        lambda e: ["train", "--data", str(e.data), "--out", str(e.scratch / "r"), "--set",
                   "train.val_metric=t2v/R@2", "--set", "train.epochs=1", "--quiet"],
        "train.val_metric='t2v/R@2'",
    ),
    ("train: no such config", lambda e: ["train", "--config", str(e.scratch / "none.yaml")], "none.yaml: no such config"),
    ("train: no such data", lambda e: ["train", "--data", str(e.scratch / "nodata")], "nodata"),
    (
        "train: --out is a file",
        lambda e: ["train", "--data", str(e.data), "--out", str(e.file("afile", "x"))],
        "afile: a file, not a folder",
    ),
    ("train: --out holds a run", lambda e: ["train", "--data", str(e.data), "--out", str(e.run)], "already holds a run"),
    ("train: --resume without --out", lambda e: ["train", "--resume"], "--resume needs --out"),
    ("train: --resume of nothing", lambda e: ["train", "--resume", "--out", str(e.scratch)], "not a run folder"),
    (
        "train: NaN features",
        lambda e: [
            "train", "--quiet", "--out", str(e.scratch / "r"),
            "--data", str(e.copy_data(lambda d: _npy(d, "appearance.npy", _nan_row))),
        ],
        "appearance.npy: row 3",
    ),
    # ---- vidret eval
    ("eval: text file as --sims", lambda e: ["eval", "--sims", str(e.file("t.txt", "hello\n"))], "t.txt: not a NumPy"),
    (
        "eval: checkpoint as --sims",
        lambda e: ["eval", "--sims", str(e.run / "checkpoints" / "best.pt")],
        "best.pt: missing arrays",
    ),
    ("eval: no such --sims", lambda e: ["eval", "--sims", str(e.scratch / "none.npz")], "none.npz: no such file"),
    (
        "eval: non-square .npy without --caption-to-video",
        lambda e: ["eval", "--sims", str(_save(e.scratch / "s.npy", np.zeros((4, 2))))],
        "needs --caption-to-video",
    ),
    (
        "eval: NaN similarities",
        lambda e: ["eval", "--sims", str(_save(e.scratch / "s.npy", np.full((3, 3), np.nan)))],
        "NaN",
    ),
    (
        "eval: caption-to-video that is not integers",
        lambda e: ["eval", "--sims", str(_save(e.scratch / "s.npy", np.zeros((4, 2)))),
                   "--caption-to-video", str(e.file("c.txt", "a\nb\n"))],
        "c.txt: expected one integer",
    ),
    ("eval: unknown split", lambda e: ["eval", "--run", str(e.run), "--split", "testt"], "no split named 'testt'"),
    ("eval: neither --run nor --sims", lambda e: ["eval"], "either --run"),
    ("eval: --run that is no run", lambda e: ["eval", "--run", str(e.data)], "not a run folder"),
    (
        "eval: run with a damaged config",
        lambda e: ["eval", "--run", str(_damaged_run(e))],
        "config.yaml",
    ),
    # ---- vidret extract
    ("extract: --frames 100000", lambda e: ["extract", str(e.videos), "--out", str(e.scratch / "o"), "--frames", "100000"], "--frames 100000"),
    ("extract: --max-frames 100000", lambda e: ["extract", str(e.videos), "--out", str(e.scratch / "o"), "--fps", "1", "--max-frames", "100000"], "--max-frames 100000"),
    ("extract: --fps 0", lambda e: ["extract", str(e.videos), "--out", str(e.scratch / "o"), "--fps", "0"], "--fps"),
    ("extract: --frames and --fps", lambda e: ["extract", str(e.videos), "--out", str(e.scratch / "o"), "--frames", "4", "--fps", "1"], "not both"),
    ("extract: no such folder", lambda e: ["extract", str(e.scratch / "novideos"), "--out", str(e.scratch / "o")], "novideos: not a folder"),
    ("extract: folder without videos", lambda e: ["extract", str(e.data), "--out", str(e.scratch / "o")], "no video files"),
    (
        "extract: no such captions file",
        lambda e: ["extract", str(e.videos), "--out", str(e.scratch / "o"), "--captions", str(e.scratch / "c.jsonl")],
        "c.jsonl: captions file not found",
    ),
    (
        "extract: captions line without a file",
        lambda e: ["extract", str(e.videos), "--out", str(e.scratch / "o"),
                   "--captions", str(e.file("c.jsonl", '{"caption": "x"}\n'))],
        "c.jsonl:1: needs a string 'file'",
    ),
    ("extract: --out is a file", lambda e: ["extract", str(e.videos), "--out", str(e.file("afile", "x"))], "afile: a file"),
    ("extract: --out not from extract", lambda e: ["extract", str(e.videos), "--out", str(e.data)], "not written by `vidret extract`"),
    ("extract: --out holds the videos", lambda e: ["extract", str(e.videos), "--out", str(e.videos.parent)], "holds the video folder"),
    # ---- vidret index
    ("index: --out exists", lambda e: ["index", "--run", str(e.run), "--data", str(e.data), "--out", str(e.index)], "already exists"),
    ("index: --out is a file", lambda e: ["index", "--run", str(e.run), "--data", str(e.data), "--out", str(e.file("f", "x"))], "a file, not a folder"),
    ("index: unknown --kind", lambda e: ["index", "--run", str(e.run), "--data", str(e.data), "--out", str(e.scratch / "i"), "--kind", "lsh"], "--kind 'lsh'"),
    ("index: --run that is no run", lambda e: ["index", "--run", str(e.data), "--data", str(e.data), "--out", str(e.scratch / "i")], "not a run folder"),
    (
        "index: a video path outside the data",
        lambda e: ["index", "--run", str(e.run), "--out", str(e.scratch / "i"),
                   "--data", str(e.copy_data(lambda d: _video_field(d, "path", "/etc/passwd")))],
        "videos.jsonl:1: 'path'",
    ),
    (
        "index: data without the model's expert",
        lambda e: ["index", "--run", str(e.run), "--out", str(e.scratch / "i"),
                   "--data", str(e.copy_data(lambda d: (d / "motion.npy").rename(d / "other.npy")))],
        "motion",
    ),
    (
        "index: NaN features",
        lambda e: ["index", "--run", str(e.run), "--out", str(e.scratch / "i"),
                   "--data", str(e.copy_data(lambda d: _npy(d, "appearance.npy", _nan_row)))],
        "appearance.npy: row 3",
    ),
    # ---- vidret search
    ("search: -k 0", lambda e: ["search", str(e.index), "a dog", "-k", "0"], "-k 0"),
    ("search: -k 5000", lambda e: ["search", str(e.index), "a dog", "-k", "5000"], "-k 5000"),
    ("search: empty query", lambda e: ["search", str(e.index), ""], "the query is empty"),
    ("search: only spaces", lambda e: ["search", str(e.index), "   \t "], "the query is empty"),
    ("search: only emoji", lambda e: ["search", str(e.index), "\U0001f600\U0001f436"], "the query is empty"),
    ("search: zero-width and control", lambda e: ["search", str(e.index), "\u200b\u200d\u0007"], "the query is empty"),
    ("search: NUL", lambda e: ["search", str(e.index), "\x00"], "the query is empty"),
    ("search: too long", lambda e: ["search", str(e.index), "dog " * 200], "characters long"),
    ("search: not an index", lambda e: ["search", str(e.data), "a dog"], "not an index folder"),
    (
        "search: truncated index.json",
        lambda e: ["search", str(e.copy_index(lambda i: (i / "index.json").write_text('{"format": 2'))), "a dog"],
        "index.json: damaged",
    ),
    (
        "search: missing index.faiss",
        lambda e: ["search", str(e.copy_index(lambda i: (i / "index.faiss").unlink())), "a dog"],
        "index.faiss: missing",
    ),
    (
        "search: truncated index.faiss",
        lambda e: [
            "search",
            str(e.copy_index(lambda i: (i / "index.faiss").write_bytes((i / "index.faiss").read_bytes()[:50]))),
            "a dog",
        ],
        "index.faiss: damaged",
    ),
    (
        "search: index of an older format",
        lambda e: [
            "search",
            str(e.copy_index(lambda i: (i / "index.json").write_text(json.dumps(
                {**json.loads((i / "index.json").read_text()), "format": 1})))),
            "a dog",
        ],
        "index format 1",
    ),
    # ---- issue 25: flags that ran away or were refused with the wrong reason
    ("index: --segment-seconds 1e-4", lambda e: ["index", "--run", str(e.run), "--data", str(e.data), "--out", str(e.scratch / "i"), "--segment-seconds", "1e-4"], "--segment-seconds 0.0001: give 0.5 to 3600"),
    ("index: --segment-seconds 0", lambda e: ["index", "--run", str(e.run), "--data", str(e.data), "--out", str(e.scratch / "i"), "--segment-seconds", "0"], "give 0.5 to 3600"),
    ("index: --fuse 1.0", lambda e: ["index", "--run", str(e.run), "--data", str(e.data), "--out", str(e.scratch / "i"), "--fuse", "1.0"], "1 would ignore the model"),
    ("index: --fuse -0.5", lambda e: ["index", "--run", str(e.run), "--data", str(e.data), "--out", str(e.scratch / "i"), "--fuse", "-0.5"], "--fuse -0.5"),
    ("index: --zero-shot --segment-seconds 5", lambda e: ["index", "--zero-shot", "--data", str(e.data), "--out", str(e.scratch / "i"), "--segment-seconds", "5"], "--segment-seconds needs a trained model"),
    ("index: --zero-shot --segment-seconds -1", lambda e: ["index", "--zero-shot", "--data", str(e.data), "--out", str(e.scratch / "i"), "--segment-seconds", "-1"], "--segment-seconds needs a trained model"),
    (
        "check: every length 0",
        lambda e: ["data", "check", str(e.copy_data(lambda d: _npy(d, "motion.lengths.npy", np.zeros_like)))],
        "every video's length is 0",
    ),
    ("moments: a 1-video source", lambda e: ["data", "moments", str(e.copy_data(lambda d: _keep_videos(d, 1))), str(e.scratch / "m")], "too few for a long video"),
    ("moments: a 3-video source", lambda e: ["data", "moments", str(e.copy_data(lambda d: _keep_videos(d, 3))), str(e.scratch / "m")], "too few for a long video"),
    ("moments: zero-length videos", lambda e: ["data", "moments", str(e.copy_data(lambda d: _video_field(d, "duration", 0))), str(e.scratch / "m")], "lasts 0"),
    ("search: --refine a file", lambda e: ["search", str(e.index), "a dog", "--refine", str(e.file("f.txt", "x"))], "f.txt: a file, not a run folder"),
    ("search: --refine nothing", lambda e: ["search", str(e.index), "a dog", "--refine", str(e.scratch / "nope")], "nope: no such folder"),
    ("extract: --ray-address nonsense:1", lambda e: ["extract", str(e.videos), "--out", str(e.scratch / "o"), "--ray", "--ray-address", "nonsense:1"], "--ray-address nonsense:1: nothing answers"),
    ("demo-videos: a folder with files", lambda e: ["data", "demo-videos", str(e.data)], "is not empty"),
    ("demo-videos: a file", lambda e: ["data", "demo-videos", str(e.file("f.txt", "x"))], "a file, not a folder"),
    # ---- vidret serve, report, experiment
    ("serve: --port 70000", lambda e: ["serve", str(e.index), "--port", "70000"], "--port"),
    ("serve: --threads 0", lambda e: ["serve", str(e.index), "--threads", "0"], "--threads"),
    ("report: no such folder", lambda e: ["report", str(e.scratch / "nope")], "nope: no such folder"),
    ("report: not a run", lambda e: ["report", str(e.data)], "neither a run folder"),
    ("experiment: no such file", lambda e: ["experiment", str(e.scratch / "x.yaml")], "x.yaml"),
    ("experiment: bad --split", lambda e: ["experiment", str(e.file("x.yaml", "name: x\n")), "--split", "dev"], "--split 'dev'"),
]  # fmt: skip


def _save(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def _damaged_run(e: Env) -> Path:
    copy = e.scratch / "run"
    shutil.copytree(e.run, copy)
    (copy / "config.yaml").write_text("train: {lr: [")
    return copy


@pytest.mark.parametrize(("args", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(
    env: Env, capsys: pytest.CaptureFixture, args: Callable[[Env], list[str]], expect: str
) -> None:
    code, output = run_vidret(args(env), capsys)
    assert code != 0, output
    assert "Traceback" not in output
    assert expect in output, output


def test_the_catalogue_is_large() -> None:
    commands = {c[0].split(":")[0] for c in CASES}
    assert len(CASES) + len(HTTP_CASES) >= 60
    assert {"check", "train", "eval", "extract", "index", "search"} <= commands


def test_report_of_nothing_leaves_nothing(env: Env, capsys: pytest.CaptureFixture) -> None:
    code, _ = run_vidret(["report", str(env.scratch / "nope")], capsys)
    assert code != 0 and not (env.scratch / "nope").exists()


def test_index_refuses_an_existing_out_before_embedding(
    env: Env, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vidret.search.build_index as index_module

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the run was loaded before the arguments were checked")

    monkeypatch.setattr(index_module, "load_trained_model", must_not_run)
    args = ["index", "--run", str(env.run), "--data", str(env.data), "--out", str(env.index)]
    code, output = run_vidret(args, capsys)
    assert code == 2 and "already exists" in output


def test_search_checks_k_before_loading_the_model(
    env: Env, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vidret.search.engine as engine_module

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index was loaded before -k was checked")

    monkeypatch.setattr(engine_module.SearchEngine, "__init__", must_not_run)
    code, output = run_vidret(["search", str(env.index), "a dog", "-k", "0"], capsys)
    assert code == 2 and "-k 0" in output


@pytest.mark.parametrize(
    "command",
    [
        lambda e: ["train", "--data", str(e.data), "--out", str(e.scratch / "out"), "--quiet"],
        lambda e: ["extract", str(e.videos), "--out", str(e.scratch / "out")],
        lambda e: ["index", "--run", str(e.run), "--data", str(e.data), "--out", str(e.scratch / "out")],
    ],
    ids=["train", "extract", "index"],
)  # fmt: skip
def test_a_second_writer_of_a_folder_is_refused(
    env: Env, capsys: pytest.CaptureFixture, command: Callable[[Env], list[str]]
) -> None:
    holder = _lock_held_by_another_process(env.scratch / "out")
    try:
        code, output = run_vidret(command(env), capsys)
    finally:
        holder.kill()
        holder.wait()
    assert code == 2 and "Traceback" not in output
    assert f"pid {holder.pid}" in output and "another vidret process" in output


def test_a_lock_left_by_a_killed_process_is_taken_over(env: Env) -> None:
    from vidret.locking import folder_lock, lock_file

    folder = env.scratch / "out"
    holder = _lock_held_by_another_process(folder)
    holder.kill()  # SIGKILL: no cleanup ran, the lock file stays behind
    holder.wait()
    assert lock_file(folder).exists()
    with folder_lock(folder) as held:
        assert not held.nested
        assert f"pid {os.getpid()}" in lock_file(folder).read_text()
    assert not lock_file(folder).exists()


# ---- the HTTP API: (id, path, status, text of the error)
HTTP_CASES = [
    ("empty q", "/search?q=", 422, "q"),
    ("no q", "/search", 422, "q"),
    ("emoji only", "/search?q=%F0%9F%98%80", 422, "the query is empty"),
    ("NUL", "/search?q=%00", 422, "the query is empty"),
    ("zero-width", "/search?q=%E2%80%8B", 422, "the query is empty"),
    ("control characters", "/search?q=%07%08", 422, "the query is empty"),
    ("too long", "/search?q=" + "a" * 600, 422, "q"),
    ("k=0", "/search?q=dog&k=0", 422, "k"),
    ("k=1001", "/search?q=dog&k=1001", 422, "k"),  # the CLI's limit too
    ("k not a number", "/search?q=dog&k=ten", 422, "k"),
    ("unknown video", "/videos/nope", 404, "nope"),
    ("unknown video file", "/videos/nope/file", 404, "nope"),
    ("unknown thumbnail", "/videos/nope/thumbnail", 404, "nope"),
    ("a video without a file", "/videos/{first}/file", 404, "no local video file"),
    ("unknown route", "/nope", 404, "Not Found"),  # the API's error shape, not {"detail"}
    ("id '..' escaped", "/videos/%2e%2e/file", 404, ".."),
    ("id '.'", "/videos/./file", 404, ""),
]


@pytest.fixture(scope="module")
def client(base: Env) -> TestClient:
    return TestClient(create_app(base.index))


@pytest.mark.parametrize(
    ("path", "status", "expect"), [c[1:] for c in HTTP_CASES], ids=[c[0] for c in HTTP_CASES]
)
def test_bad_request_is_a_clear_4xx(
    client: TestClient, base: Env, path: str, status: int, expect: str
) -> None:
    first = json.loads((base.index / "videos.jsonl").read_text().splitlines()[0])["video_id"]
    response = client.get(path.format(first=first))
    assert response.status_code == status
    assert expect in response.json()["error"]


def test_extraction_of_a_one_frame_video_and_a_huge_frame_count(
    env: Env, capsys: pytest.CaptureFixture
) -> None:
    """One 1-frame clip once aborted the whole extraction; --frames beyond what a video has
    must take each frame once, not grow memory."""
    videos = env.scratch / "videos"
    write_video(videos / "one-frame.mp4", "green", seconds=0.1, fps=10, size=(64, 64))
    write_video(videos / "two-seconds.mp4", "blue", seconds=2.0, fps=10, size=(64, 64))
    out = env.scratch / "out"
    code, output = run_vidret(
        ["extract", str(videos), "--out", str(out), "--frames", "1024"], capsys
    )
    assert code == 0, output
    lengths = np.load(out / "efficientnet_lite0.lengths.npy")
    assert sorted(lengths.tolist()) == [1, 20]  # every frame once, none repeated
    assert not list(env.scratch.glob(".out.*"))  # no temporaries left


def test_training_reports_each_epoch_in_a_log_file(env: Env) -> None:
    """Output that is not a terminal gets one line per epoch and no carriage returns."""
    log = env.scratch / "train.log"
    with open(log, "w") as f:
        subprocess.run(
            [sys.executable, "-m", "vidret", "train", "--data", str(env.data), "--config", CONFIG,
             "--out", str(env.scratch / "r"), *[a for t in TINY for a in ("--set", t)],
             "--set", "train.epochs=2"],
            stdout=f, stderr=subprocess.STDOUT, check=True, timeout=300,
        )  # fmt: skip
    text = log.read_text()
    assert "\r" not in text
    assert "epoch 1/2  loss" in text and "epoch 2/2  loss" in text and "val Rsum" in text
    assert max(len(line) for line in text.splitlines()) < 300


def test_killed_writers_leave_nothing_behind(env: Env) -> None:
    """Temporaries a SIGKILL leaves (a half-written checkpoint, a folder being built, a
    replaced index) are removed by the next writer of the same folder."""
    run = env.scratch / "r"
    shutil.copytree(env.run, run)
    stale = [
        run / "checkpoints" / ".best.pt.abcd1234.tmp",
        env.scratch / ".index.k3j4h5g6.partial",
        env.scratch / ".index.old",
    ]
    stale[0].write_bytes(b"half a checkpoint")
    for folder in stale[1:]:
        folder.mkdir()
        (folder / "index.faiss").write_bytes(b"x" * 1000)
    subprocess.run(
        [sys.executable, "-m", "vidret", "train", "--out", str(run), "--resume", "--quiet"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "vidret", "index", "--run", str(run), "--data", str(env.data),
         "--out", str(env.scratch / "index")],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert not any(path.exists() for path in stale)
    assert (env.scratch / "index" / "index.json").exists()


def test_index_replacement_never_leaves_the_folder_empty(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--overwrite` swaps the new index in with one atomic exchange: after every rename
    the build makes, `--out` holds a complete index (two renames left it empty between)."""
    out = env.scratch / "index"
    shutil.copytree(env.index, out)
    before = json.loads((out / "index.json").read_text())["created"]
    complete_after_each_rename = []
    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        real_replace(src, dst)
        complete_after_each_rename.append((out / "index.json").exists())

    monkeypatch.setattr(os, "replace", replace)
    time.sleep(1.1)  # `created` has one-second resolution
    build_index(env.run, env.data, out, overwrite=True, progress=False)
    assert all(complete_after_each_rename)
    assert json.loads((out / "index.json").read_text())["created"] != before
    assert not list(env.scratch.glob(".index.*"))
