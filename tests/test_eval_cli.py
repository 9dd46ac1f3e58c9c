"""`vidret eval` on similarity files, as a user of another codebase would call it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from vidret.cli import app
from vidret.eval.metrics import retrieval_metrics
from vidret.json_output import rounded


def make_sims() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    c2v = np.repeat(np.arange(30), 3)
    S = rng.standard_normal((90, 30)).astype(np.float32)
    S[np.arange(90), c2v] += 1.5
    return S, c2v


def test_eval_npz_json(tmp_path: Path) -> None:
    S, c2v = make_sims()
    np.savez(tmp_path / "s.npz", sims=S, caption_to_video=c2v)
    result = CliRunner().invoke(app, ["eval", "--sims", str(tmp_path / "s.npz"), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    exact = retrieval_metrics(S, c2v)
    assert exact["Rsum"] != round(exact["Rsum"], 4)  # these data need rounding ...
    assert printed == rounded(exact)  # ... and JSON gets 4 decimals, not 423.3333333333333
    assert "423.3333," in result.output or "423.3333\n" in result.output


def test_eval_npy_with_txt_mapping_prints_table(tmp_path: Path) -> None:
    S, c2v = make_sims()
    np.save(tmp_path / "s.npy", S)
    (tmp_path / "c2v.txt").write_text("\n".join(map(str, c2v)))
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--sims",
            str(tmp_path / "s.npy"),
            "--caption-to-video",
            str(tmp_path / "c2v.txt"),
            "--r50",
        ],
    )
    assert result.exit_code == 0, result.output
    m = retrieval_metrics(S, c2v, extra_ks=(50,))
    assert "R@50" in result.output
    assert f"Rsum {m['Rsum']:.2f}" in result.output
    assert f"{m['t2v']['R@1']:.2f}" in result.output.splitlines()[1]


def test_eval_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    np.save(tmp_path / "s.npy", np.zeros((4, 2)))
    result = runner.invoke(app, ["eval", "--sims", str(tmp_path / "s.npy")])
    assert result.exit_code != 0 and "needs --caption-to-video" in str(result.exception)
    np.savez(tmp_path / "bad.npz", sims=np.zeros((4, 2)))
    result = runner.invoke(app, ["eval", "--sims", str(tmp_path / "bad.npz")])
    assert "missing arrays ['caption_to_video']" in str(result.exception)


def test_command_line_errors_are_one_clear_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "vidret", "eval", "--sims", str(tmp_path / "none.npy")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'none.npy'}: no such file"
    assert "Traceback" not in result.stderr
