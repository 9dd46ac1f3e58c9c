"""Moment data: `vidret data moments` builds long videos from clips; moment captions are
validated; R@n at IoU thresholds and mIoU by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import clip_dataset
from vidret.cli import app
from vidret.config import DataConfig
from vidret.data.dataset import VideoDataset, read_dataset
from vidret.data.splits import resolve_split
from vidret.eval.temporal import moment_metrics, temporal_iou


def test_long_videos_are_their_clips_in_a_row(tmp_path: Path) -> None:
    src = clip_dataset(tmp_path / "clips")
    dst = tmp_path / "moments"
    result = CliRunner().invoke(app, ["data", "moments", str(src), str(dst), "--clips", "4"])
    assert result.exit_code == 0, result.output
    assert "moment captions" in result.output
    shown = CliRunner().invoke(app, ["data", "check", str(dst)])
    assert shown.exit_code == 0 and "moments:  48 captions with spans" in shown.output
    source = VideoDataset.open(src)
    built, problems = read_dataset(dst)
    assert problems == []
    frames = built.experts["frames"]
    src_frames = source.experts["frames"]
    row = source.video_index()
    for i, video in enumerate(built.videos):
        at, offset = 0, 0.0
        for clip in video["clips"]:
            r = row[clip["video_id"]]
            n = int(src_frames.lengths[r])
            duration = source.videos[r]["end"] - source.videos[r]["start"]
            np.testing.assert_array_equal(
                frames.features[i, at : at + n], src_frames.features[r, :n]
            )
            expected_times = offset + (np.arange(n) + 0.5) * duration / n
            np.testing.assert_allclose(frames.times[i, at : at + n], expected_times)
            assert clip["start"] == pytest.approx(offset) and clip["end"] == pytest.approx(
                offset + duration
            )
            at, offset = at + n, offset + duration
        assert frames.lengths[i] == at and video["duration"] == pytest.approx(offset)
    # every clip caption is a moment caption with its clip's span in its long video
    moments = built.moments
    assert moments is not None and len(moments) == 2 * sum(len(v["clips"]) for v in built.videos)
    lines = [json.loads(line) for line in (dst / "moments.jsonl").read_text().splitlines()]
    for line in lines:
        video = built.videos[built.video_index()[line["video_id"]]]
        clip = next(c for c in video["clips"] if c["video_id"] == line["source_video"])
        assert (line["start"], line["end"]) == (clip["start"], clip["end"])
        assert line["caption"].endswith(f"of {line['source_video']}")


def test_splits_follow_the_source_videos_and_the_build_repeats(tmp_path: Path) -> None:
    src = clip_dataset(tmp_path / "clips", n=40)
    runner = CliRunner()
    for name in ("a", "b"):
        args = ["data", "moments", str(src), str(tmp_path / name), "--clips", "3", "--seed", "5"]
        assert runner.invoke(app, args).exit_code == 0
    for file in ("videos.jsonl", "moments.jsonl", "frames.npy", "splits/test.txt"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    # the same split training makes of the clips (data.seed 0); no part mixes with another
    parts = resolve_split(src, VideoDataset.open(src).video_ids, "random", DataConfig().sizes, 0)
    built = VideoDataset.open(tmp_path / "a")
    by_id = {v["video_id"]: v for v in built.videos}
    for part in ("train", "val", "test"):
        ids = (tmp_path / "a" / "splits" / f"{part}.txt").read_text().split()
        clips = {c["video_id"] for vid in ids for c in by_id[vid]["clips"]}
        assert clips <= set(parts[part]), part
    other = runner.invoke(app, ["data", "moments", str(src), str(tmp_path / "c"), "--seed", "6"])
    assert other.exit_code == 0
    assert (tmp_path / "c" / "videos.jsonl").read_bytes() != (
        tmp_path / "a" / "videos.jsonl"
    ).read_bytes()


def test_stored_frame_times_are_kept(tmp_path: Path) -> None:
    src = clip_dataset(tmp_path / "clips", with_times=True)
    dst = tmp_path / "moments"
    assert CliRunner().invoke(app, ["data", "moments", str(src), str(dst)]).exit_code == 0
    built = VideoDataset.open(dst)
    first = built.videos[0]["clips"][0]
    n = int(
        VideoDataset.open(src)
        .experts["frames"]
        .lengths[VideoDataset.open(src).video_index()[first["video_id"]]]
    )
    np.testing.assert_allclose(built.experts["frames"].times[0, :n], np.linspace(0.1, 1.9, n))


def test_bad_moments_and_sources_are_named(tmp_path: Path, demo_dir: Path) -> None:
    runner = CliRunner()
    no_time = runner.invoke(app, ["data", "moments", str(demo_dir), str(tmp_path / "x")])
    assert "has no duration" in str(no_time.exception)
    src = clip_dataset(tmp_path / "clips")
    one = runner.invoke(app, ["data", "moments", str(src), str(tmp_path / "y"), "--clips", "1"])
    assert "at least 2 clips" in str(one.exception)
    (src / "moments.jsonl").write_text(
        '{"video_id": "clip00", "caption": "fine", "start": 0.5, "end": 1.5}\n'
        '{"video_id": "clip00", "caption": "too late", "start": 1.0, "end": 9.0}\n'
        '{"video_id": "nope", "caption": "x", "start": 0, "end": 1}\n'
        '{"video_id": "clip01", "caption": "backwards", "start": 2.0, "end": 1.0}\n'
        '{"video_id": "clip01", "caption": "no end", "start": 0.0}\n'
    )
    _, problems = read_dataset(src)
    text = "\n".join(str(p) for p in problems)
    assert "moments.jsonl:2: start 1, end 9" in text and "duration 2" in text
    assert "moments.jsonl:3: video_id 'nope' is not in videos.jsonl" in text
    assert "moments.jsonl:4: start 2, end 1" in text and "moments.jsonl:5: needs numbers" in text
    assert "moments.jsonl:1:" not in text


def test_temporal_iou_and_moment_metrics_by_hand() -> None:
    assert temporal_iou([0, 10], [5, 15]) == pytest.approx(5 / 15)
    assert temporal_iou([0, 10], [10, 20]) == 0.0  # touching spans do not overlap
    assert temporal_iou([2, 4], [0, 10]) == pytest.approx(0.2)
    truth = np.array([[0, 10], [20, 30]])
    predictions = np.array(
        [
            [[0, 8], [40, 50], [0, 10]],  # IoU 0.8 first; a perfect one at rank 3
            [[25, 35], [21, 29], [0, 1]],  # IoU 1/3 first, 0.8 second
        ]
    )
    m = moment_metrics(predictions, truth, ranks=(1, 5))
    assert m["R1@0.3"] == 100.0 and m["R1@0.5"] == 50.0 and m["R1@0.7"] == 50.0
    assert m["R5@0.7"] == 100.0  # within the top 5 (of 3 given) both reach 0.8 or more
    assert m["mIoU"] == pytest.approx(100 * (0.8 + 1 / 3) / 2)
    with pytest.raises(ValueError, match="queries, n, 2"):
        moment_metrics(predictions[0], truth)


def test_windows_and_suppression_by_hand() -> None:
    from vidret.data.timeline import window_spans
    from vidret.eval.temporal import non_maximum_suppression

    spans = window_spans(12.0, scales=(5.0, 20.0))
    # 5 s windows every 1.25 s up to the end (the last cut at 12), and the whole video
    assert spans[:3].tolist() == [[0.0, 5.0], [0.0, 12.0], [1.25, 6.25]]
    assert spans.max() == 12.0 and len(spans) == 1 + 7
    windows = np.array([[0, 10], [1, 11], [20, 30], [40, 50]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    kept = non_maximum_suppression(windows, scores, keep=3)
    # [1, 11] overlaps the best by IoU 9/11 > 0.5: suppressed
    assert kept.tolist() == [[0, 10], [20, 30], [40, 50]]
    assert non_maximum_suppression(windows[:1], scores[:1], keep=3).tolist() == [[0, 10]] * 3


@pytest.fixture(scope="module")
def trained_moments(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny model trained on 40 clips (their default split), and the moment dataset of
    those clips."""
    from helpers import TINY

    root = tmp_path_factory.mktemp("moments")
    src = clip_dataset(root / "clips", n=40)
    runner = CliRunner()
    run = root / "run"
    args = ["train", "--data", str(src), "--out", str(run), "--quiet",
            "--config", "configs/meanpool-infonce.yaml"]  # fmt: skip
    for item in [*TINY, "train.epochs=1", "train.batch_size=8"]:
        args += ["--set", item]
    assert runner.invoke(app, args, catch_exceptions=False).exit_code == 0
    moments = root / "moments"
    assert runner.invoke(app, ["data", "moments", str(src), str(moments)]).exit_code == 0
    return run, moments


def test_eval_on_a_moment_dataset_reports_moment_metrics(
    trained_moments: tuple[Path, Path],
) -> None:
    run, moments = trained_moments
    runner = CliRunner()
    shown = runner.invoke(app, ["eval", "--run", str(run), "--data", str(moments),
                                "--split", "test", "--json"])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.stdout)
    test_videos = (moments / "splits" / "test.txt").read_text().split()
    lines = [json.loads(x) for x in (moments / "moments.jsonl").read_text().splitlines()]
    assert body["moments"]["queries"] == sum(m["video_id"] in test_videos for m in lines)
    for key in ("R1@0.3", "R1@0.5", "R1@0.7", "R5@0.5", "mIoU"):
        assert 0 <= body["moments"][key] <= 100 and key not in body  # given once
    moments = body["moments"]
    assert moments["R5@0.3"] >= moments["R1@0.3"] >= moments["R1@0.7"]
    plain = runner.invoke(app, ["eval", "--run", str(run)])  # clip data: no moment line
    assert plain.exit_code == 0 and "sliding windows" not in plain.output


def test_segments_and_their_merging_by_hand() -> None:
    from vidret.search.segments import merge_hits, segment_spans

    assert segment_spans(25.0, 10.0).tolist() == [[0, 10], [5, 15], [10, 20], [15, 25]]
    assert segment_spans(22.0, 10.0).tolist()[-1] == [12.0, 22.0]  # the last ends at the end
    assert segment_spans(4.0, 10.0).tolist() == [[0.0, 4.0]]
    videos = [{"video_id": "a", "segment": [0, 10]}, {"video_id": "a", "segment": [5, 15]},
              {"video_id": "b", "segment": [0, 10]}, {"video_id": "a", "segment": [30, 40]},
              {"video_id": "a", "segment": [15, 25]}]  # fmt: skip
    ranked = merge_hits(np.array([0.9, 0.88, 0.7, 0.6, 0.86]), np.arange(5), videos, k=5)
    # a's first two overlap, the fifth touches them (all within 0.05): one moment 0-25
    assert [(s, m["video_id"], m["segment"]) for s, m in ranked] == [
        (0.9, "a", [0, 25]), (0.7, "b", [0, 10]), (0.6, "a", [30, 40])]  # fmt: skip
    # a much weaker neighbour does not widen the moment: it is suppressed
    weak = merge_hits(np.array([0.9, 0.5, 0.7]), np.arange(3), videos, k=5)
    assert [(s, m["segment"]) for s, m in weak] == [(0.9, [0, 10]), (0.7, [0, 10])]
    assert videos[0]["segment"] == [0, 10]  # the index's metadata is not changed
    assert len(merge_hits(np.array([0.9, 0.7]), np.array([0, 2]), videos, k=1)) == 1
    # a later hit bridging two moments of a video makes them one (scored by the best)
    bridge = [{"video_id": "a", "segment": s} for s in ([0, 10], [20, 30], [9, 21])]
    joined = merge_hits(np.array([0.9, 0.8, 0.88]), np.arange(3), bridge, k=5)
    assert [(s, m["segment"]) for s, m in joined] == [(0.9, [0, 30])]


def test_segment_index_returns_moments(trained_moments: tuple[Path, Path], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from vidret.search.server import create_app

    run, moments = trained_moments
    runner = CliRunner()
    index = tmp_path / "index"
    built = runner.invoke(app, ["index", "--run", str(run), "--data", str(moments),
                                "--out", str(index), "--segment-seconds", "3"])  # fmt: skip
    assert built.exit_code == 0, built.output
    assert "segments of 3 s: a search returns moments" in built.output
    durations = {v["video_id"]: v["duration"] for v in VideoDataset.open(moments).videos}
    body = TestClient(create_app(index)).get("/search", params={"q": "caption 1", "k": 8}).json()
    assert len(body["results"]) == 8
    spans: dict[str, list] = {}
    for hit in body["results"]:
        assert 0 <= hit["start"] < hit["end"] <= durations[hit["video_id"]] + 1e-6
        for other in spans.setdefault(hit["video_id"], []):
            assert hit["end"] < other[0] or hit["start"] > other[1]  # merged: never overlap
        spans[hit["video_id"]].append((hit["start"], hit["end"]))
    shown = runner.invoke(app, ["search", str(index), "caption 1", "-k", "2"]).output
    assert " s  " in shown and "-" in shown.splitlines()[0]


def test_moment_benchmark_from_msrvtt_1k(msrvtt_1k: Path, tmp_path: Path) -> None:
    """The README's command on the real clips: 800 videos, 4 a long video."""
    dst = tmp_path / "msrvtt-moments"
    result = CliRunner().invoke(app, ["data", "moments", str(msrvtt_1k), str(dst), "--clips", "4"])
    assert result.exit_code == 0, result.output
    assert "150 train, 25 val, 25 test long videos; 16000 moment captions" in result.output
    built, problems = read_dataset(dst)
    assert problems == [] and built.experts["frames"].features.shape == (200, 200, 128)
    parts = resolve_split(
        msrvtt_1k, VideoDataset.open(msrvtt_1k).video_ids, "random", DataConfig().sizes, 0
    )
    test_ids = (dst / "splits" / "test.txt").read_text().split()
    clips = {c["video_id"] for v in built.videos if v["video_id"] in test_ids for c in v["clips"]}
    assert clips == set(parts["test"])  # exactly the source's 100 test clips
