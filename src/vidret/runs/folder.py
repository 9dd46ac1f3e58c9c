"""A run folder: everything needed to re-run, resume or use a trained model.

config.yaml        the resolved config (re-run with `vidret train --config` on it)
model.json         input signature, data folder, caption model, split sizes
checkpoints/last.pt   full state for --resume (model, optimizer, scheduler, RNG, epoch)
checkpoints/best.pt   model weights of the best validation epoch
metrics.jsonl      one line per epoch: train loss terms, validation metrics, times
tensorboard/       the same as TensorBoard scalars
test_metrics.json  the best checkpoint on the test split, when there is one
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from vidret.config import RunConfig, parse_config
from vidret.errors import VidretError
from vidret.io import atomic_open, write_json_atomic
from vidret.models.base import ModelSignature
from vidret.models.retrieval import RetrievalModel, build_model
from vidret.runs.checkpoint import load_checkpoint

CONFIG = "config.yaml"
MODEL_INFO = "model.json"
LAST = Path("checkpoints/last.pt")
BEST = Path("checkpoints/best.pt")
TEST_METRICS = "test_metrics.json"


def write_run_info(run_dir: Path, cfg: RunConfig, info: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(run_dir / CONFIG) as f:
        f.write(cfg.to_yaml())
    write_json_atomic(run_dir / MODEL_INFO, info)


def signature_info(signature: ModelSignature) -> dict[str, Any]:
    return dataclasses.asdict(signature)


def require_run_folder(run_dir: Path) -> None:
    """Raise a clear error when `run_dir` does not exist or is a file, before any of its
    files is looked for."""
    if not run_dir.exists():
        raise VidretError(f"{run_dir}: no such folder; give a run folder (`vidret train --out`)")
    if not run_dir.is_dir():
        raise VidretError(f"{run_dir}: a file, not a run folder")


def read_run_config(run_dir: Path) -> RunConfig:
    require_run_folder(run_dir)
    path = run_dir / CONFIG
    if not path.exists():
        raise VidretError(
            f"{run_dir}: not a run folder (no {CONFIG}); train one with `vidret train --out DIR`"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise VidretError(
            f"{path}: unreadable run config ({e}); the run folder is damaged"
        ) from None
    model = raw.get("model") if isinstance(raw, dict) else None
    if (
        isinstance(model, dict)
        and model.get("backbone") in ("mmt", "ce")
        and "variant" not in model
    ):
        model["variant"] = "compact"  # saved before the published variant existed
    return parse_config(raw, str(path))


def read_model_info(run_dir: Path) -> dict[str, Any]:
    require_run_folder(run_dir)
    path = run_dir / MODEL_INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VidretError(
            f"{path}: missing; the run never started training (train it again)"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VidretError(f"{path}: unreadable ({e}); the run folder is damaged") from None
    if not isinstance(info, dict) or ("signature" not in info and "task" not in info):
        raise VidretError(f"{path}: not a vidret model description (no 'signature')")
    return info


def load_trained_model(
    run_dir: Path, checkpoint: Path = BEST
) -> tuple[RunConfig, RetrievalModel, dict[str, Any]]:
    """The run's config, its model with the chosen checkpoint's weights, and model.json."""
    if (run_dir / MODEL_INFO).exists() and "signature" not in read_model_info(run_dir):
        raise VidretError(  # a moment-localization run (CDNet)
            f"{run_dir}: a moment run; it localizes moments in a video (`vidret eval`, "
            "`vidret search --refine`) and cannot embed videos or captions: give a retrieval run"
        )
    cfg = read_run_config(run_dir)
    info = read_model_info(run_dir)
    signature = ModelSignature(**info["signature"])
    model = build_model(cfg, signature, info["text_model"])
    state = load_checkpoint(run_dir / checkpoint)
    model.load_state_dict(state["model"])
    model.eval()
    return cfg, model, info
