"""`vidret extract --ray [ADDRESS]`: decoding and the frame model as Ray Data batch inference.

The files to extract become a Ray dataset of paths, one block per file, so Ray spreads
them over its nodes; `map_batches` runs them through a pool of `workers` actors, each
holding one EfficientNet-Lite0 (one ONNX thread: an actor per core beats threads per
actor for many small inputs), decoding and embedding one video per call. Results stream
back to this process in the files' order (`preserve_order`), where the dataset folder is
written exactly as without Ray: atomically, every `--commit-every` videos, resumable.

On a cluster every node must read the video folder at the same path (a shared or
mounted file system): only paths travel, not the files. With no address Ray starts on
this machine and stops afterwards.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vidret.errors import VidretError
from vidret.video.decode import DecodedVideo, Sampling, UnreadableVideoError
from vidret.video.embed import EmbeddedVideo, Extracted, embed_file

LOCAL = "local"  # --ray with no address: a Ray started here for this extraction


class FrameEncoderActor:
    """One frame encoder in a Ray actor: a batch of paths -> their features (or why not)."""

    def __init__(self, sampling: dict[str, Any], backend: str, regions: int = 0):
        from vidret.video.frame_encoder import EfficientNetLite0

        self.sampling = Sampling(**sampling)
        self.encoder = EfficientNetLite0(backend, threads=1, regions=regions)  # type: ignore[arg-type]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {
            "path": [], "features": [], "thumbnail": [], "decoded": [], "error": [], "regions": []
        }  # fmt: skip
        for path in batch["path"]:
            embedded = embed_file(Path(path), self.sampling, self.encoder)
            out["path"].append(path)
            if isinstance(embedded, UnreadableVideoError):
                out["features"].append(None)
                out["thumbnail"].append(None)
                out["decoded"].append(None)
                out["regions"].append(None)
                out["error"].append(str(embedded))
                continue
            d = embedded.decoded
            out["features"].append(embedded.features)
            out["regions"].append(embedded.regions)
            out["thumbnail"].append(embedded.thumbnail)
            out["decoded"].append(
                {"times": d.times.tolist(), "duration": d.duration, "fps": d.fps,
                 "width": d.width, "height": d.height}
            )  # fmt: skip
            out["error"].append(None)
        return out


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail within seconds when a `HOST:PORT` (or `ray://HOST:PORT`) cluster address does
    not answer: Ray itself retries for minutes. `auto` and other forms are left to Ray."""
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise VidretError(
            f"--ray-address {address}: nothing answers there ({e.strerror or e}); give the "
            "head node's HOST:PORT (`ray start --head` prints it)"
        ) from None


def ray_embedded(
    paths: list[Path], sampling: Sampling, encoder: Any, address: str, workers: int
) -> Iterator[Extracted]:
    """(path, embedded video or why not) for each path, in order, computed on Ray."""
    if not paths:
        return
    try:
        import ray
        import ray.data
    except ImportError:
        raise VidretError("--ray needs Ray: pip install 'ray[data]'") from None
    if workers < 1:
        raise VidretError(f"--ray-workers {workers}: at least 1")
    started_here = not ray.is_initialized()
    if started_here and address != LOCAL:
        check_reachable(address)
    if started_here:
        try:
            quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
            if address == LOCAL:
                ray.init(num_cpus=workers, **quiet)
            else:
                ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise VidretError(f"--ray {address}: cannot join that Ray cluster ({e})") from None
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # ids are given in file order
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # vidret shows its own bar
        items = ray.data.from_items(
            [{"path": str(p)} for p in paths], override_num_blocks=len(paths)
        )
        results = items.map_batches(
            FrameEncoderActor,
            fn_constructor_kwargs={
                "sampling": sampling.__dict__,
                "backend": getattr(encoder, "backend", "onnx"),
                "regions": getattr(encoder, "regions", 0),
            },
            batch_size=1,
            concurrency=workers,
            num_cpus=1,
            batch_format="numpy",
        )
        for row in results.iter_rows():
            path = Path(row["path"])
            if row["error"] is not None:
                yield path, UnreadableVideoError(row["error"])
                continue
            d = row["decoded"]
            decoded = DecodedVideo(
                frames=np.zeros((0, 1, 1, 3), np.uint8),
                times=np.asarray(d["times"], np.float64),
                duration=float(d["duration"]),
                fps=float(d["fps"]),
                width=int(d["width"]),
                height=int(d["height"]),
            )
            yield (
                path,
                EmbeddedVideo(
                    np.asarray(row["features"], np.float16),
                    np.asarray(row["thumbnail"]),
                    decoded,
                    None if row["regions"] is None else np.asarray(row["regions"], np.float16),
                ),
            )
    finally:
        if started_here:
            ray.shutdown()
