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
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidret.data.dataset import VideoDataset
from vidret.data.file_refs import video_folder
from vidret.data.validate import require_finite
from vidret.errors import VidretError
from vidret.eval.normalization import Normalization
from vidret.io import atomic_directory, write_json_atomic, write_jsonl_atomic
from vidret.locking import folder_lock, remove_stale_temporaries
from vidret.models.types import Embeddings
from vidret.progress import note, progress_bar
from vidret.search.faiss_index import build_faiss_index, check_index_kind, set_search_params
from vidret.search.query_bank import (
    BANK_FILE,
    DEFAULT_BANK_SIZE,
    SearchBank,
    build_bank,
    text_embeddings,
)
from vidret.train.data import dataset_video_batch
from vidret.train.run import BEST, load_trained_model
from vidret.version import code_version

INDEX_INFO = "index.json"
FAISS_FILE = "index.faiss"
VIDEOS_FILE = "videos.jsonl"
EXPERTS_FILE = "experts.npz"
# 2: index.json names the folders files are served from (`files`); 1 did not
FORMAT = 2
MIN_SEGMENT_SECONDS = 0.5  # shorter windows hold no frame at the usual 1-2 frames a second


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
            experts = Embeddings(torch.from_numpy(vectors), torch.from_numpy(weights))
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


def build_index(
    run_dir: Path,
    data_dir: Path,
    out: Path,
    kind: str = "flat",
    params: dict[str, int] | None = None,
    batch: int = 256,
    overwrite: bool = False,
    progress: bool = True,
    bank_size: int = DEFAULT_BANK_SIZE,
    fuse: float = 0.0,
    segment_seconds: float | None = None,
) -> VideoIndex:
    """Embed every video of `data_dir` with the run's best checkpoint and write `out`;
    with the run's own data at hand, also its query bank (`bank_size` training captions,
    0 for none) and score floor. `fuse` W > 0: scores are (1 - W) x the model's plus W x
    the zero-shot concept score (`vidret.search.zero_shot_index`; no query bank).
    `segment_seconds`: index windows of long videos, not whole videos
    (`vidret.search.segments`; no query bank)."""
    check_index_kind(kind)  # every argument is checked before the videos are embedded
    if segment_seconds is not None and not MIN_SEGMENT_SECONDS <= segment_seconds <= 3600:
        raise VidretError(
            f"--segment-seconds {segment_seconds:g}: give {MIN_SEGMENT_SECONDS:g} to 3600 "
            "seconds (a window must hold frames)"
        )
    if not 0 <= fuse < 1:
        raise VidretError(
            f"--fuse {fuse:g}: a weight from 0 (off) to below 1; 1 would ignore the model "
            "(for concepts alone, build with --zero-shot)"
        )
    if segment_seconds and fuse:
        raise VidretError("--fuse and --segment-seconds cannot be combined yet")
    if out.exists() and not out.is_dir():
        raise VidretError(f"--out {out}: a file, not a folder")
    if out.exists() and not overwrite:
        raise VidretError(f"--out {out} already exists; pass --overwrite to replace it")
    with folder_lock(out, what="builds an index in"):
        remove_stale_temporaries(out)  # of killed builds: no live writer owns them now
        return _build_index(
            run_dir, data_dir, out, kind, params, batch, overwrite, progress, bank_size, fuse,
            segment_seconds,
        )  # fmt: skip


def _build_index(
    run_dir: Path,
    data_dir: Path,
    out: Path,
    kind: str,
    params: dict[str, int] | None,
    batch: int,
    overwrite: bool,
    progress: bool,
    bank_size: int,
    fuse: float,
    segment_seconds: float | None,
) -> VideoIndex:
    cfg, model, model_info = load_trained_model(run_dir)
    torch.set_num_threads(cfg.train.threads)
    dataset = VideoDataset.open(data_dir)  # refuses file references outside the data
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

    regions = list(signature.get("regions", {}))
    for name in regions:
        have = dataset.experts[name]
        if [have.num_regions, have.region_dim] != signature["regions"][name]:
            raise VidretError(
                f"{data_dir}: expert '{name}' has region features {have.num_regions} x "
                f"{have.region_dim} a frame, the model in {run_dir} was trained on "
                f"{signature['regions'][name]}: extract with the same --regions"
            )
    require_finite(dataset, experts)

    parts: list[Embeddings] = []
    rows = np.arange(dataset.num_videos)
    with torch.inference_mode():
        for start in progress_bar(
            range(0, len(rows), batch), enabled=progress, desc="embedding videos", unit="batch"
        ):
            video = dataset_video_batch(dataset, experts, rows[start : start + batch], regions)
            parts.append(model.embed_video(video))
    embeddings = Embeddings(
        torch.cat([p.vectors for p in parts]), torch.cat([p.weights for p in parts])
    )
    videos, files = indexed_videos(data_dir, dataset)
    reference = model_reference(run_dir, experts, model_info["text_model"])
    arrays = None
    if segment_seconds:
        from vidret.search.segments import embed_segments

        embeddings, videos = embed_segments(
            model, dataset, experts, videos, segment_seconds, progress, regions
        )
        reference["segments"] = {"seconds": segment_seconds}
        bank_size = 0  # the bank's normalizers are of whole videos
    if fuse:
        # imported here: the zero-shot module builds on this one
        from vidret.search.concepts import ConceptQueryEncoder
        from vidret.search.zero_shot_index import CONCEPTS_FILE, fuse_with_concepts

        embeddings = fuse_with_concepts(embeddings, dataset, fuse, "max", run_dir)
        concepts = ConceptQueryEncoder()
        reference["fuse"] = {"weight": fuse, "pooling": "max", "top": concepts.top,
                             "text_model": str(concepts.text_model)}  # fmt: skip
        arrays = {CONCEPTS_FILE: {"names": concepts.name_vectors()}}
        bank_size = 0  # the bank's normalizers are of the model's scores alone
    bank = run_query_bank(cfg, model, model_info, embeddings, bank_size)
    return write_index(
        out,
        embeddings,
        videos,
        reference,
        kind,
        params,
        dataset=str(data_dir.resolve()),
        files=files,
        overwrite=overwrite,
        bank=bank,
        arrays=arrays,
    )


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


def run_query_bank(
    cfg: Any, model: Any, model_info: dict[str, Any], videos: Embeddings, bank_size: int
) -> SearchBank | None:
    """The query bank of `bank_size` captions from the run's own training data (None
    without that data)."""
    from vidret.eval.evaluate import sample_rows
    from vidret.train.data import prepare_data

    run_data = Path(model_info["data"])
    if bank_size == 0:
        return None
    if cfg.text.source is not None or not (run_data / "videos.jsonl").is_file():
        note(
            f"no query bank: the run's data {run_data} is not here (search works; "
            "--normalize and the weak-match note need it)"
        )
        return None
    prepared = prepare_data(cfg, run_data, experts=list(model_info["signature"]["experts"]))
    captions, _ = prepared.caption_rows(prepared.splits["train"])
    if len(captions) == 0:
        return None
    captions = sample_rows(captions, bank_size, np.random.default_rng(0))
    bank_text = text_embeddings(model, prepared, captions)
    return build_bank(bank_text, videos, Normalization("qbnorm"), temperature=0.01)


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
    files: dict[str, str] | None = None,
    overwrite: bool = False,
    bank: SearchBank | None = None,
    arrays: dict[str, dict[str, np.ndarray]] | None = None,
) -> VideoIndex:
    """Write an index folder (atomically) for these video embeddings and metadata.

    `files` names the folders the server may read from: `videos` (video files) and
    `thumbnails` (the dataset folder); without it no file of the index is served.
    `arrays`: more files of the index, `name.npz` -> its arrays (a zero-shot index's
    concept names)."""
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
        "files": files or {},
        "query_bank": None if bank is None else bank.settings,
        "score_floor": None if bank is None else bank.floor,
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
        if bank is not None:
            bank.save(tmp)
        for name, content in (arrays or {}).items():
            np.savez(tmp / name, **content)
        write_json_atomic(tmp / INDEX_INFO, info)
    return VideoIndex(out, info, index, videos, embeddings if multi_expert else None, bank)


def index_metadata(video: dict[str, Any], caption: str | None) -> dict[str, Any]:
    """The dataset's metadata an index keeps, with the video's first caption (what the
    page shows on its card). File references stay as the dataset has them (`thumbnail`
    relative to the dataset folder): index.json records that folder."""
    kept = {k: v for k, v in video.items() if k not in ("frame_times", "mtime", "bytes")}
    if caption is not None and "caption" not in kept:
        kept["caption"] = caption
    return kept
