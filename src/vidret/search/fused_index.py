"""`vidret index --run RUN1 --run RUN2 [--weights ...]`: one index serving a score fusion.

For models whose score is one cosine (a single embedding a side), the fusion
sum_i w_i (t_i.v_i - m_i) / s_i of vidret.eval.fusion is one inner product over
concatenated vectors scaled by sqrt(w_i / s_i), up to a constant: the index holds the
videos' scaled, concatenated vectors and a query is embedded by every run and
concatenated the same way, so one FAISS search ranks by the fused score (tested equal to
the fused matrix). The weights and each run's standardization come from the runs'
validation split (`fusion_of_runs`). Multi-expert models (mmt, ce) weigh their experts
per query, which no fixed concatenation reproduces: they are refused. The index has no
query bank or weak-match floor (those are of one model's similarities).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidret.data.dataset import VideoDataset
from vidret.errors import VidretError
from vidret.io import require_folder_or_nothing
from vidret.locking import folder_lock, remove_stale_temporaries
from vidret.models.types import Embeddings
from vidret.runs.folder import load_trained_model
from vidret.runs.query_encoder import QueryEncoder
from vidret.search.build_index import check_dataset_for_model, embed_videos
from vidret.search.faiss_index import check_index_kind
from vidret.search.index import VideoIndex, indexed_videos, model_reference, write_index

SCALES_FILE = "fusion.npz"  # each run's vector scale, sqrt(w / s)


def build_fused_index(
    runs: list[Path],
    data_dir: Path,
    out: Path,
    weights: list[float] | None = None,
    kind: str = "flat",
    batch: int = 256,
    overwrite: bool = False,
    progress: bool = True,
) -> VideoIndex:
    from vidret.eval.fusion import fusion_of_runs

    check_index_kind(kind)
    require_folder_or_nothing(out)
    if out.exists() and not overwrite:
        raise VidretError(f"--out {out} already exists; pass --overwrite to replace it")
    fusion = fusion_of_runs(runs, weights)
    dataset = VideoDataset.open(data_dir)
    parts, references = [], []
    for run, scale in zip(runs, fusion.vector_scales(), strict=True):
        cfg, model, info = load_trained_model(run)
        torch.set_num_threads(cfg.train.threads)
        experts, regions = check_dataset_for_model(dataset, data_dir, run, info["signature"])
        embedded = embed_videos(model, dataset, experts, regions, batch, progress)
        if embedded.vectors.shape[1] != 1:
            raise VidretError(
                f"{run}: a {embedded.vectors.shape[1]}-expert model ({cfg.model.backbone}) "
                "weighs its experts per query, so no one index can serve its fused score; "
                "fuse it with `vidret eval --runs` instead, or index single-vector models "
                "(meanpool, dual, visern, amenet)"
            )
        parts.append(scale * embedded.vectors[:, 0].float())
        references.append(model_reference(run, experts, info["text_model"]))
    vectors = torch.cat(parts, dim=1)[:, None, :]
    embeddings = Embeddings(vectors, torch.ones(vectors.shape[0], 1))
    names = " + ".join(Path(r["run"]).name for r in references)
    reference = {"run": f"fusion of {names}",  # what /health names; no path: no folder
                 "fusion": {**fusion.describe(), "scales": fusion.vector_scales(),
                            "models": references}}  # fmt: skip
    videos, files = indexed_videos(data_dir, dataset)
    # the scales exactly (index.json rounds its floats for people to read)
    arrays = {SCALES_FILE: {"scales": np.array(fusion.vector_scales(), np.float64)}}
    with folder_lock(out, what="builds an index in"):
        remove_stale_temporaries(out)
        return write_index(out, embeddings, videos, reference, kind, None,
                           dataset=str(data_dir.resolve()), files=files,
                           overwrite=overwrite, arrays=arrays)  # fmt: skip


class FusionQueryEncoder:
    """Each fused run embeds the query; the vectors, scaled as the index's, concatenated."""

    def __init__(self, index_dir: Path, fusion: dict[str, Any]):
        self.encoders = [QueryEncoder(Path(m["run"])) for m in fusion["models"]]
        try:
            with np.load(index_dir / SCALES_FILE, allow_pickle=False) as z:
                self.scales = [float(s) for s in z["scales"]]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise VidretError(
                f"{index_dir / SCALES_FILE}: missing or damaged ({e}); rebuild the index "
                "with `vidret index --run ... --run ... --overwrite`"
            ) from None
        if len(self.scales) != len(self.encoders):
            raise VidretError(f"{index_dir / SCALES_FILE}: one scale per fused run expected")
        self.experts: list[str] = []

    def embed(self, query: str) -> Embeddings:
        return self.embed_many([query])

    def embed_many(self, queries: list[str]) -> Embeddings:
        parts = [
            scale * encoder.embed_many(queries).vectors[:, 0].float()
            for encoder, scale in zip(self.encoders, self.scales, strict=True)
        ]
        vectors = torch.cat(parts, dim=1)[:, None, :]
        return Embeddings(vectors, torch.ones(len(queries), 1))
