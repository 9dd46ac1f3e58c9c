"""`vidret eval`: retrieval metrics with the field's exact conventions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from vidret.errors import VidretError


def eval_command(
    sims: Annotated[
        Path | None,
        typer.Option(
            help="similarity matrix [captions, videos]: .npy, or .npz holding "
            "'sims' and 'caption_to_video'"
        ),
    ] = None,
    caption_to_video: Annotated[
        Path | None,
        typer.Option(
            help="with a .npy --sims: .npy or .txt (one int a line) giving each "
            "caption's video column"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    r50: Annotated[bool, typer.Option("--r50", help="also report R@50")] = False,
) -> None:
    """Score a similarity matrix: t2v and v2t R@1/5/10, MdR, MnR and Rsum."""
    from vidret.eval.metrics import retrieval_metrics
    from vidret.eval.table import format_metrics

    if sims is None:
        raise VidretError("give --sims FILE (a model run's scores come with `vidret train`)")
    S, c2v = _load_sims(sims, caption_to_video)
    try:
        metrics = retrieval_metrics(S, c2v, extra_ks=(50,) if r50 else ())
    except ValueError as e:
        raise VidretError(f"{sims}: {e}") from e
    typer.echo(json.dumps(metrics, indent=2) if as_json else format_metrics(metrics))


def _load_sims(path: Path, c2v_path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise VidretError(f"{path}: no such file")
    if path.suffix == ".npz":
        with np.load(path) as z:
            missing = {"sims", "caption_to_video"} - set(z.files)
            if missing:
                raise VidretError(f"{path}: missing arrays {sorted(missing)}; found {z.files}")
            return z["sims"], z["caption_to_video"]
    S = np.load(path, mmap_mode="r")
    if c2v_path is None:
        if S.ndim == 2 and S.shape[0] == S.shape[1]:
            return S, np.arange(S.shape[0])  # one caption per video, on the diagonal
        raise VidretError(
            f"{path}: {S.shape[0]} captions x {S.shape[1]} videos needs --caption-to-video"
        )
    if c2v_path.suffix == ".txt":
        try:
            c2v = np.loadtxt(c2v_path, dtype=np.int64, ndmin=1)
        except ValueError as e:
            raise VidretError(f"{c2v_path}: expected one integer a line ({e})") from e
    else:
        c2v = np.load(c2v_path)
    return S, c2v
