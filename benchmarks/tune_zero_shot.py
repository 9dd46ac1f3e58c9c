"""Choose the zero-shot search settings on a validation set of its own (issue 24).

    python benchmarks/tune_zero_shot.py [--work runs/zero-shot-validation]

The validation clips: the real photographs scikit-image's wheel ships (the script fetches
it with `pip download` and reads skimage/data from it), each made a 5 s clip at 10 fps
with a slow zoom to the centre (320x240), and the 18 generated clips of `vidret data
demo-videos` as distractors, as in benchmarks/bench_zero_shot.py; none of these is in
that benchmark. The queries, benchmarks/data/zero_shot_validation_queries.json, were
written and committed before anything was scored on these clips.

Every combination of `vidret index --zero-shot`'s settings (--pooling max|mean|top3,
--top 3|5|10, with and without --crops) is indexed and scored: R@1, R@5 and the median
rank of each query's one relevant clip. The choice, fixed before the first run: the
highest R@1 + R@5, then the lowest median rank, then the current default.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from bench_zero_shot import rank_summary, vidret  # type: ignore[import-not-found]

QUERIES = Path(__file__).parent / "data" / "zero_shot_validation_queries.json"
SKIMAGE = "scikit-image==0.26.0"
PHOTOS = {  # file in skimage/data -> clip name
    "astronaut.png": "astronaut.mp4", "chelsea.png": "chelsea.mp4", "coffee.png": "coffee.mp4",
    "rocket.jpg": "rocket.mp4", "motorcycle_left.png": "motorcycle_left.mp4",
    "clock_motion.png": "clock_motion.mp4", "coins.png": "coins.mp4", "brick.png": "brick.mp4",
    "moon.png": "moon.mp4", "hubble_deep_field.jpg": "hubble_deep_field.mp4",
    "camera.png": "camera.mp4", "horse.png": "horse.mp4", "page.png": "page.mp4",
    "gravel.png": "gravel.mp4",
}  # fmt: skip
# pooling, top, crops: `vidret index --zero-shot`'s defaults when this grid was first run
# (the last tie-break; the defaults chosen by it are in vidret.search.concept_settings)
DEFAULT = ("max", 5, False)


def fetch_photos(folder: Path) -> dict[str, bytes]:
    """The photographs, from scikit-image's wheel (kept in `folder`: fetched once)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not list(folder.glob("scikit_image-*.whl")):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", SKIMAGE, "-d", str(folder)],
            check=True,
        )
    with zipfile.ZipFile(next(folder.glob("scikit_image-*.whl"))) as wheel:
        return {name: wheel.read(f"skimage/data/{name}") for name in PHOTOS}


def photo_clip(photo: bytes, path: Path, seconds: float = 5.0, fps: int = 10) -> None:
    """A still photograph as a clip: a slow zoom from the whole (4:3) picture to its
    centre 80%, 320x240, H.264."""
    import av
    from PIL import Image

    image = Image.open(io.BytesIO(photo)).convert("RGB")
    w, h = image.size
    cw, ch = (w, round(w * 3 / 4)) if w * 3 / 4 <= h else (round(h * 4 / 3), h)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        count = int(seconds * fps)
        for i in range(count):
            scale = 1.0 - 0.2 * i / max(count - 1, 1)
            zw, zh = cw * scale, ch * scale
            box = ((w - zw) / 2, (h - zh) / 2, (w + zw) / 2, (h + zh) / 2)
            frame = np.asarray(image.resize((320, 240), Image.BILINEAR, box=box))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, "rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def label(row: dict) -> str:
    return f"{row['pooling']} top {row['top']}{' crops' if row['crops'] else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/zero-shot-validation"))
    args = parser.parse_args()
    from vidret.search.engine import SearchEngine

    clips = args.work / "videos"
    for name, photo in fetch_photos(args.work / "wheel").items():
        if not (clips / PHOTOS[name]).exists():
            photo_clip(photo, clips / PHOTOS[name])
    if not (clips / "generated").exists():
        vidret("data", "demo-videos", str(clips / "generated"))
    datasets = {False: args.work / "dataset", True: args.work / "dataset-regions"}
    for crops, data in datasets.items():
        if not data.exists():
            regions = ["--regions", "9"] if crops else []
            vidret("extract", str(clips), "--out", str(data), *regions)

    queries = json.loads(QUERIES.read_text())["clips"]
    videos = [json.loads(line) for line in (datasets[False] / "videos.jsonl").open()]
    by_file = {v["file"]: v["video_id"] for v in videos}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for crops in (False, True):
            for pooling in ("max", "mean", "top3"):
                for top in (3, 5, 10):
                    index = Path(tmp) / f"{pooling}-{top}-{crops}"
                    vidret("index", "--zero-shot", "--data", str(datasets[crops]),
                           "--out", str(index), "--pooling", pooling, "--top", str(top),
                           *(["--crops"] if crops else []))  # fmt: skip
                    engine = SearchEngine(index)
                    ranks = []
                    for file, texts in queries.items():
                        for text in texts:
                            hits = engine.search(text, k=len(videos)).hits
                            ranks.append([h.video_id for h in hits].index(by_file[file]) + 1)
                    rows.append({"pooling": pooling, "top": top, "crops": crops,
                                 **rank_summary(ranks), "ranks": ranks})  # fmt: skip

    def key(row: dict) -> tuple:
        default = (row["pooling"], row["top"], row["crops"]) == DEFAULT
        return (row["R@1"] + row["R@5"], -row["MdR"], default)

    chosen = max(rows, key=key)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "videos": len(videos),
        "queries": sum(len(t) for t in queries.values()),
        "chosen": {k: chosen[k] for k in ("pooling", "top", "crops", "R@1", "R@5", "MdR")},
        "rows": [{k: v for k, v in r.items() if k != "ranks"} for r in rows],
        "ranks": {label(r): r["ranks"] for r in rows},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
