"""Adding a backbone, an objective or an index kind is one new file plus one registry line
(docs/architecture.md). Each test writes the file (a module outside the package) and adds
the line (`monkeypatch.setitem` on the registry), and nothing else, then uses the new
part end to end."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import TINY
from vidret.config import load_config
from vidret.losses.registry import OBJECTIVES, ObjectiveEntry
from vidret.models.registry import BACKBONES
from vidret.search.faiss_index import INDEX_KINDS
from vidret.train.trainer import train

BACKBONE_FILE = '''
import torch

from vidret.models.base import Backbone
from vidret.models.layers import frame_mask, masked_max, normalize
from vidret.models.types import Embeddings


class MaxPool(Backbone):
    """Max over each expert's frames, one linear map per side."""

    def __init__(self, cfg, signature):
        super().__init__(cfg, signature)
        self.video = torch.nn.Linear(sum(signature.experts.values()), cfg.embed_dim)
        self.text = torch.nn.Linear(signature.text_dim, cfg.embed_dim)

    def encode_video(self, video):
        parts = []
        for name in self.expert_names:
            x = video.features[name]
            parts.append(masked_max(x, frame_mask(video.lengths[name], x.shape[1])))
        return Embeddings.joint(normalize(self.video(torch.cat(parts, dim=-1)))[:, None])

    def encode_text(self, text):
        return Embeddings.joint(normalize(self.text(text.pooled))[:, None])
'''

OBJECTIVE_FILE = '''
import torch.nn.functional as F

from vidret.losses.base import LossOutput, Objective


class SoftplusMargin(Objective):
    """Every negative's softplus hinge against its positive, averaged."""

    def __init__(self, margin):
        super().__init__()
        self.margin = margin

    def forward(self, sims, ctx):
        positive = sims.diagonal()[:, None]
        hinge = F.softplus(self.margin + sims - positive)
        total = (hinge.sum() - hinge.diagonal().sum()) / (sims.numel() - len(sims))
        return LossOutput(total, {"loss": float(total.detach())})
'''

INDEX_KIND_FILE = '''
import faiss


def build_sq8(vectors, params):
    """8-bit scalar quantization: a quarter of flat's memory, trained on the vectors."""
    index = faiss.IndexScalarQuantizer(
        vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.train(vectors)
    return index
'''


# the demo's 15 test videos: R@k by chance is k/15 in both directions
CHANCE_RSUM = 2 * (1 + 5 + 10) / 15 * 100  # 213.3


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> Any:
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def _train(demo_dir: Path, out: Path, *overrides: str) -> dict:
    cfg = load_config(None, [*TINY, "train.epochs=2", *overrides])
    return train(cfg, out, demo_dir, progress=False)


def test_a_new_backbone(demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _module(tmp_path, monkeypatch, "maxpool_backbone", BACKBONE_FILE)
    monkeypatch.setitem(BACKBONES, "maxpool", mine.MaxPool)  # the registry line
    result = _train(demo_dir, tmp_path / "run", "model.backbone=maxpool")
    assert result["test"]["Rsum"] > CHANCE_RSUM + 35


def test_a_new_objective(demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _module(tmp_path, monkeypatch, "softplus_objective", OBJECTIVE_FILE)
    entry = ObjectiveEntry(lambda cfg, epochs: mine.SoftplusMargin(cfg.margin), ("margin",))
    monkeypatch.setitem(OBJECTIVES, "softplus", entry)  # the registry line
    result = _train(demo_dir, tmp_path / "run", "loss.name=softplus")
    assert result["test"]["Rsum"] > CHANCE_RSUM + 35


def test_a_new_index_kind(
    small_world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidret.search.build_index import build_index
    from vidret.search.engine import SearchEngine
    from vidret.search.faiss_index import IndexKind

    mine = _module(tmp_path, monkeypatch, "sq8_index", INDEX_KIND_FILE)
    monkeypatch.setitem(INDEX_KINDS, "sq8", IndexKind(mine.build_sq8))  # the registry line
    build_index(small_world["run"], small_world["data"], tmp_path / "i", kind="sq8", progress=False)
    quantized, exact = SearchEngine(tmp_path / "i"), SearchEngine(small_world["index"])
    for query in ("a red pattern", "people play sports", "a cat"):
        got = [h.video_id for h in quantized.search(query, k=5).hits]
        want = [h.video_id for h in exact.search(query, k=5).hits]
        assert got[0] == want[0] and len(set(got) & set(want)) >= 4
        scores = [h.score for h in quantized.search(query, k=5).hits]
        assert np.allclose(scores, [h.score for h in exact.search(query, k=5).hits], atol=0.02)
