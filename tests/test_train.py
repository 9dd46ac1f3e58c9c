"""Training end to end on the generated demo set: run folder, determinism, kill + resume,
evaluation on another folder, early stopping, and two processes under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import TINY
from vidret.cli import app
from vidret.data.demo import make_demo_dataset
from vidret.runs.logger import read_metrics


def train_args(run: Path, data: Path, *extra: str) -> list[str]:
    """`vidret train` arguments for a tiny model; `extra` are more --set overrides."""
    args = ["train", "--data", str(data), "--out", str(run), "--quiet"]
    for item in [*TINY, *extra]:
        args += ["--set", item]
    return args


def train(run: Path, data: Path, *extra: str) -> dict:
    result = CliRunner().invoke(app, train_args(run, data, *extra), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((run / "test_metrics.json").read_text())


def test_run_folder_holds_everything(tmp_path: Path, demo_dir: Path) -> None:
    result = train(tmp_path / "run", demo_dir)
    run = tmp_path / "run"
    for name in (
        "config.yaml",
        "model.json",
        "metrics.jsonl",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "test_metrics.json",
    ):
        assert (run / name).exists(), name
    assert list((run / "tensorboard").glob("events.*"))
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert {"loss", "loss_v", "loss_t"} <= set(records[0]["train"])
    assert set(records[0]["val"]) == {"t2v", "v2t", "Rsum"}
    assert result["test"]["Rsum"] > 0 and result["best_epoch"] in (1, 2, 3)
    info = json.loads((run / "model.json").read_text())
    assert info["signature"]["experts"] == {"appearance": 48, "motion": 32}
    assert "train:\n  epochs: 3" in (run / "config.yaml").read_text()


def test_same_seed_same_numbers(tmp_path: Path, demo_dir: Path) -> None:
    a = train(tmp_path / "a", demo_dir, "model.backbone=mmt")
    b = train(tmp_path / "b", demo_dir, "model.backbone=mmt")
    assert a == b
    c = train(tmp_path / "c", demo_dir, "model.backbone=mmt", "train.seed=1")
    assert c["test"] != a["test"]


def test_learning_beats_chance(tmp_path: Path, demo_dir: Path) -> None:
    result = train(tmp_path / "r", demo_dir, "train.epochs=8", "loss.name=infonce")
    # 18 test videos: chance t2v R@1 is 1/18 (5.6%) and Rsum about 60.
    assert result["test"]["t2v"]["R@1"] > 20 and result["test"]["Rsum"] > 200


def test_kill_and_resume_end_with_identical_metrics(tmp_path: Path, demo_dir: Path) -> None:
    extra = ["train.epochs=6", "model.backbone=ce"]
    whole = train(tmp_path / "whole", demo_dir, *extra)

    run = tmp_path / "killed"
    args = [sys.executable, "-m", "vidret", *train_args(run, demo_dir, *extra)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        metrics = run / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "test_metrics.json").exists()
    done = len(read_metrics(run))
    assert 2 <= done < 6

    result = CliRunner().invoke(
        app, ["train", "--out", str(run), "--resume", "--quiet"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert json.loads((run / "test_metrics.json").read_text()) == whole
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2, 3, 4, 5, 6]
    assert [r["val"] for r in read_metrics(run)] == [
        r["val"] for r in read_metrics(tmp_path / "whole")
    ]


def test_resume_refuses_new_settings(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["train", "--out", str(tmp_path), "--resume", "--set", "train.epochs=2"]
    )
    assert "drop --config/--set/--seed" in str(result.exception)


def test_eval_on_another_folder(tmp_path: Path, demo_dir: Path) -> None:
    train(tmp_path / "run", demo_dir, "loss.name=infonce")
    other = make_demo_dataset(tmp_path / "other", num_videos=40, captions_per_video=3, seed=0)
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "eval",
            "--run",
            str(tmp_path / "run"),
            "--data",
            str(other),
            "--json",
            "--save-sims",
            str(tmp_path / "s.npz"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"t2v", "v2t", "Rsum"}
    import numpy as np

    saved = np.load(tmp_path / "s.npz")
    assert saved["sims"].shape == (120, 40)  # all of the other folder by default
    own = runner.invoke(app, ["eval", "--run", str(tmp_path / "run"), "--json"])
    test = json.loads((tmp_path / "run" / "test_metrics.json").read_text())["test"]
    assert json.loads(own.stdout) == test


def test_eval_refuses_data_of_another_shape(tmp_path: Path, demo_dir: Path) -> None:
    import numpy as np

    train(tmp_path / "run", demo_dir, "train.epochs=1")
    other = make_demo_dataset(tmp_path / "other", num_videos=20, captions_per_video=2, seed=1)
    np.save(other / "motion.npy", np.zeros((20, 12, 7), np.float32))
    meta = json.loads((other / "dataset.json").read_text())
    meta["experts"]["motion"]["dim"] = 7
    (other / "dataset.json").write_text(json.dumps(meta))
    result = CliRunner().invoke(app, ["eval", "--run", str(tmp_path / "run"), "--data", str(other)])
    assert "expert 'motion' has dim 7, but the model" in str(result.exception)


def test_early_stopping(tmp_path: Path, demo_dir: Path) -> None:
    # lr 0 never improves after the first epoch: patience 2 stops after epoch 3.
    args = train_args(tmp_path / "r", demo_dir, "train.epochs=10", "train.patience=2",
                      "train.lr=1e-12")  # fmt: skip
    shown = CliRunner().invoke(app, args, catch_exceptions=False)
    result = json.loads((tmp_path / "r" / "test_metrics.json").read_text())
    assert result["epochs_run"] == 3 and result["best_epoch"] == 1
    # What the user reads: each epoch's validation Rsum, and why training stopped.
    said = shown.stdout
    epochs = [line for line in said.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 3 and all("val Rsum" in line for line in epochs), said
    assert "(best " in epochs[-1] and "at epoch 1)" in epochs[-1]
    assert (
        "stopping early: validation Rsum has not improved for 2 epochs (train.patience=2); "
        "testing the best epoch, 1"
    ) in said


def test_two_processes_under_torchrun(tmp_path: Path, demo_dir: Path) -> None:
    run = tmp_path / "ddp"
    port = str(29500 + os.getpid() % 1000)
    args = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port",
        port,
        "-m",
        "vidret",
        *train_args(run, demo_dir, "train.epochs=2"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2]  # rank 0 alone logs
    assert (run / "checkpoints" / "last.pt").exists()
    assert proc.stdout.count("run folder:") == 1  # and reports


def test_caption_encoders_tokens_and_finetune(tmp_path: Path) -> None:
    data = make_demo_dataset(tmp_path / "d", num_videos=40, captions_per_video=2, seed=3)
    tokens = train(
        tmp_path / "tok",
        data,
        "text.encoder=tokens",
        "text.max_tokens=12",
        "train.epochs=1",
        "model.backbone=dual",
    )
    assert tokens["test"]["Rsum"] > 0
    tuned = train(
        tmp_path / "ft",
        data,
        "text.encoder=finetune",
        "text.max_tokens=12",
        "train.epochs=1",
        "train.batch_size=16",
    )
    # The transformer's own weights are trained and saved with the model.
    import torch

    before = torch.load(tmp_path / "ft" / "checkpoints" / "best.pt", weights_only=False)
    names = [k for k in before["model"] if k.startswith("text_encoder.model.")]
    assert names and tuned["test"]["Rsum"] > 0


def test_eval_split_choices(tmp_path: Path, demo_dir: Path) -> None:
    train(tmp_path / "run", demo_dir, "train.epochs=1")
    runner = CliRunner()
    val = runner.invoke(app, ["eval", "--run", str(tmp_path / "run"), "--split", "val", "--json"])
    assert (
        json.loads(val.stdout)
        == json.loads((tmp_path / "run" / "test_metrics.json").read_text())["val"]
    )
    named = runner.invoke(
        app,
        [
            "eval",
            "--run",
            str(tmp_path / "run"),
            "--data",
            str(demo_dir),
            "--split",
            "test",
            "--json",
        ],
    )
    assert named.exit_code == 0, named.output  # demo's own splits/test.txt
    missing = runner.invoke(
        app, ["eval", "--run", str(tmp_path / "run"), "--data", str(demo_dir), "--split", "nope"]
    )
    assert "no split named 'nope'" in str(missing.exception)


def test_cmgsd_adds_no_test_time_cost(tmp_path: Path, demo_dir: Path) -> None:
    import torch

    from vidret.runs.folder import load_trained_model

    train(tmp_path / "hard", demo_dir, "train.epochs=2", "loss.name=triplet")
    result = train(
        tmp_path / "cmgsd",
        demo_dir,
        "train.epochs=2",
        "loss.name=cmgsd",
        "loss.lambda_start=0.0",
        "loss.lambda_end=1.0",
        "loss.warmup_epochs=1",
    )
    hard = torch.load(tmp_path / "hard/checkpoints/best.pt", weights_only=False)["model"]
    cmgsd = torch.load(tmp_path / "cmgsd/checkpoints/best.pt", weights_only=False)["model"]
    assert {k: v.shape for k, v in hard.items()} == {k: v.shape for k, v in cmgsd.items()}
    _, model_a, _ = load_trained_model(tmp_path / "hard")
    _, model_b, _ = load_trained_model(tmp_path / "cmgsd")
    assert type(model_a.backbone) is type(model_b.backbone)
    assert [type(m) for m in model_a.modules()] == [type(m) for m in model_b.modules()]
    # It did train with adaptive margins: the log holds their terms and lambda.
    records = read_metrics(tmp_path / "cmgsd")
    assert records[-1]["train"]["lambda_"] > 0 and "loss_static" in records[-1]["train"]
    assert result["test"]["Rsum"] > 0


def test_margin_figures(tmp_path: Path, demo_dir: Path) -> None:
    train(tmp_path / "run", demo_dir, "train.epochs=2", "loss.name=cmgsd", "loss.beta=0.1")
    result = CliRunner().invoke(
        app,
        [
            "margins",
            "--run",
            str(tmp_path / "run"),
            "--out",
            str(tmp_path / "fig"),
            "--batch",
            "40",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    for name in ("margin_distribution.png", "pair_margins.png", "training_curves.png"):
        data = (tmp_path / "fig" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000, name


@pytest.mark.parametrize("backbone", ["mmt", "ce", "dual"])
def test_cmgsd_trains_every_backbone(tmp_path: Path, demo_dir: Path, backbone: str) -> None:
    result = train(
        tmp_path / backbone,
        demo_dir,
        "train.epochs=2",
        "loss.name=cmgsd",
        f"model.backbone={backbone}",
        "loss.warmup_epochs=1",
    )
    record = read_metrics(tmp_path / backbone)[-1]["train"]
    assert record["loss_static"] > 0 and record["mining"] == 1.0
    assert result["test"]["Rsum"] > 0


def test_cmgsd_reuses_the_runs_caption_vectors(tmp_path: Path, monkeypatch) -> None:
    import vidret.text.cache as cache_module

    calls = []
    real = cache_module.encode_texts
    monkeypatch.setattr(
        cache_module,
        "encode_texts",
        lambda texts, *a, **k: calls.append(len(texts)) or real(texts, *a, **k),
    )
    data = make_demo_dataset(tmp_path / "d", num_videos=30, captions_per_video=2, seed=5)
    train(
        tmp_path / "run",
        data,
        "train.epochs=1",
        "loss.name=cmgsd",
        "text.encoder=tokens",
        "text.max_tokens=12",
    )
    assert calls == [60]  # token features once; the static text expert reuses their vectors
