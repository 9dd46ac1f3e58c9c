"""A video index folder: a trained model's video vectors in FAISS, the videos' metadata,
and which model made them (so a query is embedded by the same caption encoder).

```
INDEX_DIR/
  index.json     format, model reference (run folder, checkpoint hash), kind, parameters
  index.faiss    FAISS index over the flattened, weighted per-expert video vectors
  videos.jsonl   one line per indexed video (row i = FAISS id i), with absolute paths
  experts.npy    only for multi-expert models: [N, E, d] vectors and [N, E] presence,
                 for the exact re-scoring of the best candidates (see `query_vector`)
```

A query's score for a video is the model's similarity. For one expert that is the inner
product of unit vectors. For several, the model takes sum_e w_e cos_e / sum_e w_e over
the experts the video has; FAISS ranks by the numerator (exact when the video has every
expert), and the best candidates are re-scored with the full formula.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vidret.data.dataset import VideoDataset
from vidret.errors import VidretError
from vidret.io import atomic_directory, write_json_atomic, write_jsonl_atomic
from vidret.models.types import Embeddings
from vidret.search.faiss_index import build_faiss_index, set_search_params
from vidret.train.data import dataset_video_batch
from vidret.train.run import BEST, load_trained_model
from vidret.version import code_version

INDEX_INFO = "index.json"
FAISS_FILE = "index.faiss"
VIDEOS_FILE = "videos.jsonl"
EXPERTS_FILE = "experts.npz"
FORMAT = 1


def checkpoint_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def flatten(embeddings: Embeddings) -> np.ndarray:
    """`[B, E, d]` unit vectors times their weights -> `[B, E * d]` FAISS rows / queries."""
    v = embeddings.vectors * embeddings.weights[..., None]
    return v.reshape(v.shape[0], -1).float().cpu().numpy()


@dataclass
class VideoIndex:
    folder: Path
    info: dict[str, Any]
    index: Any  # faiss.Index
    videos: list[dict[str, Any]]
    experts: Embeddings | None  # multi-expert models only

    @classmethod
    def load(cls, folder: Path) -> VideoIndex:
        import faiss

        path = folder / INDEX_INFO
        if not path.exists():
            raise VidretError(
                f"{folder}: not an index folder (no {INDEX_INFO}); build one with "
                "`vidret index --run RUN --data DATASET --out DIR`"
            )
        info = json.loads(path.read_text())
        if info.get("format") != FORMAT:
            raise VidretError(f"{path}: index format {info.get('format')}, expected {FORMAT}")
        index = faiss.read_index(str(folder / FAISS_FILE))
        set_search_params(index, info["kind"], info["params"])
        lines = (folder / VIDEOS_FILE).read_text(encoding="utf-8").splitlines()
        videos = [json.loads(line) for line in lines if line.strip()]
        if len(videos) != index.ntotal:
            raise VidretError(
                f"{folder}: {VIDEOS_FILE} has {len(videos)} videos, the FAISS index "
                f"{index.ntotal}; rebuild it with `vidret index`"
            )
        experts = None
        if (folder / EXPERTS_FILE).exists():
            with np.load(folder / EXPERTS_FILE) as z:
                experts = Embeddings(torch.from_numpy(z["vectors"]), torch.from_numpy(z["weights"]))
        return cls(folder, info, index, videos, experts)

    @property
    def size(self) -> int:
        return len(self.videos)


def build_index(
    run_dir: Path,
    data_dir: Path,
    out: Path,
    kind: str = "flat",
    params: dict[str, int] | None = None,
    batch: int = 256,
    overwrite: bool = False,
    progress: bool = True,
) -> VideoIndex:
    """Embed every video of `data_dir` with the run's best checkpoint and write `out`."""
    _, model, model_info = load_trained_model(run_dir)
    dataset = VideoDataset.open(data_dir)
    signature = model_info["signature"]
    experts = list(signature["experts"])
    for name, dim in signature["experts"].items():
        if name not in dataset.experts:
            raise VidretError(
                f"{data_dir}: has no expert '{name}' (it has {sorted(dataset.experts)}); "
                f"the model in {run_dir} was trained on {experts}: extract the same features"
            )
        if dataset.experts[name].dim != dim:
            raise VidretError(
                f"{data_dir}: expert '{name}' is {dataset.experts[name].dim}-d, the model "
                f"expects {dim}-d features"
            )

    parts: list[Embeddings] = []
    rows = np.arange(dataset.num_videos)
    with torch.inference_mode():
        for start in tqdm(
            range(0, len(rows), batch), desc="embedding videos", unit="batch", disable=not progress
        ):
            video = dataset_video_batch(dataset, experts, rows[start : start + batch])
            parts.append(model.embed_video(video))
    embeddings = Embeddings(
        torch.cat([p.vectors for p in parts]), torch.cat([p.weights for p in parts])
    )
    videos = [_public_metadata(v, data_dir.resolve()) for v in dataset.videos]
    return write_index(
        out,
        embeddings,
        videos,
        model_reference(run_dir, experts, model_info["text_model"]),
        kind,
        params,
        dataset=str(data_dir.resolve()),
        overwrite=overwrite,
    )


def model_reference(run_dir: Path, experts: list[str], text_model: str) -> dict[str, Any]:
    """What a search must load to embed queries as the videos were embedded."""
    checkpoint = (run_dir / BEST).resolve()
    return {
        "run": str(run_dir.resolve()),
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": checkpoint_digest(checkpoint),
        "experts": experts,
        "text_model": text_model,
    }


def write_index(
    out: Path,
    embeddings: Embeddings,
    videos: list[dict[str, Any]],
    model: dict[str, Any],
    kind: str = "flat",
    params: dict[str, int] | None = None,
    dataset: str | None = None,
    overwrite: bool = False,
) -> VideoIndex:
    """Write an index folder (atomically) for these video embeddings and metadata."""
    import faiss

    index, used = build_faiss_index(flatten(embeddings), kind, params)
    info = {
        "format": FORMAT,
        "kind": kind,
        "params": used,
        "videos": len(videos),
        "dim": int(index.d),
        "model": model,
        "dataset": dataset,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "code_version": code_version(),
    }
    multi_expert = embeddings.vectors.shape[1] > 1
    with atomic_directory(out, overwrite=overwrite) as tmp:
        faiss.write_index(index, str(tmp / FAISS_FILE))
        write_jsonl_atomic(tmp / VIDEOS_FILE, videos)
        if multi_expert:
            np.savez(
                tmp / EXPERTS_FILE,
                vectors=embeddings.vectors.numpy(),
                weights=embeddings.weights.numpy(),
            )
        write_json_atomic(tmp / INDEX_INFO, info)
    return VideoIndex(out, info, index, videos, embeddings if multi_expert else None)


def _public_metadata(video: dict[str, Any], root: Path) -> dict[str, Any]:
    """The dataset's metadata with file references made absolute (the index may move)."""
    meta = {k: v for k, v in video.items() if k not in ("frame_times", "mtime", "bytes")}
    if isinstance(meta.get("thumbnail"), str):
        meta["thumbnail"] = str(root / meta["thumbnail"])
    return meta
