"""Backbones by name: `model.backbone` in a config picks one."""

from __future__ import annotations

from vidret.config import ModelConfig
from vidret.models.amenet import AMENet
from vidret.models.base import Backbone, ModelSignature
from vidret.models.ce import CollaborativeExperts
from vidret.models.ce_published import PublishedCE
from vidret.models.dual import DualEncoding
from vidret.models.meanpool import MeanPool
from vidret.models.mmt import MultiModalTransformer
from vidret.models.mmt_published import PublishedMMT
from vidret.models.prota import ProTA
from vidret.models.visern import ViSERN

BACKBONES: dict[str, type[Backbone]] = {
    "meanpool": MeanPool,
    "mmt": MultiModalTransformer,
    "ce": CollaborativeExperts,
    "dual": DualEncoding,
    "prota": ProTA,
    "visern": ViSERN,
    "amenet": AMENet,
}
# backbones that read the regions of each frame (`<expert>.regions.npy`) where there are some
REGION_BACKBONES = frozenset({"visern", "amenet"})


def reads_regions(backbone: str) -> bool:
    return backbone in REGION_BACKBONES


def build_backbone(cfg: ModelConfig, signature: ModelSignature) -> Backbone:
    if cfg.backbone == "mmt" and cfg.variant == "published":
        return PublishedMMT(cfg, signature)
    if cfg.backbone == "ce" and cfg.variant == "published":
        return PublishedCE(cfg, signature)
    return BACKBONES[cfg.backbone](cfg, signature)
