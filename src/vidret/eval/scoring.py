"""Score a trained run on a split: its similarity matrix, and QB-Norm's query bank."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidret.errors import VidretError
from vidret.eval.normalization import Normalization, QueryBank, normalized_metrics


@dataclass
class RunScores:
    """A run's `[captions, videos]` similarities on one split, and what was scored."""

    sims: np.ndarray
    caption_to_video: np.ndarray
    split: str
    data: Path
    bank: QueryBank | None = None

    def describe(self) -> str:
        videos, captions = self.sims.shape[1], self.sims.shape[0]
        return f"split '{self.split}' of {self.data}: {videos} videos, {captions} captions"

    def metrics(self, norm: Normalization, extra_ks: tuple[int, ...] = ()) -> dict[str, Any]:
        return normalized_metrics(self.sims, self.caption_to_video, norm, self.bank, extra_ks)


def score_run(
    run: Path,
    data: Path | None = None,
    split: str | None = None,
    with_bank: bool = False,
    bank_size: int | None = None,
) -> RunScores:
    """Similarities of a trained model on the chosen videos of a dataset folder (default:
    the run's own data, test split); with `with_bank`, QB-Norm's query bank from the run's
    training part as well."""
    import torch

    from vidret.batches.prepared import prepare_data, split_caption_rows
    from vidret.data.splits import SPLIT_PARTS, load_named_split
    from vidret.eval.evaluate import BANK_SIZE, query_bank, similarity_matrix
    from vidret.runs.folder import load_trained_model

    cfg, model, info = load_trained_model(run)
    torch.set_num_threads(cfg.train.threads)  # the run's count: the same sums as training
    experts = list(info["signature"]["experts"])
    own_data = data is None
    root = Path(info["data"]) if own_data else data
    split = split or ("test" if own_data else "all")
    own_part = own_data and split in SPLIT_PARTS
    if with_bank and not own_part:
        raise VidretError(
            "QB-Norm draws its query bank from the run's training videos, so it scores the "
            f"run's own train/val/test parts only (not --data or split '{split}'); leave "
            "--data out and pick --split test or val"
        )
    captions = None  # all captions of the videos, unless the split names them
    if own_part:
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
        if own_part and cfg.data.split == "all":
            raise VidretError(
                f"{run} was trained with data.split=all: every video of {root} was a "
                f"training video and its '{split}' part is empty. Give --split all to score "
                "the training videos (not a held-out figure), or --data OTHER_DATASET"
            )
        raise VidretError(f"{root}: split '{split}' holds no videos")
    batch = cfg.train.eval_batch
    sims, c2v = similarity_matrix(model, prepared, rows, batch, captions=captions)
    bank = None
    if with_bank:
        size = bank_size or BANK_SIZE
        bank = query_bank(model, prepared, rows, captions, size=size, batch=batch)
    return RunScores(sims, c2v, split, root, bank)


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
