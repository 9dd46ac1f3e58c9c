"""Helpers shared by tests (importable because pytest puts tests/ on the path)."""

import json
from pathlib import Path

import numpy as np

# A model small enough to train in seconds, used by the training tests.
TINY = [
    "model.embed_dim=32",
    "model.hidden_dim=64",
    "model.heads=2",
    "model.layers=1",
    "train.batch_size=32",
    "train.epochs=3",
    "train.warmup_steps=2",
    "train.threads=1",
    "train.eval_batch=64",
]


def clip_dataset(root: Path, n: int = 24, with_times: bool = False) -> Path:
    """n clips with known durations, 3 to 6 frames of 4-d features, 2 captions each."""
    rng = np.random.default_rng(0)
    root.mkdir()
    lengths = rng.integers(3, 7, n)
    features = np.zeros((n, 6, 4), np.float32)
    for i in range(n):
        features[i, : lengths[i]] = rng.standard_normal((lengths[i], 4)) + i
    np.save(root / "frames.npy", features)
    np.save(root / "frames.lengths.npy", lengths)
    if with_times:
        times = np.full((n, 6), np.nan)
        for i in range(n):
            times[i, : lengths[i]] = np.linspace(0.1, 1.9, lengths[i])
        np.save(root / "frames.times.npy", times)
    videos = [{"video_id": f"clip{i:02d}", "start": 10.0, "end": 12.0 + i % 5} for i in range(n)]
    (root / "videos.jsonl").write_text("".join(json.dumps(v) + "\n" for v in videos))
    captions = [{"video_id": v["video_id"], "caption": f"caption {k} of {v['video_id']}"}
                for v in videos for k in range(2)]  # fmt: skip
    (root / "captions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in captions))
    return root
