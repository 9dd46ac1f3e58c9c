"""What the region backbones (ViSERN, AME-Net) read: the regions of each sampled frame.

An expert with region features (`<expert>.regions.npy`) gives its own regions; an expert
without them gives each frame as its single region, so the same model runs on every
dataset (msrvtt-1k has frame features only). The choice is fixed when the model is
built, from its signature: a model trained on regions refuses a batch without them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from torch import Tensor

from vidret.models.base import ModelSignature
from vidret.models.layers import even_frames, gather_frames
from vidret.models.types import VideoBatch


@dataclass
class FrameRegions:
    features: Tensor  # [B, K, R, D]
    mask: Tensor  # [B, K, R] bool: a real region of a real frame
    frames: Tensor  # [B, K] bool: a real frame
    frame_features: Tensor  # [B, K, frame dim]: the frames themselves


def region_dims(signature: ModelSignature, backbone: str) -> dict[str, int]:
    """Each expert's region dim; experts without regions give their frame dim (and a warning
    that the model sees frames as regions, which `model.json` also records)."""
    frames_only = [e for e in signature.experts if e not in signature.regions]
    if frames_only:
        warnings.warn(
            f"{backbone}: no region features for {frames_only}; each frame is taken as one "
            "region (extract with `vidret extract --regions N` for regions)",
            stacklevel=3,
        )
    return {
        e: signature.regions[e][1] if e in signature.regions else dim
        for e, dim in signature.experts.items()
    }


def frame_regions(
    video: VideoBatch, name: str, signature: ModelSignature, max_frames: int
) -> FrameRegions:
    """At most `max_frames` evenly spaced frames of expert `name`, with their regions."""
    x, lengths = video.features[name], video.lengths[name]
    index, valid = even_frames(lengths, x.shape[1], max_frames)
    frames = gather_frames(x, index)
    if name not in signature.regions:
        return FrameRegions(frames[:, :, None], valid[:, :, None], valid, frames)
    if name not in video.regions:
        raise ValueError(
            f"the model reads the region features of '{name}', which this batch lacks: give "
            f"data with {name}.regions.npy (`vidret extract --regions N`)"
        )
    regions = gather_frames(video.regions[name], index)
    mask = valid[:, :, None].expand(regions.shape[:3])
    if name in video.region_mask:
        mask = mask & gather_frames(video.region_mask[name], index)
    return FrameRegions(regions, mask, valid, frames)
