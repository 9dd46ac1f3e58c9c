"""Moment-localization losses for CDNet (`vidret.models.cdnet`). The seed's abstract
names no loss; these are the terms span-predicting localizers commonly train with
(boundary classification as in VSLNet, an IoU term on the predicted span as in DRN):

* boundary: cross-entropy of the frame holding the moment's start, and of the frame
  holding its end, over the video's valid frames;
* iou: generalized IoU loss (1 - GIoU) between the annotated span and the expected span
  under the start and end distributions (times as fractions of the video), which,
  unlike the boundary term, counts how far off a wrong frame is;
* alignment: binary cross-entropy of QSD's alignment levels against "the frame lies
  inside the moment", the supervision of the query-guided disentanglement.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidret.config.moments import MomentLossConfig
from vidret.models.cdnet import MomentScores


@dataclass
class MomentTargets:
    start_frame: torch.Tensor  # int64 [B]
    end_frame: torch.Tensor  # int64 [B]
    inside: torch.Tensor  # float [B, T]: 1 for frames inside the moment
    edges: torch.Tensor  # [B, T + 1] frame edges / duration (padding repeats the last)
    span: torch.Tensor  # [B, 2] the moment / duration


def moment_loss(
    scores: MomentScores, targets: MomentTargets, mask: torch.Tensor, cfg: MomentLossConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the three terms, and each term's value for the logs."""
    boundary = F.cross_entropy(scores.start, targets.start_frame) + F.cross_entropy(
        scores.end, targets.end_frame
    )
    p_start, p_end = scores.start.softmax(-1), scores.end.softmax(-1)
    expected = torch.stack(
        [(p_start * targets.edges[:, :-1]).sum(-1), (p_end * targets.edges[:, 1:]).sum(-1)], -1
    )
    iou = (1 - generalized_iou(expected, targets.span)).mean()
    weight = mask.float()
    alignment = (
        F.binary_cross_entropy_with_logits(scores.alignment, targets.inside, reduction="none")
        * weight
    ).sum() / weight.sum().clamp_min(1)
    total = cfg.boundary * boundary + cfg.iou * iou + cfg.alignment * alignment
    terms = {"boundary": boundary.item(), "iou": iou.item(), "alignment": alignment.item()}
    return total, terms


def generalized_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GIoU of spans `[..., 2]`: IoU minus the share of the enclosing span neither covers."""
    inter = (torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    enclosing = torch.maximum(a[..., 1], b[..., 1]) - torch.minimum(a[..., 0], b[..., 0])
    iou = inter / union.clamp_min(1e-9)
    return iou - (enclosing - union) / enclosing.clamp_min(1e-9)
