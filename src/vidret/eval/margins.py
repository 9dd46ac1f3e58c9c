"""`vidret margins`: the adaptive margins a trained model and the static experts give.

One batch of distinct videos (one caption each, seeded) is embedded by the run's model;
each supervision expert's margins for it are computed exactly as in training, and drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidret.batches.prepared import prepare_data, text_batch, video_batch
from vidret.batches.static_experts import static_experts
from vidret.eval import figures
from vidret.losses.base import LossContext
from vidret.losses.cmgsd import CMGSDLoss
from vidret.progress import note
from vidret.runs.folder import load_trained_model
from vidret.runs.logger import read_metrics

# losses whose training used the adaptive margins these figures draw
ADAPTIVE_MARGIN_LOSSES = ("cmgsd", "adaptive_infonce", "adaptive_unified")


def margin_figures(
    run_dir: Path,
    data_root: Path | None,
    out_dir: Path,
    alpha: float | None = None,
    beta: float | None = None,
    batch: int = 128,
    examples: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> list[Path]:
    cfg, model, info = load_trained_model(run_dir)
    experts = list(info["signature"]["experts"])
    data_root = data_root or Path(info["data"])
    data = prepare_data(cfg, data_root, experts=experts, split="all", progress=progress)
    if cfg.loss.name not in ADAPTIVE_MARGIN_LOSSES:
        note(
            f"warning: {run_dir} was trained with loss '{cfg.loss.name}', which uses no "
            "adaptive margin: the figures show the margins CMGSD would have given this "
            "model (alpha, beta from the run's config), not ones it trained with",
            err=True,
        )
    alpha = cfg.loss.margin if alpha is None else alpha
    beta = cfg.loss.beta if beta is None else beta
    ds = data.dataset

    rng = np.random.default_rng(seed)
    videos = np.sort(rng.choice(ds.num_videos, min(batch, ds.num_videos), replace=False))
    first_caption = np.full(ds.num_videos, -1)
    for k in range(len(ds.caption_video) - 1, -1, -1):
        first_caption[ds.caption_video[k]] = k
    per_video = [np.flatnonzero(ds.caption_video == v) for v in videos]
    captions = np.array([c[rng.integers(len(c))] for c in per_video])

    with torch.no_grad():
        fwd = model(text_batch(data, captions), video_batch(data, videos))
    static = static_experts(
        ds, experts, data.text_model_path, progress, sentence_vectors=data.text.sentence
    )
    ctx = LossContext(
        epoch=0.0,
        text=fwd.text,
        video=fwd.video,
        static={
            "text": torch.from_numpy(static.text[captions]),
            **{f"video:{e}": torch.from_numpy(v[videos]) for e, v in static.video.items()},
        },
    )
    dynamic, static_m = CMGSDLoss(alpha=alpha, beta=beta).margins(ctx)
    named = dict(dynamic + static_m)
    off = ~np.eye(len(videos), dtype=bool)

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        figures.margin_distribution(
            {n: m.numpy()[off] for n, m in named.items()},
            alpha,
            beta,
            out_dir / "margin_distribution.png",
        )
    ]
    sims = fwd.sims.numpy()
    chosen = []
    for i in range(min(examples, len(videos))):
        order = [j for j in np.argsort(-sims[i]) if j != i]
        picks = [*order[:3], *order[-2:]]
        chosen.append(
            figures.PairMargins(
                caption=ds.captions[captions[i]],
                negatives=[ds.captions[first_caption[videos[j]]] for j in picks],
                kinds=["nearest"] * 3 + ["farthest"] * 2,
                similarity=[float(sims[i, j]) for j in picks],
                margins={n: [float(m[i, j]) for j in picks] for n, m in named.items()},
            )
        )
    paths.append(figures.pair_margins(chosen, alpha, out_dir / "pair_margins.png"))
    if (run_dir / "metrics.jsonl").exists() and read_metrics(run_dir):
        paths.append(
            figures.training_curves(read_metrics(run_dir), out_dir / "training_curves.png")
        )
    return paths
