"""The training loop: one process or DDP, validated each epoch, resumable exactly.

Batches come from `(seed, epoch)` and RNG states are saved at each epoch's end, so a
killed run resumed from its last checkpoint ends with the same weights and metrics as
one that was never interrupted, whenever it was killed (an early stop is saved with the
state, so a run killed during its final test does not train on after resuming). The
thread count is `train.threads`, part of the config, so a config gives the same numbers
on any machine of the same CPU family. One process writes a run folder at a time.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from vidret.batches.prepared import PreparedData, prepare_data, text_batch, video_batch
from vidret.config import RunConfig
from vidret.errors import VidretError
from vidret.eval.evaluate import evaluate
from vidret.io import require_folder_or_nothing, write_json_atomic
from vidret.locking import folder_lock, remove_stale_temporaries
from vidret.losses.registry import build_objective, check_objective
from vidret.losses.relevance import relevance_vectors, video_caption_index
from vidret.models.base import ModelSignature
from vidret.models.registry import check_backbone, reads_regions
from vidret.models.retrieval import build_model
from vidret.progress import progress_bar
from vidret.runs import folder as run_files
from vidret.runs.checkpoint import (
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
    seed_everything,
)
from vidret.runs.logger import RunLogger, say_early_stop, say_epoch
from vidret.train.distributed import ProcessGroup, destroy_process_group, init_process_group
from vidret.train.sampler import EpochBatches
from vidret.train.schedule import build_scheduler
from vidret.train.step import backward_scale, global_batch_loss, unscale_objective_grads
from vidret.version import code_version

LOWER_IS_BETTER = ("MdR", "MnR")


def region_note(backbone: str, signature: ModelSignature) -> dict[str, Any]:
    """model.json's word on what a region backbone took as regions: the experts' own region
    features, or the frames themselves (data without `<expert>.regions.npy`)."""
    if not reads_regions(backbone):
        return {}
    took = {e: "regions" if e in signature.regions else "frames" for e in signature.experts}
    return {"regions": took}


def metric_value(metrics: dict[str, Any], path: str) -> float:
    """`Rsum` or `t2v/R@1`-style paths; returned so that higher is always better."""
    node: Any = metrics
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            raise VidretError(
                f"train.val_metric={path!r}: no such metric; use Rsum or e.g. t2v/R@1, v2t/MdR"
            )
        node = node[part]
    return -float(node) if path.split("/")[-1] in LOWER_IS_BETTER else float(node)


def train(
    cfg: RunConfig, run_dir: Path, data_root: Path, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume) a run; returns the best validation and the test metrics."""
    check_backbone(cfg.model.backbone)  # a misspelt name fails before any data is read
    check_objective(cfg.loss.name)
    group = init_process_group()
    run_dir = Path(run_dir)
    try:
        with folder_lock(run_dir) if group.is_main else contextlib.nullcontext():
            if group.is_main:
                _check_run_folder(run_dir, resume)
            return _Trainer(cfg, run_dir, Path(data_root), group, progress).fit(resume)
    finally:
        destroy_process_group(group)


def _check_run_folder(run_dir: Path, resume: bool) -> None:
    """Under the folder's lock: a new run needs a free folder, a resumed one its state."""
    require_folder_or_nothing(run_dir)
    if resume and not (run_dir / run_files.LAST).exists():
        raise VidretError(
            f"{run_dir}: nothing to resume (no {run_files.LAST}); start it without --resume"
        )
    # Without last.pt a run was killed in its first epoch: nothing in it to keep.
    if not resume and (run_dir / run_files.LAST).exists():
        raise VidretError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )
    # Temporaries of atomic writes interrupted by a kill; no live writer owns them now.
    remove_stale_temporaries(run_dir, inside=("checkpoints",))


class _Trainer:
    def __init__(
        self, cfg: RunConfig, run_dir: Path, data_root: Path, group: ProcessGroup, progress: bool
    ):
        self.cfg, self.run_dir, self.group = cfg, run_dir, group
        self.progress = progress and group.is_main
        torch.set_num_threads(cfg.train.threads)
        # Rank 0 fills the caches; the others then read them instead of recomputing.
        if not group.is_main:
            group.barrier()
        self.data: PreparedData = prepare_data(cfg, data_root, progress=self.progress)
        if group.is_main:
            group.barrier()
        self.data_root = data_root
        self.static = None  # static supervision experts, when the objective needs them
        self.static_margins = False  # CMGSD's static experts go into the loss context
        self.relevance_index = None  # [videos, K] caption rows, for relevance objectives
        metric_value(_METRIC_SHAPE, cfg.train.val_metric)  # fail before training, not after

    def fit(self, resume: bool) -> dict[str, Any]:
        cfg, group, data = self.cfg, self.group, self.data
        seed_everything(cfg.train.seed)
        signature = data.signature()
        model = build_model(cfg, signature, str(data.text_model_path)).to(group.device)
        objective = build_objective(cfg.loss, cfg.train.epochs, cfg.model.embed_dim)
        objective = objective.to(group.device)
        self.static_margins = getattr(objective, "needs_static", False)
        if getattr(objective, "needs_relevance", False):
            # listwise / Kendall objectives: every caption of each batch video, by row
            self.relevance_index = video_caption_index(
                data.dataset.caption_video, data.dataset.num_videos
            )
        if self.static_margins or self.relevance_index is not None:
            from vidret.batches.static_experts import static_experts
            from vidret.text.sentence_bert import resolve_model_path

            model_path = (
                resolve_model_path(cfg.loss.static_text_model)
                if cfg.loss.static_text_model
                else data.text_model_path
            )
            # The run's caption features already hold this model's sentence vectors.
            same = model_path == data.text_model_path and cfg.text.source is None
            self.static = static_experts(
                data.dataset,
                data.experts,
                model_path,
                self.progress,
                sentence_vectors=data.text.sentence if same else None,
            )
        params = [
            p
            for p in itertools.chain(model.parameters(), objective.parameters())
            if p.requires_grad
        ]
        optimizer = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        sampler = EpochBatches(
            data.dataset,
            data.splits["train"],
            cfg.train.batch_size,
            cfg.train.seed,
            group.rank,
            group.world_size,
        )
        scheduler = build_scheduler(optimizer, cfg.train, len(sampler))
        state = {"epoch": 0, "best": -math.inf, "best_epoch": 0, "stale": 0}

        if resume:
            ckpt = load_checkpoint(self.run_dir / run_files.LAST)
            model.load_state_dict(ckpt["model"])
            objective.load_state_dict(ckpt["objective"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            restore_rng_state(ckpt["rng"])
            state = ckpt["state"]
        elif group.is_main:
            run_files.write_run_info(
                self.run_dir,
                cfg,
                {
                    "signature": run_files.signature_info(signature),
                    "data": str(self.data_root.resolve()),
                    "text_model": str(data.text_model_path),
                    "split": {p: len(r) for p, r in data.splits.items()},
                    "vidret_version": code_version(),
                    **region_note(cfg.model.backbone, signature),
                },
            )
        logger = (
            RunLogger(self.run_dir, state["epoch"] if resume else None) if group.is_main else None
        )
        if group.distributed and group.device.type == "cuda":
            # Batch norm (published mmt/ce) over the global batch, as one process would;
            # SyncBatchNorm needs CUDA, so on CPU (gloo) each process keeps its own.
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = DistributedDataParallel(model) if group.distributed else model

        # A run that stopped early and was killed before its test has nothing left to train.
        first = cfg.train.epochs if state.get("stopped") else state["epoch"]
        for epoch in range(first, cfg.train.epochs):
            started = time.perf_counter()
            train_terms = self._train_epoch(
                net, objective, optimizer, scheduler, params, sampler, epoch
            )
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "train": train_terms,
                "lr": scheduler.get_last_lr()[0],
                "epoch_time_s": round(time.perf_counter() - started, 3),
            }
            state["epoch"] = epoch + 1
            stop = False
            if group.is_main:
                stop = self._validate_and_save(
                    model, objective, optimizer, scheduler, state, record
                )
                logger.log_epoch(record)
                self._say_epoch(record, state, stop)
            if group.broadcast(stop):
                break

        result: dict[str, Any] = {}
        if group.is_main:
            logger.close()
            result = self._final_test(model, state)
        group.barrier()
        return result

    def _train_epoch(self, net, objective, optimizer, scheduler, params, sampler, epoch) -> dict:
        cfg, device = self.cfg, self.group.device
        net.train()
        batches = sampler.epoch(epoch)
        sums: dict[str, float] = defaultdict(float)
        bar = progress_bar(
            batches,
            enabled=self.progress,
            desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
            unit="step",
            leave=False,
        )
        for step, (video_rows, caption_rows) in enumerate(bar):
            video = video_batch(self.data, video_rows).to(device)
            text = text_batch(self.data, caption_rows).to(device)
            out = global_batch_loss(
                net,
                objective,
                text,
                video,
                self._static_batch(video_rows, caption_rows),
                epoch + step / len(batches),
                self.group,
                cfg.loss.dynamic_text,
            )
            if not math.isfinite(out.terms["loss"]):
                raise VidretError(
                    f"the loss became {out.terms['loss']} at epoch {epoch + 1}, step {step + 1}: "
                    f"training diverged; lower train.lr (now {cfg.train.lr}) or keep "
                    f"train.grad_clip set (now {cfg.train.grad_clip})"
                )
            optimizer.zero_grad(set_to_none=True)
            (out.total * backward_scale(self.group)).backward()
            unscale_objective_grads(objective, self.group)
            if cfg.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
            optimizer.step()
            scheduler.step()
            for k, v in out.terms.items():
                sums[k] += v
            bar.set_postfix(loss=f"{out.terms['loss']:.4f}")
        return {k: v / max(1, len(batches)) for k, v in sums.items()}

    def _static_batch(self, video_rows, caption_rows) -> dict[str, torch.Tensor]:
        """The batch's static expert vectors (CMGSD) and caption-relevance vectors
        (listwise, Kendall), or none when the objective needs none."""
        if self.static is None:
            return {}
        device = self.group.device
        out: dict[str, torch.Tensor] = {}
        if self.static_margins:
            out["text"] = torch.from_numpy(self.static.text[caption_rows])
            for name, vectors in self.static.video.items():
                out[f"video:{name}"] = torch.from_numpy(vectors[video_rows])
        if self.relevance_index is not None:
            out.update(
                relevance_vectors(self.static.text, self.relevance_index, caption_rows, video_rows)
            )
        return {k: v.to(device) for k, v in out.items()}

    def _validate_and_save(self, model, objective, optimizer, scheduler, state, record) -> bool:
        """Validate, keep the best weights, write `last.pt`; True when it is time to stop."""
        cfg = self.cfg
        val_rows = self.data.splits["val"]
        if len(val_rows):
            started = time.perf_counter()
            record["val"] = evaluate(
                model,
                self.data,
                val_rows,
                cfg.train.eval_batch,
                self.group.device,
                self.data.scored.get("val"),
            )
            record["val_time_s"] = round(time.perf_counter() - started, 3)
            value = metric_value(record["val"], cfg.train.val_metric)
        else:
            value = float(state["epoch"])  # no validation data: the latest epoch is the best
        improved = value > state["best"]
        if improved:
            state.update(best=value, best_epoch=state["epoch"], stale=0)
            save_checkpoint(
                self.run_dir / run_files.BEST,
                {
                    "model": model.state_dict(),
                    "epoch": state["epoch"],
                    "val": record.get("val"),
                },
            )
        else:
            state["stale"] += 1
        record["best_epoch"] = state["best_epoch"]
        state["stopped"] = cfg.train.patience is not None and state["stale"] >= cfg.train.patience
        save_checkpoint(
            self.run_dir / run_files.LAST,
            {
                "model": model.state_dict(),
                "objective": objective.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
                "state": dict(state),
                "config": cfg.model_dump(),
            },
        )
        return state["stopped"]

    def _say_epoch(self, record: dict[str, Any], state: dict[str, Any], stop: bool) -> None:
        train = self.cfg.train
        validation = None
        if "val" in record:
            value = metric_value(record["val"], train.val_metric)
            # metric_value negates lower-is-better metrics
            validation = (train.val_metric, abs(value), abs(state["best"]), state["best_epoch"])
        say_epoch(record["epoch"], train.epochs, record["train"]["loss"],
                  record["epoch_time_s"], validation)  # fmt: skip
        if stop:
            say_early_stop(train.val_metric, state["stale"], train.patience, state["best_epoch"])

    def _final_test(self, model, state) -> dict[str, Any]:
        best = load_checkpoint(self.run_dir / run_files.BEST)
        model.load_state_dict(best["model"])
        result: dict[str, Any] = {"best_epoch": best["epoch"], "val": best.get("val")}
        if len(self.data.splits["test"]):
            result["test"] = evaluate(
                model,
                self.data,
                self.data.splits["test"],
                self.cfg.train.eval_batch,
                self.group.device,
                self.data.scored.get("test"),
            )
        result["epochs_run"] = state["epoch"]
        write_json_atomic(self.run_dir / run_files.TEST_METRICS, result)
        return result


# The shape of a metrics dict, to check `train.val_metric` before any training.
_METRIC_SHAPE = {
    "t2v": {"R@1": 0, "R@5": 0, "R@10": 0, "MdR": 0, "MnR": 0},
    "v2t": {"R@1": 0, "R@5": 0, "R@10": 0, "MdR": 0, "MnR": 0},
    "Rsum": 0,
}
