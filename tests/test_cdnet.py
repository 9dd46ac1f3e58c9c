"""CDNet moment localization: frames and seconds by hand, its losses by hand, padding
changes nothing, and a run trains, resumes exactly, evaluates and refines search hits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers import clip_dataset
from vidret.cli import app
from vidret.config.moments import CDNetConfig, load_moment_config
from vidret.losses.moment import generalized_iou
from vidret.models.cdnet import CDNet, MomentBatch, sample_frames
from vidret.moments.spans import best_spans, frame_edges, target_frames

TINY_CDNET = ["model.hidden_dim=16", "model.context_layers=1", "model.denoise_layers=1",
              "train.batch_size=16", "train.epochs=2", "text.max_tokens=8"]  # fmt: skip


def test_frames_and_seconds_by_hand() -> None:
    edges = frame_edges(np.array([0.5, 1.5, 2.5, 3.5]), 4.0)
    assert edges.tolist() == [0, 1, 2, 3, 4]
    first, last, inside = target_frames(edges, 1.0, 3.0)
    assert (first, last, inside.tolist()) == (1, 2, [False, True, True, False])
    # a moment inside one frame: that frame, though less than half of it is covered
    first, last, inside = target_frames(edges, 1.2, 1.4)
    assert (first, last, inside.tolist()) == (1, 1, [False, True, False, False])
    # 0.6 of frame 0 and 0.4 of frame 2 covered: the end frame is 2, inside only 0-1
    first, last, inside = target_frames(edges, 0.4, 2.4)
    assert (first, last, inside.tolist()) == (0, 2, [True, True, False, False])


def test_best_spans_never_end_before_they_start() -> None:
    edges = np.array([0.0, 1, 2, 3, 4])
    start = torch.tensor([0.0, 5.0, 0.0, 0.0])  # frame 1 starts it
    end = torch.tensor([0.0, 0.0, 5.0, 0.0])  # frame 2 ends it
    spans = best_spans(start, end, edges, top=3)
    assert spans[0].tolist() == [1.0, 3.0]
    assert (spans[:, 1] > spans[:, 0]).all()
    # the end's favourite frame lies before the start's: only pairs start <= end count
    spans = best_spans(torch.tensor([0.0, 0, 9, 0]), torch.tensor([9.0, 0, 0, 0]), edges, top=1)
    assert spans[0, 0] < spans[0, 1]


def test_generalized_iou_by_hand() -> None:
    a = torch.tensor([[0.0, 2.0], [0.0, 1.0], [1.0, 2.0]])
    b = torch.tensor([[1.0, 3.0], [2.0, 3.0], [1.0, 2.0]])
    # overlap 1 of union 3; apart: IoU 0 minus the gap's 1 of the enclosing 3; equal: 1
    assert torch.allclose(generalized_iou(a, b), torch.tensor([1 / 3, -1 / 3, 1.0]))


def test_offsets_read_frames_by_linear_interpolation() -> None:
    x = torch.arange(5, dtype=torch.float32)[None, :, None] * torch.tensor([1.0, 10.0])
    where = torch.tensor([[[1.25, 3.0, 7.0, -2.0]]]).expand(1, 5, 4)
    got = sample_frames(x, where, torch.tensor([4]))  # frame 4 is padding
    assert torch.allclose(got[0, 0, :, 0], torch.tensor([1.25, 3.0, 3.0, 0.0]))
    assert torch.allclose(got[0, 0, :, 1], torch.tensor([12.5, 30.0, 30.0, 0.0]))


def test_padding_frames_and_tokens_change_nothing() -> None:
    torch.manual_seed(0)
    model = CDNet(CDNetConfig(hidden_dim=16, offsets=3, max_offset=4.0), 8, 12).eval()
    frames, tokens = torch.randn(1, 10, 8), torch.randn(1, 5, 12)
    lone = MomentBatch(frames, torch.ones(1, 10, dtype=torch.bool),
                       torch.linspace(0, 1, 10)[None], tokens, torch.ones(1, 5, dtype=torch.bool),
                       torch.randn(1, 12))  # fmt: skip
    padded = MomentBatch(
        torch.cat([frames, 100 * torch.randn(1, 6, 8)], 1),
        torch.arange(16)[None] < 10,
        torch.cat([lone.position, torch.rand(1, 6)], 1),
        torch.cat([tokens, 100 * torch.randn(1, 3, 12)], 1),
        torch.arange(8)[None] < 5,
        lone.sentence,
    )
    with torch.no_grad():
        a, b = model(lone), model(padded)
    for x, y in ((a.start, b.start), (a.end, b.end), (a.alignment, b.alignment)):
        assert torch.allclose(x, y[:, :10], atol=1e-5)
        assert (y[:, 10:] <= -1e3).all()  # padding can never be chosen


@pytest.fixture(scope="module")
def moment_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cdnet")
    src = clip_dataset(root / "clips", n=40, with_times=True)
    assert CliRunner().invoke(app, ["data", "moments", str(src), str(root / "m")]).exit_code == 0
    return root / "m"


def _train(data: Path, out: Path, *extra: str, code: int = 0) -> CliRunner:
    args = ["train", "--config", "configs/cdnet.yaml", "--data", str(data), "--out", str(out),
            "--quiet"]  # fmt: skip
    for item in [*TINY_CDNET, *extra]:
        args += ["--set", item]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def cdnet_run(moment_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    whole = tmp_path_factory.mktemp("cdnet-run") / "whole"
    shown = _train(moment_data, whole)
    assert "test moments: R1@0.3" in shown.output
    # each epoch as retrieval training says it: loss, the metric with the best so far, time
    first = r"epoch 1/2  loss [\d.]+  val R1@0.5 [\d.]+  \(best [\d.]+ at epoch 1\)"
    assert re.search(first + r".*mIoU [\d.]+  [\d.]+ s", shown.output), shown.output
    assert re.search(r"epoch 2/2  loss .*\(best [\d.]+ at epoch [12]\)", shown.output)
    return whole


def test_cdnet_trains_resumes_exactly_and_evaluates(
    moment_data: Path, cdnet_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidret.moments import trainer

    whole = cdnet_run
    info = json.loads((whole / "model.json").read_text())
    assert info["task"] == "moments" and info["expert"] == "frames"
    assert len((whole / "metrics.jsonl").read_text().splitlines()) == 2
    test = json.loads((whole / "test_metrics.json").read_text())["test"]

    # killed during the second epoch, then resumed: the same model and numbers
    killed = tmp_path / "killed"
    real_epoch, calls = trainer._epoch, []

    def dies_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "_epoch", dies_on_second)
    _train(moment_data, killed, code=130)  # the CLI's exit on an interrupt
    monkeypatch.setattr(trainer, "_epoch", real_epoch)
    resumed = CliRunner().invoke(app, ["train", "--out", str(killed), "--resume", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((killed / "test_metrics.json").read_text())["test"] == test
    a = torch.load(whole / "checkpoints/best.pt")["model"]
    b = torch.load(killed / "checkpoints/best.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    # vidret eval on a moment run: moment metrics, the same as the run's test figures
    evaluated = CliRunner().invoke(app, ["eval", "--run", str(whole), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    body = json.loads(evaluated.stdout)
    assert body["moments"]["method"] == "cdnet"
    assert {k: body["moments"][k] for k in test} == test
    assert set(body) == {"moments"}  # each figure once
    # it localizes; it cannot embed videos for an index
    index = CliRunner().invoke(app, ["index", "--run", str(whole), "--data", str(moment_data),
                                     "--out", str(tmp_path / "i")])  # fmt: skip
    assert index.exit_code != 0 and "a moment run" in str(index.exception)


def test_frames_beyond_max_frames_are_pooled(moment_data: Path) -> None:
    from vidret.moments.data import MomentData

    cfg = load_moment_config("configs/cdnet.yaml", [*TINY_CDNET, "data.max_frames=4"])
    data = MomentData(moment_data, cfg, progress=False)
    full = MomentData(moment_data, load_moment_config("configs/cdnet.yaml", TINY_CDNET), False)
    row = 0
    pooled, whole = data.video(row), full.video(row)
    n = len(whole.times)
    assert n > 4 and len(pooled.times) == 4
    groups = np.round(np.linspace(0, n, 5)).astype(int)
    for g in range(4):  # each pooled frame is the mean of its run, spanning its time
        run = slice(groups[g], groups[g + 1])
        assert np.allclose(pooled.features[g], whole.features[run].mean(0), atol=1e-6)
        assert np.isclose(pooled.times[g], whole.times[run].mean())
        assert pooled.edges[g] == whole.edges[groups[g]]
    assert pooled.edges[-1] == whole.edges[-1]


def test_a_moment_config_needs_moment_data(tmp_path: Path, demo_dir: Path) -> None:
    out = CliRunner().invoke(app, ["train", "--config", "configs/cdnet.yaml", "--data",
                                   str(demo_dir), "--out", str(tmp_path / "r")])  # fmt: skip
    assert out.exit_code != 0 and "no moment captions" in str(out.exception)
    assert "vidret data moments" in str(out.exception)


def test_search_hits_are_refined_by_cdnet(
    moment_data: Path, cdnet_run: Path, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from helpers import TINY
    from vidret.data.dataset import VideoDataset
    from vidret.search.server import create_app

    runner = CliRunner()
    run = tmp_path / "retrieval"
    args = ["train", "--data", str(moment_data.parent / "clips"), "--out", str(run), "--quiet",
            "--config", "configs/meanpool-infonce.yaml"]  # fmt: skip
    for item in [*TINY, "train.epochs=1", "train.batch_size=8"]:
        args += ["--set", item]
    assert runner.invoke(app, args, catch_exceptions=False).exit_code == 0
    index = tmp_path / "index"
    built = runner.invoke(app, ["index", "--run", str(run), "--data", str(moment_data),
                                "--out", str(index), "--segment-seconds", "3"])  # fmt: skip
    assert built.exit_code == 0, built.output
    plain = json.loads(runner.invoke(app, ["search", str(index), "caption 1", "--json"]).stdout)
    shown = runner.invoke(app, ["search", str(index), "caption 1", "--json", "--refine",
                                str(cdnet_run)])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    refined = json.loads(shown.stdout)["results"]
    durations = {v["video_id"]: v["duration"] for v in VideoDataset.open(moment_data).videos}
    # the same hits in the same order, each span placed by CDNet near its window
    assert [(h["video_id"], h["score"]) for h in refined] == [
        (h["video_id"], h["score"]) for h in plain["results"]]  # fmt: skip
    for hit, before in zip(refined, plain["results"], strict=True):
        assert [hit["coarse_start"], hit["coarse_end"]] == [before["start"], before["end"]]
        lo, hi = before["start"], before["end"]
        assert max(0, lo - (hi - lo)) - 1e-6 <= hit["start"] < hit["end"]
        assert hit["end"] <= min(durations[hit["video_id"]], hi + (hi - lo)) + 1e-6
    body = (
        TestClient(create_app(index, refine=cdnet_run))
        .get("/search", params={"q": "caption 1", "k": 3})
        .json()
    )
    # the API gives the same fields as search --json, the window before CDNet included
    fields = ("video_id", "start", "end", "coarse_start", "coarse_end")
    assert [[h[f] for f in fields] for h in body["results"]] == [
        [h[f] for f in fields] for h in refined[:3]]  # fmt: skip
    assert set(body["results"][0]) == set(refined[0])
    # a whole-video index has no moments to refine
    whole = tmp_path / "whole-index"
    assert runner.invoke(app, ["index", "--run", str(run), "--data", str(moment_data),
                               "--out", str(whole)]).exit_code == 0  # fmt: skip
    bad = runner.invoke(app, ["search", str(whole), "caption 1", "--refine", str(cdnet_run)])
    assert bad.exit_code != 0 and "--segment-seconds" in str(bad.exception)
