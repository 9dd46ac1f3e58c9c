"""Metrics as a plain-text table, the layout papers use."""

from __future__ import annotations

from typing import Any


def format_metrics(metrics: dict[str, Any]) -> str:
    """Two rows (t2v, v2t), one column per metric, then Rsum."""
    keys = list(metrics["t2v"])
    header = f"{'':<5}" + "".join(f"{k:>9}" for k in keys)
    rows = [header]
    for direction in ("t2v", "v2t"):
        rows.append(f"{direction:<5}" + "".join(f"{metrics[direction][k]:>9.2f}" for k in keys))
    rows.append(f"Rsum {metrics['Rsum']:.2f}")
    if "moments" in metrics:  # a moment dataset: where in each video, too
        m = metrics["moments"]
        rows.append(
            f"moments ({m['method']}, {m['queries']} captions): " + format_moment_metrics(m)
        )
    return "\n".join(rows)


def format_moment_metrics(metrics: dict[str, Any]) -> str:
    """`R1@0.3 41.20  R1@0.5 ...  mIoU 38.10` from moment metrics (other keys skipped)."""
    return "  ".join(f"{k} {v:.2f}" for k, v in metrics.items() if k[0] == "R" or k == "mIoU")
