"""The MMT feature release as gabeur/mmt ships and reads it: one HDF5 file per video.

```
ROOT/                          e.g. data/MSRVTT (MMT's `data_dir` is ROOT/symlinked-feats)
  symlinked-feats/             split lists (*.txt, LSMDC's *.csv), jsfusion_val_caption_idx.pkl
  vid_feat_files/mult_h5/<c1>/<c2>/<c3>/<video>.h5    c1..c3: the id's first three characters
```

Each file holds, as MMT's `BaseDataset.get_sample_data` reads them:
- `raw_captions.<i>` (i = 0, 1, ...): one caption as an array of words (bytes or str);
- `features.<expert>`: `[n, dim]`; an empty array, or NaN in its first value, marks the
  expert as missing for the video;
- `features_t.<expert>`: `[n, 2]` start and end seconds of each feature. MMT uses them for
  `s3d` and `vggish` only; other experts get times from fixed widths (`expert_timings`:
  rgb 0.2 s, scene 1 s; face, speech, ocr none). Each feature's time is the midpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidret.errors import VidretError

H5_DIR = Path("vid_feat_files") / "mult_h5"
LISTS_DIR = "symlinked-feats"
# Seconds per feature where the file gives no times (MMT's utils/expert_timings.py);
# None: the feature has no time (face, speech, ocr are per-video or per-word).
FEATURE_WIDTH: dict[str, float | None] = {
    "rgb": 0.2,
    "scene": 1.0,
    "s3d": 1.0,
    "vggish": 1.0,
    "face": None,
    "speech": None,
    "ocr": None,
}
TIMED_IN_FILE = ("s3d", "vggish")


@dataclass
class MMTVideo:
    video_id: str
    captions: list[str]
    features: dict[str, np.ndarray]  # expert -> [n, dim] float32 (missing experts absent)
    times: dict[str, np.ndarray]  # expert -> [n] seconds (NaN: no time)


def is_mmt_release(root: Path) -> bool:
    return (root / H5_DIR).is_dir()


def video_files(root: Path) -> dict[str, Path]:
    """video id -> its HDF5 file, for every file of the release."""
    files = {}
    for path in sorted(p for p in (root / H5_DIR).rglob("*") if p.is_file()):
        if path.suffix != ".h5":
            raise VidretError(
                f"{path}: not an HDF5 feature file; an MMT release holds only "
                "<c1>/<c2>/<c3>/<video>.h5 under vid_feat_files/mult_h5 (move it elsewhere)"
            )
        vid = path.stem
        if path.parent.relative_to(root / H5_DIR).parts != tuple(vid[:3]):
            raise VidretError(
                f"{path}: an MMT feature file must be at <c1>/<c2>/<c3>/<video>.h5 with the "
                f"first three characters of its id; found it under {path.parent}"
            )
        files[vid] = path
    if not files:
        raise VidretError(f"{root / H5_DIR}: no <c1>/<c2>/<c3>/<video>.h5 files")
    return files


def read_video(path: Path, max_frames: int | None = None) -> MMTVideo:
    """One video's captions, features and feature times; a clear error for a bad file.

    With `max_frames`, only that many evenly spaced features are read from the file (a
    small file may declare a huge array). Features holding NaN or Inf are dropped with
    their times, as the pickle layout drops them."""
    with _open(path) as f:
        captions = _captions(f, path)
        features: dict[str, np.ndarray] = {}
        times: dict[str, np.ndarray] = {}
        for expert, key in _present_experts(f, path):
            n = f[key].shape[0]
            keep = evenly_spaced(n, n if max_frames is None else max_frames)
            feats = np.asarray(f[key][keep] if len(keep) < n else f[key][()], np.float32)
            finite = np.isfinite(feats).all(axis=1)
            features[expert] = feats[finite]
            times[expert] = _times(f, expert, n, path)[keep][finite]
    return MMTVideo(path.stem, captions, features, times)


def evenly_spaced(n: int, max_frames: int) -> np.ndarray:
    """At most `max_frames` evenly spaced positions of `n`, increasing, none repeated."""
    if n <= max_frames:
        return np.arange(n)
    return np.linspace(0, n - 1, max_frames).round().astype(int)


def read_shapes(path: Path) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """A video's captions and `(features, dim)` of each present expert, without reading
    the features (the importer sizes its arrays with these first)."""
    with _open(path) as f:
        captions = _captions(f, path)
        shapes = {e: tuple(int(n) for n in f[key].shape) for e, key in _present_experts(f, path)}
    return captions, shapes  # type: ignore[return-value]


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Any]:
    """The HDF5 file, with h5py's errors (truncated, not HDF5) named by the file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            yield f
    except OSError as e:
        raise VidretError(f"{path}: not a readable HDF5 file ({e})") from None
    except KeyError as e:
        raise VidretError(f"{path}: raw_captions are not numbered 0..n-1 ({e})") from None
    except (TypeError, ValueError) as e:  # what h5py raises for a dataset it cannot convert
        raise VidretError(f"{path}: an entry of an unreadable type or shape ({e})") from None


def _dataset(f: Any, key: str, path: Path) -> Any:
    """`f[key]`, which must be an array (a group there is a malformed file)."""
    import h5py

    item = f[key]
    if not isinstance(item, h5py.Dataset):
        raise VidretError(f"{path}: {key} is a {type(item).__name__}; expected an array")
    return item


def _captions(f: Any, path: Path) -> list[str]:
    count = sum(1 for k in f if k.startswith("raw_captions."))
    if not count:
        raise VidretError(f"{path}: no raw_captions.<i> (MMT needs at least one per video)")
    return [_words(_dataset(f, f"raw_captions.{i}", path)[()], path, i) for i in range(count)]


def _present_experts(f: Any, path: Path) -> list[tuple[str, str]]:
    """(expert, key) of each `features.<expert>` the video has: MMT skips an empty array
    or one whose first value is NaN (its missing marker)."""
    present = []
    for key in sorted(k for k in f if k.startswith("features.")):
        data = _dataset(f, key, path)
        shape = data.shape
        if len(shape) != 2:
            raise VidretError(f"{path}: {key} has shape {list(shape)}; expected [features, dim]")
        if data.dtype.kind not in "fiu":
            raise VidretError(f"{path}: {key} holds {data.dtype}; expected numbers")
        if shape[1] == 0:
            raise VidretError(f"{path}: {key} has shape {list(shape)}: features of 0 dimensions")
        if shape[0] and not np.isnan(data[0, 0]):
            present.append((key.split(".", 1)[1], key))
    return present


def _words(value: object, path: Path, i: int) -> str:
    words = np.atleast_1d(np.asarray(value)).ravel()
    try:
        text = " ".join(w.decode("utf-8") if isinstance(w, bytes) else str(w) for w in words)
    except UnicodeDecodeError as e:
        raise VidretError(f"{path}: raw_captions.{i} is not valid UTF-8 text ({e})") from None
    if not text.strip():
        raise VidretError(f"{path}: raw_captions.{i} is empty")
    return text.strip()


def _times(f: object, expert: str, n: int, path: Path) -> np.ndarray:
    key = f"features_t.{expert}"
    if expert in TIMED_IN_FILE and key in f:  # type: ignore[operator]
        data = _dataset(f, key, path)
        if data.ndim != 2 or data.dtype.kind not in "fiu":
            raise VidretError(f"{path}: {key} is {data.dtype} {list(data.shape)}; expected [n, 2]")
        t = np.asarray(data[: min(n, data.shape[0])], np.float64)
        if t.ndim != 2 or t.shape[1] != 2:
            raise VidretError(f"{path}: {key} has shape {list(t.shape)}; expected [n, 2]")
        t = t[:n]  # MMT trims a longer list of times to the features
        mid = t.mean(axis=1)
        return np.concatenate([mid, np.full(n - len(mid), np.nan)]).astype(np.float32)
    width = FEATURE_WIDTH.get(expert)
    if width is None:
        return np.full(n, np.nan, np.float32)
    return ((np.arange(n) + 0.5) * width).astype(np.float32)
