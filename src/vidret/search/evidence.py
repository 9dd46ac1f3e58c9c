"""Why a zero-shot hit matched: the frame and the concept that carry its score.

A zero-shot score is sum over concepts of the query's weight x the video's evidence, the
evidence pooled over frames (vidret.search.concepts). For the hits a search returns, the
frames are read again from the index's dataset (a few videos: cheap, and nothing more is
stored in the index): the frame whose concepts match the query best, sum_c w_c p_t(c),
and in it the concept that contributes most, with the frame's time when the dataset
records frame times. Without the dataset at hand a hit has no evidence, nothing else
changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidret.data.dataset import VideoDataset
from vidret.errors import VidretError
from vidret.search.concepts import CONCEPT_FEATURE, concept_label, crop_concepts


class ConceptEvidence:
    def __init__(self, dataset_dir: Path, crops: bool = False):
        dataset = VideoDataset.open(dataset_dir)
        self.expert = dataset.experts[CONCEPT_FEATURE]
        self.rows = dataset.video_index()
        self.crops = crops and self.expert.regions is not None  # as the index scored frames

    @classmethod
    def try_open(cls, dataset_dir: str | None, crops: bool = False) -> ConceptEvidence | None:
        if not dataset_dir:
            return None
        try:
            return cls(Path(dataset_dir), crops)
        except (VidretError, KeyError, OSError):
            return None  # moved or changed since the index was built: hits go unexplained

    def explain(self, weights: np.ndarray, video_id: str) -> dict[str, Any] | None:
        """The hit's best frame for these concept weights `[1000]`, and its top concept."""
        row = self.rows.get(video_id)
        if row is None:
            return None
        length = int(self.expert.lengths[row])
        if length == 0:
            return None
        regions = mask = None
        if self.crops:
            assert self.expert.regions is not None
            regions = np.asarray(self.expert.regions[row, :length])
            if self.expert.region_mask is not None:
                mask = np.asarray(self.expert.region_mask[row, :length])
        features = np.asarray(self.expert.features[row, :length])
        probabilities = crop_concepts(features, regions, mask)
        contributions = probabilities * weights[None, :]  # [frames, 1000]
        frame = int(contributions.sum(axis=1).argmax())
        concept = int(contributions[frame].argmax())
        time = None
        if self.expert.times is not None and np.isfinite(self.expert.times[row, frame]):
            time = round(float(self.expert.times[row, frame]), 2)
        return {
            "concept": concept_label(concept),
            "frame": frame,
            "time": time,
            "probability": float(probabilities[frame, concept]),
        }
