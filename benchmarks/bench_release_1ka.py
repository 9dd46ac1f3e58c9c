"""A generated release with the shapes of MMT's MSR-VTT 1k-A release: import, one epoch of
mmt + CMGSD at batch 32, and the 1k-A evaluation (issue 10).

    python benchmarks/bench_release_1ka.py --out /tmp/bench-1ka            # 9,000 + 1,000
    python benchmarks/bench_release_1ka.py --out /tmp/bench-1ka --videos 500   # a quick look

The release is written as gabeur/mmt ships it (one HDF5 file per video under
`vid_feat_files/mult_h5/`, lists and `jsfusion_val_caption_idx.pkl` in
`symlinked-feats/`) with the release's experts and dimensions (face 512, ocr 300, rgb 2048,
s3d 1024, scene 2208, speech 300, vggish 128), 20 captions per video, random values.
Features per video: rgb 30, s3d/scene/vggish 15, face 1; ocr and speech 0-12 words (about
half the videos have none, so those experts are often missing). Each step runs in its own
process; the report gives its wall time and peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from measure import measured_vidret

DIMS = {"face": 512, "ocr": 300, "rgb": 2048, "s3d": 1024, "scene": 2208, "speech": 300,
        "vggish": 128}  # fmt: skip
WORDS = ("a", "man", "woman", "person", "dog", "cat", "car", "plays", "runs", "cooks",
         "sings", "talks", "in", "the", "kitchen", "street")  # fmt: skip


def write_release(root: Path, videos: int, seed: int = 0) -> None:
    import h5py

    rng = np.random.default_rng(seed)
    h5 = root / "vid_feat_files" / "mult_h5"
    ids = [f"video{i}" for i in range(videos)]
    for vid in ids:
        path = h5 / vid[0] / vid[1] / vid[2] / f"{vid}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            for k in range(20):
                words = rng.choice(WORDS, size=rng.integers(5, 12))
                f[f"raw_captions.{k}"] = np.array([w.encode() for w in words], dtype="S")
            for expert, dim in DIMS.items():
                n = {"rgb": 30, "face": 1}.get(expert, 15)
                if expert in ("ocr", "speech"):
                    n = int(rng.integers(0, 13)) * int(rng.random() < 0.5)
                x = rng.standard_normal((n, dim), dtype=np.float32)
                f[f"features.{expert}"] = x
                if expert in ("s3d", "vggish"):
                    f[f"features_t.{expert}"] = np.stack([np.arange(n), np.arange(n) + 1.0], 1)
    lists = root / "symlinked-feats"
    lists.mkdir(parents=True, exist_ok=True)
    test = max(1, videos // 10)
    (lists / "train_list_jsfusion.txt").write_text("\n".join(ids[test:]) + "\n")
    (lists / "val_list_jsfusion.txt").write_text("\n".join(ids[:test]) + "\n")
    with open(lists / "jsfusion_val_caption_idx.pkl", "wb") as f:
        pickle.dump({vid: int(rng.integers(0, 20)) for vid in ids[:test]}, f)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--videos", type=int, default=10_000)
    args = parser.parse_args()
    release, data, run = args.out / "MSRVTT", args.out / "dataset", args.out / "run"
    report: dict = {
        "videos": args.videos,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    if not (release / "symlinked-feats").exists():
        started = time.perf_counter()
        write_release(release, args.videos)
        report["write_release_s"] = round(time.perf_counter() - started, 1)
    report["import"] = measured_vidret(
        ["data", "import-mmt", str(release), str(data), "--dataset", "msrvtt", "--overwrite"]
    )
    split = [
        "--set",
        "data.split=named",
        "--set",
        "data.names={train: 1k-A_train, test: 1k-A_test}",
    ]
    report["train_1_epoch"] = measured_vidret(
        ["train", "--data", str(data), "--config", "configs/mmt-cmgsd.yaml", "--out", str(run),
         "--set", "train.epochs=1", "--set", "train.batch_size=32", *split, "--quiet"]
    )  # fmt: skip
    metrics = json.loads((run / "test_metrics.json").read_text())
    report["epoch_time_s"] = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])[
        "epoch_time_s"
    ]
    report["eval_1kA"] = measured_vidret(
        ["eval", "--run", str(run), "--split", "1k-A_test", "--json"]
    )
    report["test_Rsum_after_1_epoch"] = round(metrics["test"]["Rsum"], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
