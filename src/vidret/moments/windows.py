"""The sliding-window baseline of moment retrieval: a trained clip-retrieval model scores
windows of a long video against the sentence, the best windows are the answer.

Windows (`vidret.data.timeline`): at every scale of `SCALES` seconds (5 to 30), starting
every quarter of the scale, cut at the video's end; a window holds the frames whose
time falls inside it (each expert by its own frame times). The model embeds each window
as it embeds a video, and the query as a caption; windows are ranked by the model's
similarity and thinned by non-maximum suppression (a window overlapping a better one by
IoU > 0.5 is dropped), as moment-localization baselines do (TALL's sliding windows).
The scales were fixed before any measurement; none is tuned on test moments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidret.batches.windows import window_batch
from vidret.data.dataset import VideoDataset
from vidret.data.moments import video_duration
from vidret.data.splits import load_named_split
from vidret.data.timeline import window_spans
from vidret.errors import VidretError
from vidret.eval.temporal import MomentPredictions, non_maximum_suppression
from vidret.models.similarity import similarity


def localize_with_windows(run: Path, data: Path, split: str = "test") -> MomentPredictions:
    """Each moment caption of `data`'s split, localized in its own video by the run."""
    from vidret.runs.query_encoder import QueryEncoder

    encoder = QueryEncoder(run)  # the run's model: its video side scores the windows
    model, experts = encoder.model, encoder.experts
    torch.set_num_threads(encoder.cfg.train.threads)
    dataset = VideoDataset.open(data)
    moments = dataset.moments
    if moments is None:
        raise VidretError(f"{data}: no moments.jsonl (build one with `vidret data moments`)")
    for name in experts:
        if name not in dataset.experts:
            raise VidretError(f"{data}: the model reads expert '{name}', which it lacks")
    index = dataset.video_index()
    rows = sorted({index[v] for v in load_named_split(data, split, set(index))})
    spans_out, truth_out = [], []
    for row in rows:
        chosen = np.flatnonzero(moments.video == row)
        if not len(chosen):
            continue
        duration = video_duration(dataset.videos[row])
        if duration is None:
            raise VidretError(f"{data}: video {dataset.video_ids[row]} has no duration")
        windows = window_spans(duration)
        with torch.inference_mode():
            regions = list(model.backbone.signature.regions)
            videos = model.embed_video(window_batch(dataset, experts, row, windows, regions))
            queries = encoder.embed_many([moments.captions[i] for i in chosen])
            scores = similarity(queries, videos).numpy()  # [moments of this video, windows]
        for i, s in zip(chosen, scores, strict=True):
            spans_out.append(non_maximum_suppression(windows, s))
            truth_out.append((moments.start[i], moments.end[i]))
    if not spans_out:
        raise VidretError(f"{data}: split '{split}' has no moment captions")
    return MomentPredictions(np.stack(spans_out), np.asarray(truth_out), len(rows))
