"""`vidret eval`: retrieval metrics with the field's exact conventions."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from vidret.errors import VidretError


def eval_command(
    run: Annotated[Path | None, typer.Option(help="a trained run folder")] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="with --run: score on this dataset folder (default: the run's own "
            "data, test split)"
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="with --run: train/val/test of the run's split, a named split "
            "of --data, or all (default: test; all with --data)"
        ),
    ] = None,
    save_sims: Annotated[
        Path | None, typer.Option(help="with --run: also save the similarity matrix (.npz)")
    ] = None,
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
    """Score a trained run (--run) or a similarity matrix (--sims): t2v and v2t
    R@1/5/10, MdR, MnR and Rsum."""
    from vidret.eval.metrics import retrieval_metrics
    from vidret.eval.table import format_metrics

    if (run is None) == (sims is None):
        raise VidretError("give either --run RUN_DIR or --sims FILE")
    if run is not None:
        S, c2v = _run_sims(run, data, split)
        if save_sims is not None:
            np.savez(save_sims, sims=S, caption_to_video=c2v)
        sims = run
    else:
        S, c2v = _load_sims(sims, caption_to_video)
    try:
        metrics = retrieval_metrics(S, c2v, extra_ks=(50,) if r50 else ())
    except ValueError as e:
        raise VidretError(f"{sims}: {e}") from e
    typer.echo(json.dumps(metrics, indent=2) if as_json else format_metrics(metrics))


def _load_sims(path: Path, c2v_path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    loaded = _load_array_file(path, "--sims")
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded as z:
            missing = {"sims", "caption_to_video"} - set(z.files)
            if missing:
                raise VidretError(
                    f"{path}: missing arrays {sorted(missing)} (the archive holds "
                    f"{z.files[:5]}); save scores with np.savez(FILE, sims=..., "
                    "caption_to_video=...)"
                )
            return z["sims"], z["caption_to_video"]
    S = loaded
    if c2v_path is None:
        if S.ndim == 2 and S.shape[0] == S.shape[1]:
            return S, np.arange(S.shape[0])  # one caption per video, on the diagonal
        raise VidretError(
            f"{path}: a {list(S.shape)} array; a [captions, videos] matrix that is not square "
            "needs --caption-to-video"
        )
    if c2v_path.suffix == ".txt":
        try:
            c2v = np.loadtxt(c2v_path, dtype=np.int64, ndmin=1)
        except (ValueError, OSError, UnicodeDecodeError) as e:
            raise VidretError(f"{c2v_path}: expected one integer a line ({e})") from None
    else:
        c2v = _load_array_file(c2v_path, "--caption-to-video")
        if isinstance(c2v, np.lib.npyio.NpzFile):
            c2v.close()
            raise VidretError(f"{c2v_path}: an .npz archive; give a .npy array or a .txt file")
    return S, c2v


def _load_array_file(path: Path, option: str) -> np.ndarray | np.lib.npyio.NpzFile:
    """A .npy array (memory-mapped) or an .npz archive, judged by content, never pickles."""
    if not path.is_file():
        raise VidretError(f"{path}: no such file")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise VidretError(
            f"{option} {path}: not a NumPy .npy or .npz file; save scores with np.save or np.savez"
        ) from None


def _run_sims(run: Path, data: Path | None, split: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Similarities of a trained model on the chosen videos of a dataset folder."""
    import torch

    from vidret.data.splits import SPLIT_PARTS, load_named_split
    from vidret.eval.evaluate import similarity_matrix
    from vidret.train.data import prepare_data, split_caption_rows
    from vidret.train.run import load_trained_model

    cfg, model, info = load_trained_model(run)
    torch.set_num_threads(cfg.train.threads)  # the run's count: the same sums as training
    experts = list(info["signature"]["experts"])
    own_data = data is None
    root = Path(info["data"]) if own_data else data
    split = split or ("test" if own_data else "all")
    captions = None  # all captions of the videos, unless the split names them
    if own_data and split in SPLIT_PARTS:
        prepared = prepare_data(cfg, root, experts=experts)
        rows = prepared.splits[split]
        captions = prepared.scored.get(split)
    else:
        prepared = prepare_data(cfg, root, experts=experts, split="all")
        rows = prepared.splits["train"]  # 'all' puts every video in train
        if split != "all":
            _check_split_name(root, split, own_data)
            index = prepared.dataset.video_index()
            ids = load_named_split(root, split, set(index))
            rows = np.array([index[v] for v in ids], np.int64)
            captions = split_caption_rows(prepared.dataset, root, split)
    for name, dim in info["signature"]["experts"].items():
        have = prepared.dataset.experts[name].dim
        if have != dim:
            raise VidretError(
                f"{root}: expert '{name}' has dim {have}, but the model in {run} "
                f"was trained on dim {dim}"
            )
    if len(rows) == 0:
        raise VidretError(f"{root}: split '{split}' holds no videos")
    return similarity_matrix(model, prepared, rows, cfg.train.eval_batch, captions=captions)


def _check_split_name(root: Path, split: str, own_data: bool) -> None:
    from vidret.data.format import SPLITS_DIR
    from vidret.data.splits import SPLIT_PARTS

    if (root / SPLITS_DIR / f"{split}.txt").is_file():
        return
    named = sorted(p.stem for p in (root / SPLITS_DIR).glob("*.txt"))
    choices = dict.fromkeys([*(SPLIT_PARTS if own_data else ()), *named, "all"])
    raise VidretError(
        f"--split: no split named '{split}' in {root}; choose one of {', '.join(choices)}"
    )
