"""Figures: adaptive-margin distributions, margins of chosen pairs, training curves.

Plotting only: each function takes numbers already computed and writes one PNG.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from vidret.io import atomic_path


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def margin_distribution(
    margins: dict[str, np.ndarray], alpha: float, beta: float, path: Path
) -> Path:
    """The paper's Figure 3: each expert's adaptive margins against the hard margin."""
    fig, ax = plt.subplots(figsize=(7, 4))
    lo = min(min(m.min() for m in margins.values()), alpha - 2 * beta)
    hi = max(max(m.max() for m in margins.values()), alpha + 2 * beta)
    bins = np.linspace(lo, hi, 60)
    for name, m in margins.items():
        ax.hist(m, bins=bins, histtype="step", density=True, linewidth=1.5, label=name)
    ax.axvline(alpha, color="black", linestyle="--", label=f"hard margin alpha = {alpha:g}")
    ax.axvspan(
        alpha - beta,
        alpha + beta,
        color="grey",
        alpha=0.15,
        label=f"alpha +- beta (90% of margins), beta = {beta:g}",
    )
    ax.set_xlabel("margin")
    ax.set_ylabel("density")
    ax.set_title("Adaptive margins of one training batch, by supervision expert")
    ax.legend(fontsize=8)
    return _save(fig, path)


@dataclass
class PairMargins:
    """One query caption and some of its negatives, with each expert's margin."""

    caption: str
    negatives: list[str]  # a description of each negative video (one of its captions)
    kinds: list[str]  # "nearest" / "farthest" by the model's similarity
    similarity: list[float]
    margins: dict[str, list[float]]  # expert -> margin of each negative


def pair_margins(examples: Sequence[PairMargins], alpha: float, path: Path) -> Path:
    """The paper's Figures 5-6: nearest and farthest negatives and the margin each receives."""
    experts = list(examples[0].margins)
    rows_per = len(examples[0].negatives)
    fig_h = 1.0 + len(examples) * (0.55 + 0.33 * rows_per)
    fig, axes = plt.subplots(len(examples), 1, figsize=(11, fig_h), squeeze=False)
    for ax, ex in zip(axes[:, 0], examples, strict=True):
        ax.axis("off")
        cells = [
            [
                k,
                textwrap.shorten(neg, 60),
                f"{s:.3f}",
                *(f"{ex.margins[e][i]:.3f}" for e in experts),
            ]
            for i, (k, neg, s) in enumerate(zip(ex.kinds, ex.negatives, ex.similarity, strict=True))
        ]
        table = ax.table(
            cellText=cells,
            colLabels=["negative", "video (one of its captions)", "model sim", *experts],
            loc="center",
            cellLoc="left",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(7.5)
        table.auto_set_column_width(list(range(3 + len(experts))))
        for (r, c), cell in table.get_celld().items():
            if r > 0 and c >= 3:
                value = float(cell.get_text().get_text())
                # Blue: smaller margin than alpha (treated as closer), red: larger.
                shade = np.clip((value - alpha) * 8, -0.6, 0.6)
                cell.set_facecolor(
                    (1, 1 - shade, 1 - shade) if shade > 0 else (1 + shade, 1 + shade, 1)
                )
        ax.set_title(f"query: \u201c{ex.caption}\u201d", fontsize=9, loc="left")
    fig.suptitle(
        f"Margins given to negatives (hard margin alpha = {alpha:g}; blue smaller, red larger)",
        fontsize=10,
    )
    return _save(fig, path)


def training_curves(records: list[dict[str, Any]], path: Path) -> Path:
    """Loss terms and lambda per epoch, with validation Rsum when the run had validation."""
    epochs = [r["epoch"] for r in records]
    train_keys = [k for k in records[0]["train"] if k.startswith("loss")]
    has_lambda = "lambda_" in records[0]["train"]
    has_val = all("val" in r for r in records)
    panels = 1 + has_lambda + has_val
    fig, axes = plt.subplots(panels, 1, figsize=(7, 2.6 * panels), sharex=True, squeeze=False)
    ax = axes[0, 0]
    for key in train_keys:
        ax.plot(epochs, [r["train"][key] for r in records], label=key)
    ax.set_ylabel("training loss")
    ax.legend(fontsize=7, ncol=2)
    i = 1
    if has_lambda:
        axes[i, 0].plot(epochs, [r["train"]["lambda_"] for r in records], color="purple")
        axes[i, 0].set_ylabel("lambda (mean)")
        i += 1
    if has_val:
        axes[i, 0].plot(epochs, [r["val"]["Rsum"] for r in records], color="green")
        best = records[-1].get("best_epoch")
        if best:
            axes[i, 0].axvline(best, color="grey", linestyle=":", label=f"best epoch {best}")
            axes[i, 0].legend(fontsize=7)
        axes[i, 0].set_ylabel("validation Rsum")
    axes[-1, 0].set_xlabel("epoch")
    return _save(fig, path)


def variants_bar(results: dict[str, Any], path: Path) -> Path:
    """Mean +- std Rsum of each variant, validation and test side by side."""
    variants = results["variants"]
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(variants)), 3.8))
    width = 0.38
    for k, part in enumerate(("val", "test")):
        means, stds = [], []
        for v in variants:
            values = [r[part]["Rsum"] for r in results["runs"] if r["variant"] == v and r.get(part)]
            means.append(np.mean(values) if values else np.nan)
            stds.append(np.std(values, ddof=1) if len(values) > 1 else 0.0)
        x = np.arange(len(variants)) + (k - 0.5) * width
        ax.bar(x, means, width, yerr=stds, capsize=3, label=part)
    ax.set_xticks(np.arange(len(variants)))
    ax.set_xticklabels([textwrap.fill(v, 16) for v in variants], fontsize=8)
    ax.set_ylabel("Rsum (mean +- std over runs: seeds or folds)")
    lo = np.nanmin([r[p]["Rsum"] for r in results["runs"] for p in ("val", "test") if r.get(p)])
    ax.set_ylim(bottom=max(0, lo - 40))
    ax.legend(fontsize=8)
    ax.set_title(results["experiment"])
    return _save(fig, path)


def variants_curves(curves: dict[str, list[list[float]]], path: Path) -> Path:
    """Validation Rsum per epoch of each variant: mean over runs (seeds or folds), +- one std."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for variant, runs in curves.items():
        length = max(len(r) for r in runs)
        padded = np.full((len(runs), length), np.nan)
        for i, r in enumerate(runs):
            padded[i, : len(r)] = r
        mean, std = np.nanmean(padded, 0), np.nanstd(padded, 0)
        epochs = np.arange(1, length + 1)
        ax.plot(epochs, mean, label=variant)
        ax.fill_between(epochs, mean - std, mean + std, alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation Rsum")
    ax.set_title(
        "mean over runs, seeds or folds (a run stopped early leaves the mean from then on)",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    return _save(fig, path)
