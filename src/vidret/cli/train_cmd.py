"""`vidret train`: train a retrieval model; `--resume` continues a killed run."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from vidret.errors import VidretError
from vidret.json_output import dumps


def train_epilog() -> str:
    """What `train --help` lists: the backbones, objectives and shipped configs."""
    from vidret.losses.registry import OBJECTIVES
    from vidret.models.registry import BACKBONES

    backbones = ", ".join(BACKBONES)
    objectives = ", ".join(OBJECTIVES)
    lines = [
        f"Backbones (--set model.backbone=NAME): {backbones}; mmt and ce as their reference "
        "code builds them (model.variant=published, the default) or compact.",
        f"Objectives (--set loss.name=NAME): {objectives}.",
    ]
    configs = shipped_configs()
    if configs:
        names = ", ".join(p.name for p in configs)
        lines.append(
            f"Configs in {configs[0].parent}: {names}; paper-sized ones in large/, "
            "experiment files (vidret experiment) in experiments/."
        )
    return "\n\n".join(lines)


def shipped_configs() -> list[Path]:
    """configs/*.yaml of the source tree (or of the working folder)."""
    for root in (Path(__file__).resolve().parents[3], Path.cwd()):
        found = sorted((root / "configs").glob("*.yaml"))
        if found:
            return found
    return []


def default_demo_dir() -> Path:
    from vidret.cache_dir import user_cache_dir

    return user_cache_dir() / "demo-data"


def train_command(
    data: Annotated[
        Path | None,
        typer.Option(
            help="dataset folder (default: data.path of the config, else the generated demo set)"
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML config, e.g. configs/meanpool-infonce.yaml")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="run folder (default: runs/<name>-<time>)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="training seed (train.seed)")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a key: --set train.epochs=5 (repeatable)"),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the run in --out from its last checkpoint")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Train a model; validate each epoch, keep the best, score it on the test split."""
    from vidret.config import load_config, loss_keys_given
    from vidret.losses.registry import check_loss_keys
    from vidret.runs.folder import read_run_config
    from vidret.train.trainer import train

    overrides = list(set_ or [])
    if resume:
        if out is None:
            raise VidretError("--resume needs --out RUN_DIR, the run to continue")
        if config is not None or overrides or seed is not None:
            raise VidretError(
                "--resume continues a run with its saved config; drop "
                "--config/--set/--seed (start a new run to change them)"
            )
    if _moment_task(config, out if resume else None):
        _train_moments(data, config, out, seed, overrides, resume, quiet)
        return
    if resume:
        assert out is not None
        cfg, data_root = read_run_config(out), _saved_data_root(out)
    else:
        cfg = load_config(config, _with_seed(overrides, seed))
        given = loss_keys_given(config, overrides, cfg.loss.name)
        check_loss_keys(cfg.loss.name, given, str(config or "--set"))
        data_root = data or (Path(cfg.data.path) if cfg.data.path else None)
        if data_root is None:
            data_root = _demo_dataset()
        out = out or _new_run_folder(config, f"{cfg.model.backbone}-{cfg.loss.name}")
        cfg.data.path = str(Path(data_root).resolve())
    result = train(cfg, out, data_root, resume=resume, progress=not quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        _report(out, result)


def _moment_task(config: Path | None, resumed: Path | None) -> bool:
    """A moment-localization run: a config with `task: moments`, or such a run resumed."""
    from vidret.config.moments import is_moment_config
    from vidret.moments.localize import is_moment_run

    return is_moment_config(config) or (resumed is not None and is_moment_run(resumed))


def _train_moments(
    data: Path | None,
    config: Path | None,
    out: Path | None,
    seed: int | None,
    overrides: list[str],
    resume: bool,
    quiet: bool,
) -> None:
    from vidret.config.moments import load_moment_config, read_moment_run_config
    from vidret.eval.table import format_moment_metrics
    from vidret.moments.trainer import train_moments

    if resume:  # the options were checked by train_command
        assert out is not None
        cfg, data_root = read_moment_run_config(out), _saved_data_root(out)
    else:
        cfg = load_moment_config(config, _with_seed(overrides, seed))
        data_root = data or (Path(cfg.data.path) if cfg.data.path else None)
        if data_root is None:
            raise VidretError(
                "a moment run needs --data DIR, a folder with moments.jsonl (build one with "
                "`vidret data moments SRC DST --clips 4`)"
            )
        out = out or _new_run_folder(config, "cdnet")
        cfg.data.path = str(Path(data_root).resolve())
    result = train_moments(cfg, out, Path(data_root), resume=resume, progress=not quiet)
    typer.echo(f"run folder: {out}")
    typer.echo(f"best epoch: {result['best_epoch']} of {result['epochs_run']}")
    for part in ("val", "test"):
        if result.get(part):
            typer.echo(f"{part} moments: " + format_moment_metrics(result[part]))
    typer.echo(dumps({"run": str(out), "test_R1@0.5": (result.get("test") or {}).get("R1@0.5")}))


def _with_seed(overrides: list[str], seed: int | None) -> list[str]:
    """`--seed N` is `--set train.seed=N`, for either kind of run."""
    return overrides if seed is None else [*overrides, f"train.seed={seed}"]


def _saved_data_root(run: Path) -> Path:
    """The dataset a run was trained on (model.json), to resume it there."""
    from vidret.runs.folder import read_model_info

    return Path(read_model_info(run)["data"])


def _new_run_folder(config: Path | None, fallback: str) -> Path:
    """`runs/<config name or fallback>-<date>-<time>`."""
    return Path("runs") / f"{config.stem if config else fallback}-{time.strftime('%Y%m%d-%H%M%S')}"


def _demo_dataset() -> Path:
    from vidret.data.demo import make_demo_dataset

    folder = default_demo_dir()
    if not (folder / "videos.jsonl").exists():
        typer.echo(f"no --data given: generating the demo dataset in {folder}")
        make_demo_dataset(folder, overwrite=True)
    return folder


def _report(out: Path, result: dict) -> None:
    from vidret.eval.table import format_metrics

    typer.echo(f"run folder: {out}")
    typer.echo(f"best epoch: {result['best_epoch']} of {result['epochs_run']}")
    if result.get("val"):
        typer.echo("validation (best epoch):\n" + format_metrics(result["val"]))
    if result.get("test"):
        typer.echo("test:\n" + format_metrics(result["test"]))
    else:
        typer.echo("test: no test videos in this split (data.split=all trains on every video)")
    typer.echo(dumps({"run": str(out), "test_Rsum": (result.get("test") or {}).get("Rsum")}))
