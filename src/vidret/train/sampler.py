"""Batches of distinct videos, one random caption each, the same on every process.

A batch must never hold two captions of one video: the other would count as a negative.
Each epoch's order and caption choice come from `(seed, epoch)` alone, so a resumed run
sees exactly the batches an uninterrupted one would. Under DDP every process draws the
same global batch and takes its own slice, so the global batch still holds distinct videos.
"""

from __future__ import annotations

import numpy as np

from vidret.data.dataset import VideoDataset


class EpochBatches:
    def __init__(
        self,
        dataset: VideoDataset,
        video_rows: np.ndarray,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} must divide among {world_size} processes")
        if len(video_rows) < 2:
            raise ValueError("training needs at least 2 videos")
        self.video_rows = np.asarray(video_rows)
        self.batch_size = min(batch_size, len(video_rows) - len(video_rows) % world_size)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        # Captions of each video, as slices of one sorted array.
        order = np.argsort(dataset.caption_video, kind="stable")
        self._caption_order = order
        counts = np.bincount(dataset.caption_video, minlength=dataset.num_videos)
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._counts = counts

    def __len__(self) -> int:
        return -(-len(self.video_rows) // self.batch_size)

    def epoch(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """This process's `(video_rows, caption_rows)` for each step of `epoch`."""
        rng = np.random.default_rng([self.seed, epoch])
        videos = self.video_rows[rng.permutation(len(self.video_rows))]
        pick = rng.random(len(videos))  # which caption of each video
        captions = self._caption_order[
            self._starts[videos] + (pick * self._counts[videos]).astype(np.int64)
        ]
        batches = []
        for start in range(0, len(videos), self.batch_size):
            v, c = (
                videos[start : start + self.batch_size],
                captions[start : start + self.batch_size],
            )
            per_rank = len(v) // self.world_size
            if per_rank < 2:
                continue  # a last batch too small to give each process a negative
            lo, hi = self.rank * per_rank, (self.rank + 1) * per_rank
            batches.append((v[lo:hi], c[lo:hi]))
        return batches
