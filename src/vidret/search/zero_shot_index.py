"""`vidret index --zero-shot`: an index of a folder's videos with no trained model.

Each video's vector is its evidence for the 1,000 ImageNet concepts, computed from the
frame features `vidret extract` stored (`vidret.search.concepts`); the concept names,
encoded once by Sentence-BERT, are kept in the index (`concepts.npz`), so a search only
encodes its query. index.json's `model` says the index is zero-shot, with its pooling
and number of query concepts; `search`, `serve` and the page use it as any other index.

Fusion (`vidret index --run RUN --fuse W`): where a model was trained on the same
frame features, a video's score is (1 - W) x the model's similarity + W x the concept
score, one inner product of concatenated vectors: the video side [(1 - W) v, W e], the
query side [q, c] (v, q: the model's unit vectors; e: concept evidence; c: the query's
concept weights).
"""

from __future__ import annotations

import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidret.data.dataset import VideoDataset
from vidret.data.validate import require_finite
from vidret.errors import VidretError
from vidret.io import require_folder_or_nothing
from vidret.locking import folder_lock, remove_stale_temporaries
from vidret.models.types import Embeddings
from vidret.search.concept_settings import DEFAULT_POOLING, DEFAULT_TOP, check_pooling
from vidret.search.concepts import (
    CONCEPT_FEATURE,
    CONCEPTS_FILE,
    NUM_CONCEPTS,
    ConceptQueryEncoder,
    video_evidence,
)
from vidret.search.faiss_index import check_index_kind
from vidret.search.index import VideoIndex, indexed_videos, write_index

ZERO_SHOT_RUN = "zero-shot (ImageNet concepts)"  # what /health shows as the model


def build_zero_shot_index(
    data_dir: Path,
    out: Path,
    kind: str = "flat",
    pooling: str = DEFAULT_POOLING,
    top: int = DEFAULT_TOP,
    overwrite: bool = False,
    crops: bool = False,
) -> VideoIndex:
    """`crops`: each frame's concepts are the best over the whole frame and its regions
    (the dataset must hold region features: `vidret extract --regions N`)."""
    check_index_kind(kind)
    check_pooling(pooling)
    if not 1 <= top <= NUM_CONCEPTS:
        raise VidretError(f"--top {top}: between 1 and {NUM_CONCEPTS} concepts")
    require_folder_or_nothing(out)
    if out.exists() and not overwrite:
        raise VidretError(f"--out {out} already exists; pass --overwrite to replace it")
    dataset = VideoDataset.open(data_dir)
    expert = dataset.experts.get(CONCEPT_FEATURE)
    if expert is None:
        raise VidretError(
            f"{data_dir}: has no '{CONCEPT_FEATURE}' frame features (it has "
            f"{sorted(dataset.experts)}); zero-shot search reads the EfficientNet-Lite0 "
            "features `vidret extract` writes: extract your videos with it"
        )
    if crops and expert.regions is None:
        raise VidretError(
            f"--crops: {data_dir} has no region features for '{CONCEPT_FEATURE}'; extract "
            "the videos with `vidret extract --regions 9` (a 3x3 grid of each frame)"
        )
    require_finite(dataset, [CONCEPT_FEATURE])
    with folder_lock(out, what="builds an index in"):
        remove_stale_temporaries(out)
        evidence = video_evidence(
            expert.features,
            expert.lengths,
            pooling,
            regions=expert.regions if crops else None,
            region_mask=expert.region_mask if crops else None,
        )
        encoder = ConceptQueryEncoder(top=top)
        videos, files = indexed_videos(data_dir, dataset)
        floor, calibration = calibration_floor(encoder, evidence)
        model: dict[str, Any] = {
            "run": ZERO_SHOT_RUN,
            "zero_shot": {
                "concepts": "imagenet-1k",
                "pooling": pooling,
                "crops": f"frame + {expert.num_regions} regions" if crops else "frame",
                "top": top,
                "floor": calibration,
            },
            "experts": [CONCEPT_FEATURE],
            "text_model": str(encoder.text_model),
        }
        vectors = torch.from_numpy(evidence)[:, None, :]
        return write_index(
            out,
            Embeddings(vectors, torch.ones(len(evidence), 1)),
            videos,
            model,
            kind,
            dataset=str(data_dir.resolve()),
            files=files,
            overwrite=overwrite,
            arrays={CONCEPTS_FILE: {"names": encoder.name_vectors()}},
            floor=floor,
        )


CALIBRATION_QUERIES = "calibration_queries.txt"
FLOOR_QUANTILE = 95.0  # fixed before measuring (benchmarks/bench_zero_shot.py reports it)


def calibration_queries() -> list[str]:
    """Everyday video descriptions on many topics, shipped with vidret."""
    text = resources.files("vidret.search").joinpath("data", CALIBRATION_QUERIES).read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def calibration_floor(
    encoder: ConceptQueryEncoder, evidence: np.ndarray
) -> tuple[float | None, dict[str, Any] | None]:
    """The weak-match floor of a zero-shot index: a trained index's floor comes from its
    own training captions, which a zero-shot index has none of. Here it is the 95th
    percentile of the best scores that shipped sentences about unrelated, everyday things
    reach in this collection: a query whose best video scores below it matches no better
    than a sentence about something else would, and search says "no good match"."""
    if len(evidence) == 0:
        return None, None
    queries = calibration_queries()
    weights = encoder.embed_many(queries).vectors[:, 0].numpy()
    best = (weights @ evidence.T).max(axis=1)
    floor = float(np.percentile(best, FLOOR_QUANTILE))
    return floor, {"queries": len(queries), "percentile": FLOOR_QUANTILE}


class FusedQueryEncoder:
    """A trained model's query embedding beside the query's concept weights."""

    def __init__(self, model: Any, concepts: ConceptQueryEncoder):
        self.model, self.concepts = model, concepts
        self.experts = model.experts

    def embed(self, query: str) -> Embeddings:
        return self.embed_many([query])

    def embed_many(self, queries: list[str]) -> Embeddings:
        q = self.model.embed_many(queries)
        c = self.concepts.embed_many(queries)
        vectors = torch.cat([q.vectors[:, 0].float(), c.vectors[:, 0]], dim=1)
        return Embeddings(vectors[:, None, :], torch.ones(len(queries), 1))


def zero_shot_encoder(index: VideoIndex) -> ConceptQueryEncoder:
    """The query side of a zero-shot (or fused) index, with its stored concept names."""
    model = index.info["model"]
    settings = model.get("zero_shot") or model["fuse"]
    try:
        with np.load(index.folder / CONCEPTS_FILE, allow_pickle=False) as z:
            names = z["names"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise VidretError(
            f"{index.folder / CONCEPTS_FILE}: missing or damaged ({e}); rebuild the index "
            "with `vidret index --zero-shot ... --overwrite`"
        ) from None
    text_model = Path(settings.get("text_model") or model["text_model"])
    return ConceptQueryEncoder(text_model, top=settings["top"], name_vectors=names)
