"""`vidret index --run RUN`: a trained model's video vectors (whole videos, or windows of
long ones) with its query bank and weak-match floor, written as an index folder
(`vidret.search.index`); `--fuse W` adds the zero-shot concepts."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidret.batches.prepared import dataset_video_batch
from vidret.data.dataset import VideoDataset
from vidret.data.validate import require_finite
from vidret.errors import VidretError
from vidret.eval.normalization import Normalization
from vidret.io import require_folder_or_nothing
from vidret.locking import folder_lock, remove_stale_temporaries
from vidret.models.types import Embeddings
from vidret.progress import note, progress_bar
from vidret.runs.folder import load_trained_model
from vidret.search.concept_settings import DEFAULT_POOLING
from vidret.search.concepts import CONCEPTS_FILE, ConceptQueryEncoder, fuse_with_concepts
from vidret.search.export_tower import add_query_tower, check_precision
from vidret.search.faiss_index import check_index_kind
from vidret.search.index import (
    VideoIndex,
    indexed_videos,
    model_reference,
    write_index,
)
from vidret.search.query_bank import (
    DEFAULT_BANK_SIZE,
    SearchBank,
    build_bank,
    text_embeddings,
)
from vidret.search.segments import embed_segments

MIN_SEGMENT_SECONDS = 0.5  # shorter windows hold no frame at the usual 1-2 frames a second


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
    query_tower: str = "fp32",
) -> VideoIndex:
    """Embed every video of `data_dir` with the run's best checkpoint and write `out`;
    with the run's own data at hand, also its query bank (`bank_size` training captions,
    0 for none) and score floor. `fuse` W > 0: scores are (1 - W) x the model's plus W x
    the zero-shot concept score (`vidret.search.zero_shot_index`; no query bank).
    `segment_seconds`: index windows of long videos, not whole videos
    (`vidret.search.segments`; no query bank). `query_tower`: the precision of the stored
    query graph (`vidret.search.export_tower`): fp32 or int8."""
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
    check_precision(query_tower)
    if segment_seconds and fuse:
        raise VidretError("--fuse and --segment-seconds cannot be combined yet")
    require_folder_or_nothing(out)
    if out.exists() and not overwrite:
        raise VidretError(f"--out {out} already exists; pass --overwrite to replace it")
    with folder_lock(out, what="builds an index in"):
        remove_stale_temporaries(out)  # of killed builds: no live writer owns them now
        return _build_index(
            run_dir, data_dir, out, kind, params, batch, overwrite, progress, bank_size, fuse,
            segment_seconds, query_tower,
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
    query_tower: str,
) -> VideoIndex:
    cfg, model, model_info = load_trained_model(run_dir)
    torch.set_num_threads(cfg.train.threads)
    dataset = VideoDataset.open(data_dir)  # refuses file references outside the data
    signature = model_info["signature"]
    experts, regions = check_dataset_for_model(dataset, data_dir, run_dir, signature)
    embeddings = embed_videos(model, dataset, experts, regions, batch, progress)
    videos, files = indexed_videos(data_dir, dataset)
    reference = model_reference(run_dir, experts, model_info["text_model"])
    arrays = None
    if segment_seconds:
        embeddings, videos = embed_segments(
            model, dataset, experts, videos, segment_seconds, progress, regions
        )
        reference["segments"] = {"seconds": segment_seconds}
        bank_size = 0  # the bank's normalizers are of whole videos
    if fuse:
        embeddings = fuse_with_concepts(embeddings, dataset, fuse, DEFAULT_POOLING, run_dir)
        concepts = ConceptQueryEncoder()
        reference["fuse"] = {"weight": fuse, "pooling": DEFAULT_POOLING, "top": concepts.top,
                             "text_model": str(concepts.text_model)}  # fmt: skip
        arrays = {CONCEPTS_FILE: {"names": concepts.name_vectors()}}
        bank_size = 0  # the bank's normalizers are of the model's scores alone
    bank = run_query_bank(cfg, model, model_info, embeddings, bank_size)
    with tempfile.TemporaryDirectory(prefix="vidret-tower-") as tower_dir:
        copies = {}
        if not fuse:  # a fused index's query side holds the concept encoder too
            copies = add_query_tower(run_dir, reference, Path(tower_dir), query_tower)
            say_query_tower(reference["query_tower"])
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
            copies=copies,
        )


def say_query_tower(settings: dict[str, Any]) -> None:
    if "fallback" in settings:
        note(f"queries run in PyTorch: {settings['fallback']}")
    elif settings["precision"] == "int8":
        note(
            "query side: one ONNX graph, int8 (search without PyTorch), its vectors "
            f"{settings['min_cosine']:.4f} cosine from PyTorch's at least"
        )
    else:
        note(
            "query side: one ONNX graph (search without PyTorch), "
            f"{settings['max_difference']:.1e} from PyTorch at most"
        )


def check_dataset_for_model(
    dataset: VideoDataset, data_dir: Path, run_dir: Path, signature: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """The model's experts and region experts, each checked against the dataset's features
    (present, same dimension, finite)."""
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
    return experts, regions


def embed_videos(
    model: Any,
    dataset: VideoDataset,
    experts: list[str],
    regions: list[str],
    batch: int,
    progress: bool,
) -> Embeddings:
    """Every video of the dataset through the model's video side, in batches."""
    parts: list[Embeddings] = []
    rows = np.arange(dataset.num_videos)
    with torch.inference_mode():
        for start in progress_bar(
            range(0, len(rows), batch), enabled=progress, desc="embedding videos", unit="batch"
        ):
            video = dataset_video_batch(dataset, experts, rows[start : start + batch], regions)
            parts.append(model.embed_video(video))
    return Embeddings(torch.cat([p.vectors for p in parts]), torch.cat([p.weights for p in parts]))


def run_query_bank(
    cfg: Any, model: Any, model_info: dict[str, Any], videos: Embeddings, bank_size: int
) -> SearchBank | None:
    """The query bank of `bank_size` captions from the run's own training data (None
    without that data)."""
    from vidret.batches.prepared import prepare_data
    from vidret.eval.evaluate import sample_rows

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
    defaults = Normalization("qbnorm")  # the settings chosen on validation
    return build_bank(bank_text, videos, defaults, temperature=defaults.temperature)
