"""A video index folder: a trained model's video vectors in FAISS, the videos' metadata,
and which model made them (so a query is embedded by the same caption encoder).

```
INDEX_DIR/
  index.json     format, model reference (run folder, checkpoint hash), kind, parameters,
                 and the two folders the server may read files from (`files`)
  index.faiss    FAISS index over the flattened, weighted per-expert video vectors
  videos.jsonl   one line per indexed video (row i = FAISS id i): its dataset metadata
  experts.npy    only for multi-expert models: [N, E, d] vectors and [N, E] presence,
                 for the exact re-scoring of the best candidates (see `query_vector`)
  query_bank.npz per-video normalizers against training captions, for test-time
                 normalization at search (`vidret.search.query_bank`); index.json's
                 `query_bank` has its settings and `score_floor` the weak-match floor
```

A query's score for a video is the model's similarity. For one expert that is the inner
product of unit vectors. For several, the model takes sum_e w_e cos_e / sum_e w_e over
the experts the video has; FAISS ranks by the numerator (exact when the video has every
expert), and the best candidates are re-scored with the full formula.

This module is the folder's format (writing and loading it); `vidret.search.build_index`
runs a model over a dataset to make one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidret.data.file_refs import video_folder
from vidret.errors import VidretError
from vidret.io import atomic_directory, write_json_atomic, write_jsonl_atomic
from vidret.search.faiss_index import build_faiss_index, set_search_params
from vidret.search.query_bank import BANK_FILE, SearchBank
from vidret.search.vectors import ExpertVectors
from vidret.version import code_version

if TYPE_CHECKING:  # the search path runs without PyTorch: types only
    from vidret.data.dataset import VideoDataset
    from vidret.models.types import Embeddings

INDEX_INFO = "index.json"
FAISS_FILE = "index.faiss"
VIDEOS_FILE = "videos.jsonl"
EXPERTS_FILE = "experts.npz"
# 2: index.json names the folders files are served from (`files`); 1 did not
FORMAT = 2


def checkpoint_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass
class VideoIndex:
    folder: Path
    info: dict[str, Any]
    index: Any  # faiss.Index
    videos: list[dict[str, Any]]
    experts: ExpertVectors | None  # multi-expert models only
    bank: SearchBank | None = None  # built with the run's data at hand

    @classmethod
    def load(cls, folder: Path) -> VideoIndex:
        import faiss

        path = folder / INDEX_INFO
        if not path.is_file():
            raise VidretError(
                f"{folder}: not an index folder (no {INDEX_INFO}); build one with "
                "`vidret index --run RUN --data DATASET --out DIR`"
            )
        rebuild = "rebuild the index with `vidret index ... --overwrite`"
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise VidretError(f"{path}: damaged ({e}); {rebuild}") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            found = info.get("format") if isinstance(info, dict) else None
            raise VidretError(
                f"{path}: index format {found}, this vidret reads {FORMAT}; {rebuild}"
            )
        if not (folder / FAISS_FILE).is_file():
            raise VidretError(f"{folder / FAISS_FILE}: missing; {rebuild}")
        try:
            index = faiss.read_index(str(folder / FAISS_FILE))
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else "unreadable"
            raise VidretError(f"{folder / FAISS_FILE}: damaged ({reason}); {rebuild}") from None
        set_search_params(index, info["kind"], info["params"])
        try:
            lines = (folder / VIDEOS_FILE).read_text(encoding="utf-8").splitlines()
            videos = [json.loads(line) for line in lines if line.strip()]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise VidretError(f"{folder / VIDEOS_FILE}: unreadable ({e}); {rebuild}") from None
        if len(videos) != index.ntotal:
            raise VidretError(
                f"{folder}: {VIDEOS_FILE} has {len(videos)} videos, the FAISS index "
                f"{index.ntotal}; rebuild it with `vidret index`"
            )
        experts = None
        if (folder / EXPERTS_FILE).exists():
            try:
                with np.load(folder / EXPERTS_FILE, allow_pickle=False) as z:
                    vectors, weights = z["vectors"], z["weights"]
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                raise VidretError(f"{folder / EXPERTS_FILE}: damaged ({e}); {rebuild}") from None
            experts = ExpertVectors(vectors, weights)
        bank = None
        if info.get("query_bank"):
            try:
                bank = SearchBank.load(folder, info["query_bank"])
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                raise VidretError(f"{folder / BANK_FILE}: damaged ({e}); {rebuild}") from None
            if len(bank.activated) != len(videos):
                raise VidretError(f"{folder / BANK_FILE}: not this index's videos; {rebuild}")
        return cls(folder, info, index, videos, experts, bank)

    @property
    def size(self) -> int:
        return len(self.videos)


def indexed_videos(
    data_dir: Path, dataset: VideoDataset
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """What an index keeps of a dataset's videos (`index_metadata`, with each video's
    first caption), and the two folders the server may read files from."""
    root = data_dir.resolve()
    first_caption: dict[int, str] = {}
    for text, row in zip(dataset.captions, dataset.caption_video.tolist(), strict=True):
        first_caption.setdefault(row, text)
    videos = [index_metadata(v, first_caption.get(i)) for i, v in enumerate(dataset.videos)]
    return videos, {"videos": str(video_folder(root, dataset.metadata)), "thumbnails": str(root)}


def model_reference(run_dir: Path, experts: list[str], text_model: str) -> dict[str, Any]:
    """What a search must load to embed queries as the videos were embedded."""
    from vidret.runs.folder import BEST

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
    files: dict[str, str] | None = None,
    overwrite: bool = False,
    bank: SearchBank | None = None,
    arrays: dict[str, dict[str, np.ndarray]] | None = None,
    floor: float | None = None,
    copies: dict[str, Path] | None = None,
) -> VideoIndex:
    """Write an index folder (atomically) for these video embeddings and metadata.

    `files` names the folders the server may read from: `videos` (video files) and
    `thumbnails` (the dataset folder); without it no file of the index is served.
    `arrays`: more files of the index, `name.npz` -> its arrays (a zero-shot index's
    concept names). `copies`: more files, name -> the file copied there (the query tower,
    `vidret.search.export_tower`). `floor`: the weak-match floor when there is no query
    bank to give it (a zero-shot index)."""
    import faiss

    per_expert = ExpertVectors.of(embeddings)
    index, used = build_faiss_index(per_expert.flatten(), kind, params)
    info = {
        "format": FORMAT,
        "kind": kind,
        "params": used,
        "videos": len(videos),
        "dim": int(index.d),
        "model": model,
        "dataset": dataset,
        "files": files or {},
        "query_bank": None if bank is None else bank.settings,
        "score_floor": floor if bank is None else bank.floor,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "code_version": code_version(),
    }
    multi_expert = per_expert.vectors.shape[1] > 1
    with atomic_directory(out, overwrite=overwrite) as tmp:
        faiss.write_index(index, str(tmp / FAISS_FILE))
        write_jsonl_atomic(tmp / VIDEOS_FILE, videos)
        if multi_expert:
            np.savez(tmp / EXPERTS_FILE, vectors=per_expert.vectors, weights=per_expert.weights)
        if bank is not None:
            bank.save(tmp)
        for name, content in (arrays or {}).items():
            np.savez(tmp / name, **content)
        for name, source in (copies or {}).items():
            shutil.copyfile(source, tmp / name)
        write_json_atomic(tmp / INDEX_INFO, info)
    return VideoIndex(out, info, index, videos, per_expert if multi_expert else None, bank)


def index_metadata(video: dict[str, Any], caption: str | None) -> dict[str, Any]:
    """The dataset's metadata an index keeps, with the video's first caption (what the
    page shows on its card). File references stay as the dataset has them (`thumbnail`
    relative to the dataset folder): index.json records that folder."""
    kept = {k: v for k, v in video.items() if k not in ("frame_times", "mtime", "bytes")}
    if caption is not None and "caption" not in kept:
        kept["caption"] = caption
    return kept
