"""The dataset folder: loading, memory-mapping, and a clear error for every bad input."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vidret.cli import app
from vidret.data.dataset import VideoDataset
from vidret.data.validate import check_dataset
from vidret.errors import DatasetError


def write_tiny(root: Path) -> Path:
    """Three videos, two captions each, two experts (one of variable length)."""
    root.mkdir(parents=True)
    videos = [{"video_id": f"v{i}", "category": "c"} for i in range(3)]
    (root / "videos.jsonl").write_text("".join(json.dumps(v) + "\n" for v in videos))
    caps = [
        {"video_id": f"v{i}", "caption": f"caption {k} of video {i}", "sen_id": 2 * i + k}
        for i in range(3)
        for k in range(2)
    ]
    (root / "captions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in caps))
    np.save(root / "rgb.npy", np.ones((3, 4, 8), np.float32))
    np.save(root / "audio.npy", np.ones((3, 5, 2), np.float32))
    np.save(root / "audio.lengths.npy", np.array([5, 2, 0]))
    (root / "splits").mkdir()
    (root / "splits" / "test.txt").write_text("v0\nv2\n")
    return root


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny(tmp_path / "tiny")


def test_tiny_loads_with_memory_mapped_features(tiny: Path) -> None:
    ds = VideoDataset.open(tiny)
    assert ds.video_ids == ["v0", "v1", "v2"]
    assert ds.captions_per_video().tolist() == [2, 2, 2]
    assert ds.caption_video.tolist() == [0, 0, 1, 1, 2, 2]
    assert set(ds.experts) == {"rgb", "audio"}
    assert isinstance(ds.experts["rgb"].features, np.memmap)
    assert ds.experts["rgb"].lengths.tolist() == [4, 4, 4]
    assert ds.experts["audio"].lengths.tolist() == [5, 2, 0]
    report = check_dataset(tiny, progress=False)
    assert report.ok, report.problems
    assert report.summary["splits"] == {"test": {"videos": 2, "captions": 4}}
    assert report.summary["experts"]["audio"]["missing_videos"] == 1


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def replace_line(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


# (how to break the folder, file the problem must name, line it must name, words it must use)
BREAKAGES: list[tuple[str, Callable[[Path], None], str, int | None, str]] = [
    (
        "malformed JSON",
        lambda r: replace_line(r / "captions.jsonl", 3, '{"video_id": "v1",'),
        "captions.jsonl",
        3,
        "malformed JSON",
    ),
    (
        "not an object",
        lambda r: append(r / "videos.jsonl", "[1, 2]\n"),
        "videos.jsonl",
        4,
        "JSON object",
    ),
    (
        "duplicate video id",
        lambda r: replace_line(r / "videos.jsonl", 3, '{"video_id": "v0"}'),
        "videos.jsonl",
        3,
        "duplicate video_id 'v0' (first at line 1)",
    ),
    (
        "missing video id",
        lambda r: replace_line(r / "videos.jsonl", 2, '{"id": "v1"}'),
        "videos.jsonl",
        2,
        "video_id",
    ),
    (
        "caption of unknown video",
        lambda r: append(r / "captions.jsonl", '{"video_id": "v9", "caption": "x"}\n'),
        "captions.jsonl",
        7,
        "unknown video 'v9'",
    ),
    (
        "empty caption",
        lambda r: replace_line(r / "captions.jsonl", 5, '{"video_id": "v2", "caption": "   "}'),
        "captions.jsonl",
        5,
        "empty caption",
    ),
    (
        "caption not a string",
        lambda r: replace_line(r / "captions.jsonl", 1, '{"video_id": "v0", "caption": 3}'),
        "captions.jsonl",
        1,
        "string 'caption'",
    ),
    (
        "video without captions",
        lambda r: append(r / "videos.jsonl", '{"video_id": "v3"}\n'),
        "videos.jsonl",
        4,
        "'v3' has no captions",
    ),
    (
        "NaN in features",
        lambda r: np.save(
            r / "rgb.npy",
            np.where(np.arange(3)[:, None, None] == 1, np.nan, np.ones((3, 4, 8), np.float32)),
        ),
        "rgb.npy",
        None,
        "row 1 (video 'v1', videos.jsonl line 2): 32 NaN/Inf",
    ),
    (
        "Inf in features",
        lambda r: np.save(r / "rgb.npy", np.full((3, 4, 8), np.inf, np.float32)),
        "rgb.npy",
        None,
        "row 0 (video 'v0'",
    ),
    (
        "row-count mismatch",
        lambda r: np.save(r / "rgb.npy", np.ones((2, 4, 8), np.float32)),
        "rgb.npy",
        None,
        "has 2 rows but videos.jsonl has 3 videos",
    ),
    (
        "not 3-D",
        lambda r: np.save(r / "rgb.npy", np.ones((3, 8), np.float32)),
        "rgb.npy",
        None,
        "expected shape [num_videos, frames, dim]",
    ),
    (
        "integer features",
        lambda r: np.save(r / "rgb.npy", np.ones((3, 4, 8), np.int32)),
        "rgb.npy",
        None,
        "expected a float array",
    ),
    (
        "dimension differs from dataset.json",
        lambda r: (r / "dataset.json").write_text('{"experts": {"rgb": {"dim": 16}}}'),
        "rgb.npy",
        None,
        "feature dimension 8 differs",
    ),
    (
        "lengths of wrong shape",
        lambda r: np.save(r / "audio.lengths.npy", np.array([1, 2])),
        "audio.lengths.npy",
        None,
        "shape [3]",
    ),
    (
        "lengths out of range",
        lambda r: np.save(r / "audio.lengths.npy", np.array([1, 9, 0])),
        "audio.lengths.npy",
        None,
        "row 1: length 9 outside 0..5",
    ),
    (
        "lengths without expert",
        lambda r: np.save(r / "face.lengths.npy", np.array([1, 1, 1])),
        "face.lengths.npy",
        None,
        "without its expert",
    ),
    (
        "corrupt npy",
        lambda r: (r / "rgb.npy").write_bytes(b"not an array"),
        "rgb.npy",
        None,
        "cannot read",
    ),
    (
        "missing videos.jsonl",
        lambda r: (r / "videos.jsonl").unlink(),
        "videos.jsonl",
        None,
        "missing",
    ),
    (
        "missing captions.jsonl",
        lambda r: (r / "captions.jsonl").unlink(),
        "captions.jsonl",
        None,
        "missing",
    ),
    (
        "no experts",
        lambda r: [p.unlink() for p in r.glob("*.npy")],
        "tiny",
        None,
        "no expert feature files",
    ),
    (
        "unknown id in split",
        lambda r: append(r / "splits" / "test.txt", "v7\n"),
        "splits/test.txt",
        3,
        "unknown video id 'v7'",
    ),
    (
        "id twice in split",
        lambda r: append(r / "splits" / "test.txt", "v0\n"),
        "splits/test.txt",
        3,
        "listed twice",
    ),
    (
        "malformed dataset.json",
        lambda r: (r / "dataset.json").write_text("{oops"),
        "dataset.json",
        1,
        "malformed JSON",
    ),
]


@pytest.mark.parametrize(
    ("name", "breakage", "file", "line", "words"), BREAKAGES, ids=[b[0] for b in BREAKAGES]
)
def test_every_bad_input_is_reported_with_file_and_line(
    tiny: Path,
    name: str,
    breakage: Callable[[Path], None],
    file: str,
    line: int | None,
    words: str,
) -> None:
    breakage(tiny)
    report = check_dataset(tiny, progress=False)
    matching = [p for p in report.problems if p.file.endswith(file) and words in p.message]
    assert matching, f"{name}: no problem naming {file} with {words!r}; got {report.problems}"
    if line is not None:
        assert matching[0].line == line

    result = CliRunner().invoke(app, ["data", "check", str(tiny)])
    assert result.exit_code == 1
    assert words in result.output


def test_open_raises_with_every_problem(tiny: Path) -> None:
    append(tiny / "captions.jsonl", '{"video_id": "nope", "caption": "x"}\n')
    replace_line(tiny / "videos.jsonl", 3, '{"video_id": "v0"}')
    with pytest.raises(DatasetError) as err:
        VideoDataset.open(tiny)
    text = str(err.value)
    assert "duplicate video_id 'v0'" in text and "unknown video 'nope'" in text
    assert "vidret data check" in text


def test_problems_are_all_reported_not_just_the_first(tiny: Path) -> None:
    for line in (1, 2, 3):
        replace_line(tiny / "captions.jsonl", line, "{bad")
    report = check_dataset(tiny, progress=False)
    assert [p.line for p in report.problems if "malformed" in p.message] == [1, 2, 3]


def test_not_a_folder(tmp_path: Path) -> None:
    report = check_dataset(tmp_path / "nowhere", progress=False)
    assert "not a folder" in report.problems[0].message


def test_demo_set_checks_clean(demo_dir: Path) -> None:
    report = check_dataset(demo_dir, progress=False)
    assert report.ok, report.problems
    assert report.summary["generated"] is True
    assert set(report.summary["experts"]) == {"appearance", "motion"}


def test_check_json_output(tiny: Path) -> None:
    result = CliRunner().invoke(app, ["data", "check", str(tiny), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["videos"] == 3 and summary["problems"] == []


def test_real_msrvtt_1k_checks_clean(msrvtt_1k: Path) -> None:
    report = check_dataset(msrvtt_1k, progress=False)
    assert report.ok, report.problems[:5]
    assert report.summary["videos"] == 800 and report.summary["captions"] == 16000
    assert report.summary["experts"]["frames"]["shape"] == [800, 50, 128]
    assert len(report.summary["categories"]) == 20


def test_copy_of_real_data_with_a_nan_is_caught(msrvtt_1k: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy"
    shutil.copytree(msrvtt_1k, dst)
    feats = np.load(dst / "frames.npy")
    feats[17, 3, 5] = np.nan
    np.save(dst / "frames.npy", feats)
    report = check_dataset(dst, progress=False)
    assert any(
        "row 17" in p.message and "videos.jsonl line 18" in p.message for p in report.problems
    )
