"""`vidret extract --ray`: Ray Data with 2 frame-encoder actors on a local Ray gives the
dataset the single-process path gives, and resumes the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vidret.cli import app

pytest.importorskip("ray", reason="--ray needs Ray (pip install -e '.[dev]' installs it)")


def test_ray_extraction_equals_the_single_process_path(tmp_path: Path) -> None:
    runner = CliRunner()
    videos = tmp_path / "videos"
    made = runner.invoke(app, ["data", "demo-videos", str(videos), "--clips", "1"])
    assert made.exit_code == 0, made.output
    (videos / "broken.mp4").write_bytes(b"not a video")  # reported and skipped by both
    here, on_ray = tmp_path / "here", tmp_path / "ray"
    # with region features: the actors return them as the single-process path stores them
    common = ["--frames", "6", "--captions", str(videos / "captions.jsonl"), "--regions", "4"]
    plain = runner.invoke(app, ["extract", str(videos), "--out", str(here), *common])
    assert plain.exit_code == 0, plain.output
    args = ["extract", str(videos), "--out", str(on_ray), *common, "--ray", "--ray-workers", "2"]
    ray = runner.invoke(app, args)
    assert ray.exit_code == 0, ray.output
    assert "6 video(s) added" in ray.output and "1 skipped" in ray.output

    def rows(folder: Path) -> list[dict]:
        return [json.loads(line) for line in (folder / "videos.jsonl").read_text().splitlines()]

    assert rows(on_ray) == rows(here)  # ids, times, sizes, thumbnails: the same
    names = ("efficientnet_lite0.npy", "efficientnet_lite0.lengths.npy")
    for name in (*names, "efficientnet_lite0.regions.npy"):
        np.testing.assert_allclose(
            np.load(on_ray / name).astype(np.float32),
            np.load(here / name).astype(np.float32),
            atol=2e-3,  # float16 storage; the actors run the model on one thread
        )
    assert (on_ray / "captions.jsonl").read_text() == (here / "captions.jsonl").read_text()
    thumbs = sorted(p.name for p in (on_ray / "thumbnails").iterdir())
    assert thumbs == sorted(p.name for p in (here / "thumbnails").iterdir())

    again = runner.invoke(app, args)  # resumable as without Ray: nothing new to embed
    assert again.exit_code == 0 and "0 video(s) added, 6 kept" in again.output


def test_ray_options_are_checked(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["extract", str(tmp_path), "--out", str(tmp_path / "o"), "--ray-address", "x:1"]
    )
    assert "--ray-address is for --ray" in str(result.exception)
