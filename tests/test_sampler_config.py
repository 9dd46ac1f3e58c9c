"""Batches of distinct videos (alone and under DDP), and typed configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from vidret.config import load_config
from vidret.config.moments import is_moment_config, load_moment_config
from vidret.data.dataset import VideoDataset
from vidret.errors import VidretError
from vidret.train.sampler import EpochBatches


def test_batches_hold_distinct_videos_and_their_own_captions(demo_dir: Path) -> None:
    ds = VideoDataset.open(demo_dir)
    rows = np.arange(100)
    batches = EpochBatches(ds, rows, batch_size=32, seed=3).epoch(0)
    seen = []
    for v, c in batches:
        assert len(set(v.tolist())) == len(v)
        assert (ds.caption_video[c] == v).all()
        seen += v.tolist()
    assert sorted(seen) == rows.tolist()  # every video once per epoch (last batch 4 >= 2)


def test_batches_repeat_by_seed_and_epoch(demo_dir: Path) -> None:
    ds = VideoDataset.open(demo_dir)
    s = EpochBatches(ds, np.arange(100), batch_size=32, seed=3)
    same = EpochBatches(ds, np.arange(100), batch_size=32, seed=3)
    for a, b in zip(s.epoch(4), same.epoch(4), strict=True):
        assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    assert not (s.epoch(4)[0][0] == s.epoch(5)[0][0]).all()
    # Captions vary across epochs: all of a video's captions get used over time.
    picks = {int(c[v == 7][0]) for e in range(30) for v, c in s.epoch(e) if (v == 7).any()}
    assert len(picks) > 2


def test_ranks_split_each_global_batch(demo_dir: Path) -> None:
    ds = VideoDataset.open(demo_dir)
    alone = EpochBatches(ds, np.arange(100), batch_size=32, seed=1).epoch(2)
    r0 = EpochBatches(ds, np.arange(100), batch_size=32, seed=1, rank=0, world_size=2).epoch(2)
    r1 = EpochBatches(ds, np.arange(100), batch_size=32, seed=1, rank=1, world_size=2).epoch(2)
    assert len(r0) == len(r1)
    for (v0, _), (v1, _), (v, _) in zip(r0, r1, alone, strict=False):
        assert not set(v0) & set(v1)
        assert sorted([*v0, *v1]) == sorted(v[: len(v0) + len(v1)])
    with pytest.raises(ValueError, match="divide"):
        EpochBatches(ds, np.arange(100), batch_size=33, seed=1, rank=0, world_size=2)


def test_config_overrides_and_clear_errors(tmp_path: Path) -> None:
    cfg = load_config(None, ["train.epochs=7", "model.backbone=mmt", "data.experts=[a, b]"])
    assert cfg.train.epochs == 7 and cfg.model.backbone == "mmt" and cfg.data.experts == ["a", "b"]
    with pytest.raises(VidretError, match=r"train.epoch: unknown key"):
        load_config(None, ["train.epoch=7"])
    # names are checked against the registries when a run starts (test_bad_inputs)
    with pytest.raises(VidretError, match="key=value"):
        load_config(None, ["train.epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {lr: -1}\n")
    with pytest.raises(VidretError, match=r"bad.yaml.*\n  train.lr: Input should be greater"):
        load_config(bad)


def test_every_shipped_config_loads() -> None:
    root = Path(__file__).parents[1] / "configs"
    configs = sorted(p for p in root.rglob("*.yaml") if "experiments" not in p.parts)
    assert configs, "configs/ is empty"
    for path in configs:  # each by its kind: a retrieval run, or a moment run (CDNet)
        (load_moment_config if is_moment_config(path) else load_config)(path)
    assert any(is_moment_config(p) for p in configs)


def test_loss_keys_are_those_the_objective_reads(tmp_path: Path) -> None:
    """A loss key given for an objective that does not read it is refused (it would change
    nothing, silently); the shipped configs hold none; switching the objective with
    `--set loss.name` drops the file's keys for the old one instead of refusing them."""
    from vidret.config import loss_keys_given
    from vidret.experiments.spec import load_experiment
    from vidret.losses.registry import check_loss_keys

    root = Path(__file__).parents[1] / "configs"
    for path in sorted(p for p in root.rglob("*.yaml") if "experiments" not in p.parts):
        if not is_moment_config(path):
            name = load_config(path).loss.name
            check_loss_keys(name, loss_keys_given(path, [], name), str(path))
    triplet = root / "meanpool-triplet.yaml"
    assert loss_keys_given(triplet, ["loss.name=infonce"], "infonce") == []
    given = loss_keys_given(triplet, ["loss.temperature=0.1"], "triplet")
    with pytest.raises(VidretError, match=r"loss\.temperature is not read by loss\.name 'triplet'"):
        check_loss_keys("triplet", given, "--set")
    spec = tmp_path / "x.yaml"
    spec.write_text(
        f"name: x\ndata: {tmp_path}\nbase: {triplet}\n"
        "variants:\n  - name: a\n    set: {loss.tau: 0.1}\n"
    )
    with pytest.raises(VidretError, match=r"variant 'a': loss\.tau is not read by loss\.name"):
        load_experiment(spec)


@pytest.mark.parametrize("name", ["meanpool-cmgsd", "mmt-infonce", "meanpool-bcls"])
def test_run_configs_saved_before_the_redesign_still_load(tmp_path: Path, name: str) -> None:
    """config.yaml files written by the code of 2026-12-07 (before the config package and
    the objective registry), one for each kind of objective: they load as run configs
    and build their model's objective with the settings they hold."""
    from vidret.losses.registry import build_objective
    from vidret.runs.folder import read_run_config

    saved = Path(__file__).parent / "data" / "runs-2026-12-07" / f"{name}.config.yaml"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(saved.read_text())
    cfg = read_run_config(run)
    old, now = yaml.safe_load(saved.read_text()), cfg.model_dump()
    for section, keys in old.items():  # every saved key kept with its value; keys added
        assert {k: now[section][k] for k in keys} == keys  # since take their defaults
    objective = build_objective(cfg.loss, cfg.train.epochs, cfg.model.embed_dim)
    if name == "meanpool-cmgsd":
        assert objective.alpha == cfg.loss.margin and objective.beta == cfg.loss.beta
        assert objective.lambda_end == cfg.loss.lambda_end * cfg.train.epochs
