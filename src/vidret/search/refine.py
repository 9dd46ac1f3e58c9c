"""Sharper moments: a CDNet run re-reads the frames around each segment hit and puts the
hit's start and end where it finds the moment (`vidret search --refine RUN`).

Segments are fixed windows (`vidret.search.segments`), so a hit says "somewhere in
these S seconds". CDNet reads the hit widened by `CONTEXT` times its length on each side
(within the video), at most the run's `data.max_frames` frames, and its best span there
becomes the hit's `segment`; the merged window is kept as `coarse_segment`. The ranking
and scores stay the retrieval model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidret.data.dataset import VideoDataset
from vidret.data.moments import video_duration
from vidret.errors import VidretError
from vidret.models.cdnet import MomentBatch
from vidret.moments.data import frame_inputs, read_frames, text_inputs
from vidret.moments.localize import load_moment_run
from vidret.moments.spans import best_spans
from vidret.text.sentence_bert import encode_texts

CONTEXT = 1.0  # the window CDNet reads: the hit plus this many of its lengths either side


class MomentRefiner:
    def __init__(self, run_dir: Path, data_dir: Path):
        self.cfg, self.model, info = load_moment_run(run_dir)
        self.expert = info["expert"]
        self.text_model = Path(info["text_model"])
        if not (data_dir / "videos.jsonl").is_file():
            raise VidretError(
                f"--refine: the index's videos were read from {data_dir}, which is not here; "
                "CDNet needs their frame features"
            )
        self.dataset = VideoDataset.open(data_dir)
        expert = self.dataset.experts.get(self.expert)
        if expert is None or expert.dim != info["video_dim"]:
            raise VidretError(
                f"--refine {run_dir}: CDNet reads {info['video_dim']}-d '{self.expert}' "
                f"features; {data_dir} has {sorted(self.dataset.experts)}"
            )
        self.row_of = self.dataset.video_index()

    def refine(
        self, query: str, hits: list[tuple[float, dict[str, Any]]]
    ) -> list[tuple[float, dict[str, Any]]]:
        """The hits with `segment` set to CDNet's span around each (same order, scores)."""
        if not hits:
            return hits
        windows, videos = [], []
        for _, meta in hits:
            row = self.row_of[meta["video_id"]]
            start, end = meta["segment"]
            reach = CONTEXT * (end - start)
            duration = video_duration(self.dataset.videos[row]) or float("inf")
            window = (max(0.0, start - reach), min(duration, end + reach))
            windows.append(window)
            videos.append(
                read_frames(self.dataset, self.expert, row, self.cfg.data.max_frames, window)
            )
        tokens = self.cfg.text.max_tokens
        text = encode_texts([query], self.text_model, True, tokens, progress=False)
        batch = MomentBatch(
            **frame_inputs(videos), **text_inputs(text, np.zeros(len(hits), np.int64))
        )
        with torch.inference_mode():
            scores = self.model(batch)
        out = []
        for b, (score, meta) in enumerate(hits):
            span = best_spans(scores.start[b], scores.end[b], videos[b].edges, top=1)[0]
            lo, hi = windows[b]
            span = np.clip(span, lo, hi)
            refined = [round(float(span[0]), 3), round(float(span[1]), 3)]
            out.append((score, {**meta, "segment": refined, "coarse_segment": meta["segment"]}))
        return out
