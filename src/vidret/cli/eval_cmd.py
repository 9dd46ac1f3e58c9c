"""`vidret eval`: retrieval metrics with the field's exact conventions."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from vidret.cli.options import JsonOption
from vidret.errors import VidretError

if TYPE_CHECKING:
    from vidret.eval.normalization import QueryBank


def eval_command(
    run: Annotated[Path | None, typer.Option(help="a trained run folder")] = None,
    runs: Annotated[
        str | None,
        typer.Option(
            help="fuse trained runs of one dataset and split: RUN1,RUN2,... (each "
            "standardized on its validation split, weights from --weights)"
        ),
    ] = None,
    weights: Annotated[
        str,
        typer.Option(
            help="with --runs: 'auto' (the best validation Rsum on a 0.1 grid) or "
            "w1,w2,... one per run"
        ),
    ] = "auto",
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
    as_json: JsonOption = False,
    r50: Annotated[bool, typer.Option("--r50", help="also report R@50")] = False,
    normalize: Annotated[
        str,
        typer.Option(
            help="test-time normalization: none, dual_softmax (a prior over the test "
            "queries) or qbnorm (a query bank of training captions and videos)"
        ),
    ] = "none",
    temperature: Annotated[
        float,
        typer.Option(help="dual softmax temperature (chosen on msrvtt-1k's validation split)"),
    ] = 0.1,  # Normalization's default (a literal: --help imports no numerics)
    beta: Annotated[
        float, typer.Option(help="QB-Norm inverse temperature (chosen on validation, as T)")
    ] = 5.0,
    bank_size: Annotated[
        int, typer.Option(help="QB-Norm: at most this many training captions (and videos)", min=1)
    ] = 10_000,
) -> None:
    """Score a trained run (--run) or a similarity matrix (--sims): R@1/5/10, MdR, MnR, Rsum."""
    from vidret.eval.normalization import Normalization, normalized_metrics
    from vidret.eval.scoring import score_run
    from vidret.eval.table import format_metrics, format_moment_metrics
    from vidret.json_output import dumps

    if runs is not None:
        if run is not None or sims is not None or data is not None or save_sims is not None:
            raise VidretError("--runs scores the runs' own split: leave out --run, --sims, "
                              "--data and --save-sims")  # fmt: skip
        _eval_fusion(runs, weights, split or "test", normalize, as_json, r50)
        return
    if (run is None) == (sims is None):
        raise VidretError("give either --run RUN_DIR, --runs RUN1,RUN2 or --sims FILE")
    if run is not None and _is_moment_run(run):  # CDNet: where in each video, no ranking
        metrics = _cdnet_metrics(run, data, split)
        shown = format_moment_metrics(metrics["moments"])
        typer.echo(dumps(metrics, indent=2) if as_json else shown)
        return
    norm = Normalization(method=normalize, temperature=temperature, beta=beta)  # type: ignore[arg-type]
    bank: QueryBank | None = None
    if run is not None:
        scores = score_run(run, data, split, with_bank=norm.method == "qbnorm", bank_size=bank_size)
        S, c2v, bank = scores.sims, scores.caption_to_video, scores.bank
        typer.echo(f"scored {scores.describe()}", err=True)
        if save_sims is not None:
            arrays = {"sims": S, "caption_to_video": c2v}
            if bank is not None:
                arrays[BANK_T2V] = bank.text_to_test_videos
                arrays[BANK_V2T] = bank.test_captions_to_videos
            np.savez(save_sims, **arrays)
        sims = run
    else:
        S, c2v, bank = _load_sims(sims, caption_to_video, norm.method == "qbnorm")
    if norm.active:
        typer.echo(f"test-time normalization: {norm.label()}", err=True)
    try:
        metrics = normalized_metrics(S, c2v, norm, bank, extra_ks=(50,) if r50 else ())
    except ValueError as e:
        raise VidretError(f"{sims}: {e}") from e
    if run is not None:
        metrics.update(_moment_metrics(run, data, split))
    typer.echo(dumps(metrics, indent=2) if as_json else format_metrics(metrics))


def _eval_fusion(
    runs: str, weights: str, split: str, normalize: str, as_json: bool, r50: bool
) -> None:
    """`--runs`: the fused matrix's metrics on the runs' `split`, with the fusion's weights."""
    from vidret.eval.fusion import fuse_runs, parse_weights
    from vidret.eval.metrics import retrieval_metrics
    from vidret.eval.table import format_metrics
    from vidret.json_output import dumps

    if normalize != "none":
        raise VidretError("--runs: test-time normalization of a fusion is not supported yet")
    if split not in ("val", "test"):
        raise VidretError(f"--runs --split {split!r}: fusion scores the runs' val or test part")
    folders = [Path(r) for r in runs.split(",") if r.strip()]
    fusion, S, c2v = fuse_runs(folders, parse_weights(weights, len(folders)), split)
    metrics = retrieval_metrics(S, c2v, (50,) if r50 else ())
    metrics["fusion"] = fusion.describe()
    shown = ", ".join(f"{w:.2f} x {r}" for w, r in zip(fusion.weights, fusion.runs, strict=True))
    typer.echo(f"fused split '{split}': {shown} (weights {fusion.chosen_on})", err=True)
    typer.echo(dumps(metrics, indent=2) if as_json else format_metrics(metrics))


def _moment_metrics(run: Path, data: Path | None, split: str | None) -> dict:
    """On a dataset with moment captions: R{1,5}@{0.3,0.5,0.7} and mIoU of the sliding-
    window baseline, under `moments`; else nothing."""
    from vidret.data.moments import MOMENTS_FILE
    from vidret.eval.temporal import moment_metrics
    from vidret.moments.windows import localize_with_windows
    from vidret.runs.folder import read_model_info

    root = data if data is not None else Path(read_model_info(run)["data"])
    if not (root / MOMENTS_FILE).exists():
        return {}
    found = localize_with_windows(run, root, split or "test")
    scores = moment_metrics(found.spans, found.truth)
    typer.echo(
        f"moments: {len(found.truth)} captions in {found.videos} videos, localized by sliding "
        "windows scored by the model",
        err=True,
    )
    return {"moments": {"method": "sliding windows", "queries": len(found.truth), **scores}}


def _is_moment_run(run: Path) -> bool:
    from vidret.moments.localize import is_moment_run

    return is_moment_run(run)


def _cdnet_metrics(run: Path, data: Path | None, split: str | None) -> dict:
    """A CDNet run's moment metrics on its data's (or `data`'s) split, default test."""
    from vidret.eval.temporal import moment_metrics
    from vidret.moments.localize import localize_with_cdnet
    from vidret.runs.folder import read_model_info

    root = data if data is not None else Path(read_model_info(run)["data"])
    found = localize_with_cdnet(run, root, split or "test")
    scores = moment_metrics(found.spans, found.truth)
    typer.echo(
        f"moments: {len(found.truth)} captions in {found.videos} videos, localized by CDNet",
        err=True,
    )
    return {"moments": {"method": "cdnet", "queries": len(found.truth), **scores}}


# .npz arrays of QB-Norm's query bank, beside 'sims' and 'caption_to_video'
BANK_T2V = "bank_text_to_videos"  # [bank captions, videos]
BANK_V2T = "bank_captions_to_videos"  # [captions, bank videos]


def _load_sims(
    path: Path, c2v_path: Path | None, want_bank: bool
) -> tuple[np.ndarray, np.ndarray, QueryBank | None]:
    from vidret.eval.normalization import QueryBank

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
            bank = None
            if want_bank:
                if not {BANK_T2V, BANK_V2T} <= set(z.files):
                    raise VidretError(_NO_BANK.format(path=path))
                bank = QueryBank(z[BANK_T2V], z[BANK_V2T])
            return z["sims"], z["caption_to_video"], bank
    if want_bank:
        raise VidretError(_NO_BANK.format(path=path))
    S = loaded
    if c2v_path is None:
        if S.ndim == 2 and S.shape[0] == S.shape[1]:
            return S, np.arange(S.shape[0]), None  # one caption per video, on the diagonal
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
    return S, c2v, None


_NO_BANK = (
    "--normalize qbnorm: {path} holds no query bank; save one with `vidret eval --run RUN "
    f"--normalize qbnorm --save-sims FILE`, or np.savez(FILE, sims=..., caption_to_video=..., "
    f"{BANK_T2V}=[bank captions x videos], {BANK_V2T}=[captions x bank videos])"
)


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
