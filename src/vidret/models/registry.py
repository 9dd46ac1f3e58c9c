"""Backbones by name: `model.backbone` in a config picks one from `BACKBONES` (a new
backbone is its module and one line here)."""

from __future__ import annotations

from vidret.config import ModelConfig
from vidret.errors import VidretError
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


def check_backbone(name: str) -> type[Backbone]:
    """The backbone class `model.backbone` names; a clear error for any other name."""
    if name not in BACKBONES:
        raise VidretError(f"model.backbone {name!r}: choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def reads_regions(backbone: str) -> bool:
    """Whether the backbone reads each frame's regions (`<expert>.regions.npy`)."""
    return check_backbone(backbone).reads_regions


def build_backbone(cfg: ModelConfig, signature: ModelSignature) -> Backbone:
    check_backbone(cfg.backbone)
    if cfg.backbone == "mmt" and cfg.variant == "published":
        return PublishedMMT(cfg, signature)
    if cfg.backbone == "ce" and cfg.variant == "published":
        return PublishedCE(cfg, signature)
    return BACKBONES[cfg.backbone](cfg, signature)
