"""`vidret data moments SRC DST --clips K --seed S`: a moment benchmark from a clip dataset.

Each long video of DST is K clips of SRC placed one after another: their features
concatenated (valid frames only), their frame times shifted by the clips before them;
each caption of a clip becomes a moment caption (`moments.jsonl`) with that clip's span
in the long video. The long videos also carry all their clips' captions in
`captions.jsonl`, so whole-video retrieval runs on DST too.

Splits follow SRC's videos: SRC is split as training splits it by default (seeded
random, `data.sizes` 0.75/0.125/0.125, `data.seed` = `--split-seed`), and every long
video is made of clips of one part only, written as DST's `splits/{train,val,test}.txt`:
no clip of a test video ever lands in a training long video. Within a part the clips
are shuffled by `--seed` and cut into groups of K (the last group may be shorter; a
lone clip left over is dropped). Everything depends only on the seeds and the ids, so
the same command gives the same folder on every machine.

Frame times: as `vidret.data.timeline.frame_times` gives them (SRC's `<expert>.times.npy`,
or its `frame_times`, else frames evenly spaced over the clip's duration: `duration`, or
`end - start` as MSR-VTT's clips have). A clip with no known duration is an error.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from vidret.config import DataConfig
from vidret.data.dataset import VideoDataset
from vidret.data.moments import video_duration
from vidret.data.splits import SPLIT_PARTS, resolve_split
from vidret.data.timeline import frame_times
from vidret.data.writer import dataset_folder
from vidret.errors import VidretError


def build_moment_dataset(
    src: Path, dst: Path, clips: int = 4, seed: int = 0, split_seed: int = 0
) -> dict[str, int]:
    """Write DST (atomically); returns long videos per part and the moment count."""
    if clips < 2:
        raise VidretError(f"--clips {clips}: a long video needs at least 2 clips")
    if dst.exists():
        raise VidretError(f"{dst} already exists; choose a new folder")
    source = VideoDataset.open(src)
    durations = []
    for v, line in zip(source.videos, source.video_lines, strict=True):
        d = video_duration(v)
        if d is None:
            raise VidretError(
                f"{src}: video {v['video_id']} has no duration ('duration', or 'start' and "
                "'end', in videos.jsonl): its frames cannot be placed in time"
            )
        if not d > 0:
            raise VidretError(
                f"{src}: video {v['video_id']} (videos.jsonl line {line}) lasts {d} "
                "seconds: a clip must last more than 0 to be a moment"
            )
        durations.append(d)
    parts = resolve_split(src, source.video_ids, "random", DataConfig().sizes, split_seed)
    row = source.video_index()
    groups: dict[str, list[list[int]]] = {}
    for part in SPLIT_PARTS:
        ids = sorted(parts.get(part, []), key=lambda vid: _order_key(seed, vid))
        rows = [row[vid] for vid in ids]
        chunks = [rows[i : i + clips] for i in range(0, len(rows), clips)]
        groups[part] = [c for c in chunks if len(c) >= 2]
    empty = [part for part in SPLIT_PARTS if not groups[part]]
    if empty:
        sizes = ", ".join(f"{len(parts.get(p, []))} {p}" for p in SPLIT_PARTS)
        raise VidretError(
            f"{src}: its {source.num_videos} videos split into {sizes} clips, too few for a "
            f"long video (2 clips at least) in {', '.join(empty)}; use a source of at least "
            "16 videos (the default split's val and test parts are an eighth each)"
        )
    long_videos = [(part, g) for part in SPLIT_PARTS for g in groups[part]]

    experts = {}
    for name, expert in source.experts.items():
        lengths = expert.lengths
        frames = max(int(sum(lengths[r] for r in g)) for _, g in long_videos)
        if frames == 0:
            raise VidretError(f"{src}: no video has any frame of expert '{name}' (all lengths 0)")
        features = np.zeros((len(long_videos), frames, expert.dim), expert.features.dtype)
        times = np.full((len(long_videos), frames), np.nan)
        new_lengths = np.zeros(len(long_videos), np.int64)
        for i, (_, group) in enumerate(long_videos):
            at, offset = 0, 0.0
            for r in group:
                n = int(lengths[r])
                features[i, at : at + n] = expert.features[r, :n]
                times[i, at : at + n] = offset + frame_times(source, name, r)
                at += n
                offset += durations[r]
            new_lengths[i] = at
        experts[name] = (features, new_lengths, times)

    videos, captions, moments = [], [], []
    by_video: dict[int, list[str]] = {}
    for text, r in zip(source.captions, source.caption_video.tolist(), strict=True):
        by_video.setdefault(r, []).append(text)
    split_ids: dict[str, list[str]] = {p: [] for p in SPLIT_PARTS}
    for i, (part, group) in enumerate(long_videos):
        vid = f"long{i:05d}"
        split_ids[part].append(vid)
        offset, spans = 0.0, []
        for r in group:
            span = {"video_id": source.video_ids[r], "start": round(offset, 3),
                    "end": round(offset + durations[r], 3)}  # fmt: skip
            spans.append(span)
            for text in by_video.get(r, []):
                captions.append({"video_id": vid, "caption": text})
                moments.append({"video_id": vid, "caption": text, "start": span["start"],
                                "end": span["end"], "source_video": span["video_id"]})  # fmt: skip
            offset += durations[r]
        videos.append({"video_id": vid, "duration": round(offset, 3), "clips": spans})

    with dataset_folder(dst) as folder:
        folder.videos(videos)
        folder.captions(captions)
        folder.moments(moments)
        for name, (features, lengths, times) in experts.items():
            folder.expert(name, features, lengths=lengths, times=times)
        for part, ids in split_ids.items():
            folder.split(part, ids)
        folder.metadata(
            {
                "name": f"{Path(src).name} moments ({clips} clips a video)",
                "generated": False,
                "description": "Long videos built by `vidret data moments` from real clips: "
                "features concatenated, each clip's captions as moment captions.",
                "moments": {
                    "source": str(Path(src).resolve()),
                    "clips": clips,
                    "seed": seed,
                    "split_seed": split_seed,
                },
                "experts": {n: {"dim": int(f.shape[2])} for n, (f, _, _) in experts.items()},
            },
        )
    return {**{p: len(split_ids[p]) for p in SPLIT_PARTS}, "moments": len(moments)}


def _order_key(seed: int, video_id: str) -> bytes:
    return hashlib.sha256(f"moments\x00{seed}\x00{video_id}".encode()).digest()


def describe(counts: dict[str, Any]) -> str:
    parts = ", ".join(f"{counts[p]} {p}" for p in SPLIT_PARTS)
    return f"{parts} long videos; {counts['moments']} moment captions"
