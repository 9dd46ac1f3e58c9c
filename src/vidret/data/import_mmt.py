"""`vidret data import-mmt`: convert an MMT / Collaborative-Experts feature release.

Two layouts are read. MMT's own (one HDF5 file per video under
`vid_feat_files/mult_h5/`, see `vidret.data.mmt_h5`) is recognised by that folder; every
expert is kept with its per-feature times, captions come from `raw_captions.<i>`, and the
protocols' split lists become named splits (`vidret.data.protocols`). Otherwise pickles:
those releases hold, per expert, a pickled dict `video_id -> array` (`[dim]` for a pooled
feature, `[frames, dim]` for a sequence; NaN or absent where the expert is missing),
`raw-captions*.pkl` (`video_id -> list of captions`, each a list of words or a string)
and split lists (`*_list_*.txt`). This module finds them under SRC and writes a dataset
folder (docs/datasets.md). ActivityNet captions of one video are joined into one
paragraph, as the paper and MMT do for paragraph-to-video retrieval.

Pickles can run code when loaded, so they are read with an unpickler that only builds
plain containers and NumPy arrays.
"""

from __future__ import annotations

import io
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidret.data.format import (
    lengths_file,
    video_id_problem,
)
from vidret.data.mmt_h5 import (
    LISTS_DIR,
    evenly_spaced,
    is_mmt_release,
    read_shapes,
    read_video,
    video_files,
)
from vidret.data.protocols import protocol_splits
from vidret.data.writer import DatasetWriter, dataset_folder
from vidret.errors import VidretError
from vidret.progress import progress_bar

DATASETS = ("msrvtt", "activitynet", "lsmdc")
_CAPTION_FILE = re.compile(r"^raw-captions.*\.(pkl|pickle)$")
_SPLIT_FILE = re.compile(r".*_list.*\.txt$")

# Only what NumPy arrays and plain containers need; anything else is refused.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
    ("builtins", "float"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a feature pickle")


def load_pickle(path: Path) -> Any:
    """Load a release pickle safely; Python 2 pickles (latin-1 strings) are handled too."""
    data = path.read_bytes()
    try:
        return _ArrayUnpickler(io.BytesIO(data)).load()
    except UnicodeDecodeError:
        return _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise VidretError(f"{path}: cannot read this pickle ({e})") from e


@dataclass
class ImportReport:
    videos: int = 0
    captions: int = 0
    experts: dict[str, dict[str, int]] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    caption_features: dict[str, dict[str, int]] = field(default_factory=dict)


def import_mmt(
    src: Path | str,
    dst: Path | str,
    dataset: str = "msrvtt",
    paragraphs: bool | None = None,
    max_frames: int = 64,
    overwrite: bool = False,
    progress: bool = True,
) -> ImportReport:
    """Convert the release under `src` into the dataset folder `dst` (written atomically)."""
    src, dst = Path(src), Path(dst)
    if dataset not in DATASETS:
        raise VidretError(f"unknown dataset '{dataset}'; choose one of {', '.join(DATASETS)}")
    if not src.is_dir():
        raise VidretError(f"{src} is not a folder")
    paragraphs = dataset == "activitynet" if paragraphs is None else paragraphs
    report = ImportReport()
    if dst.exists() and not overwrite:
        raise VidretError(f"{dst} already exists; choose another folder or pass --overwrite.")
    if is_mmt_release(src):
        return _import_mmt_h5(src, dst, dataset, paragraphs, max_frames, overwrite, progress)

    caption_files = sorted(p for p in src.rglob("*") if _CAPTION_FILE.match(p.name))
    if not caption_files:
        raise VidretError(f"{src}: no raw-captions*.pkl found; is this an MMT/CE feature release?")
    captions = _read_captions(caption_files, paragraphs, report)
    video_ids = sorted(captions)
    row_of = {vid: i for i, vid in enumerate(video_ids)}

    expert_paths = _find_experts(src, set(caption_files))
    if not expert_paths:
        raise VidretError(f"{src}: no expert feature pickles found beside the captions")

    with dataset_folder(dst, overwrite=overwrite) as folder:
        for name, path in progress_bar(expert_paths.items(), enabled=progress, desc="experts"):
            report.experts[name] = _write_expert(path, name, row_of, max_frames, folder)
        for path in _text_feature_files(src):
            report.caption_features[path.stem] = _write_caption_features(
                path, video_ids, captions, paragraphs, folder
            )
        _copy_splits(src, folder, row_of, report)
        lists_dir = caption_files[0].parent  # CE keeps lists beside raw-captions.pkl
        splits, notes = protocol_splits(dataset, lists_dir, captions, load_pickle)
        report.skipped += notes
        _write_common(folder, src, dataset, "ce-pickles", paragraphs, captions, splits, report)
    return report


def _read_captions(
    files: list[Path], paragraphs: bool, report: ImportReport
) -> dict[str, list[str]]:
    captions: dict[str, list[str]] = {}
    for path in files:
        raw = load_pickle(path)
        if not isinstance(raw, dict):
            raise VidretError(
                f"{path}: expected a dict video_id -> captions, got {type(raw).__name__}"
            )
        for vid, caps in raw.items():
            bad_id = video_id_problem(vid)
            if bad_id:
                report.skipped.append(f"{path.name}: {bad_id}; the video is left out")
                continue
            if isinstance(caps, (str, bytes)) or (isinstance(caps, np.ndarray) and caps.ndim == 0):
                caps = [caps]
            if not isinstance(caps, (list, tuple, np.ndarray)):
                report.skipped.append(
                    f"{vid}: captions in {path.name} are a {type(caps).__name__}, "
                    "not a list of captions; the video is left out"
                )
                continue
            texts = [_caption_text(c, path, vid) for c in caps]
            texts = [t for t in texts if t]
            if not texts:
                report.skipped.append(f"{vid}: no non-empty caption in {path.name}")
                continue
            captions.setdefault(str(vid), []).extend(texts)
    if paragraphs:
        captions = {vid: [" ".join(_sentence(t) for t in texts)] for vid, texts in captions.items()}
    return captions


def _caption_text(caption: Any, path: Path, vid: str) -> str:
    """A caption is a list of words (tokens) or a string (bytes: UTF-8); "" otherwise."""
    if isinstance(caption, np.ndarray):
        caption = caption.tolist()
    if isinstance(caption, bytes):
        try:
            caption = caption.decode("utf-8")
        except UnicodeDecodeError as e:
            raise VidretError(
                f"{path}: a caption of video '{vid}' is not valid UTF-8 text ({e})"
            ) from None
    if isinstance(caption, str):
        return caption.strip()
    if isinstance(caption, (list, tuple)):
        return " ".join(_caption_text(w, path, vid) for w in caption).strip()
    return str(caption) if isinstance(caption, (int, float)) else ""


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _find_experts(src: Path, caption_files: set[Path]) -> dict[str, Path]:
    """Every other pickle is a video expert, named by its file stem (plus its folder if
    clashing), except caption-side data: CE's `aggregated_text_feats/` (word features of
    each caption) and protocol pickles such as `jsfusion_val_caption_idx.pkl`."""
    paths = sorted(
        p
        for p in src.rglob("*")
        if p.suffix in (".pkl", ".pickle") and p not in caption_files and not _caption_side(p, src)
    )
    stems = [p.stem for p in paths]
    given = {p: p.stem if stems.count(p.stem) == 1 else f"{p.parent.name}-{p.stem}" for p in paths}
    names = expert_file_names(given.values(), src)
    return {names[name]: p for p, name in given.items()}


def expert_file_names(experts: Any, src: Path) -> dict[str, str]:
    """Each expert's name as a dataset file stem: characters other than letters, digits,
    `_` and `-` become `_`, so `rgb.lengths` cannot land on `rgb`'s lengths file; two
    experts that would share a name are refused."""
    names: dict[str, str] = {}
    for expert in experts:
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", expert).strip("_") or "expert"
        clash = next((e for e, n in names.items() if n == name), None)
        if clash is not None:
            raise VidretError(
                f"{src}: experts '{clash}' and '{expert}' would both be written as "
                f"'{name}.npy'; rename one of them"
            )
        names[expert] = name
    return names


def _write_expert(
    path: Path, name: str, row_of: dict[str, int], max_frames: int, out: DatasetWriter
) -> dict[str, int]:
    raw = load_pickle(path)
    if not isinstance(raw, dict):
        raise VidretError(f"{path}: expected a dict video_id -> features, got {type(raw).__name__}")
    seqs: dict[int, np.ndarray] = {}
    dim = None
    for vid, value in raw.items():
        row = row_of.get(str(vid))
        if row is None:
            continue
        try:
            seq = _as_sequence(value)
        except (TypeError, ValueError) as e:  # ragged lists, dicts, strings
            raise VidretError(
                f"{path}: the features of video '{vid}' are not an array of numbers "
                f"({type(value).__name__}: {e})"
            ) from None
        if seq is None:
            continue
        if dim is None:
            dim = seq.shape[1]
        elif seq.shape[1] != dim:
            raise VidretError(
                f"{path}: video '{vid}' has feature dimension {seq.shape[1]}, others {dim}"
            )
        seqs[row] = _subsample(seq, max_frames)
    if dim is None:
        raise VidretError(f"{path}: no usable features for any captioned video")
    frames = max(len(s) for s in seqs.values())
    feats = out.expert_in_place(name, (len(row_of), frames, dim), np.float32)
    lengths = np.zeros(len(row_of), np.int64)
    for row, seq in seqs.items():
        feats[row, : len(seq)] = seq
        lengths[row] = len(seq)
    feats.flush()
    del feats
    out.companions(name, lengths=lengths)
    return {"dim": int(dim), "frames": int(frames), "videos_with_features": len(seqs)}


def _as_sequence(value: Any) -> np.ndarray | None:
    """`[frames, dim]` float32 with NaN rows dropped, or None when the expert is missing."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0 or arr.size == 0:
        return None  # a scalar NaN marks a missing expert in these releases
    if arr.ndim == 1:
        arr = arr[None, :]
    elif arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    arr = arr[np.isfinite(arr).all(axis=1)]
    return arr if arr.size else None


def _subsample(seq: np.ndarray, max_frames: int) -> np.ndarray:
    """Keep at most `max_frames` evenly spaced frames, in order."""
    return seq if len(seq) <= max_frames else seq[evenly_spaced(len(seq), max_frames)]


MAX_CAPTION_TOKENS = 30  # CE's max_tokens for text


def _text_feature_files(src: Path) -> list[Path]:
    """CE's per-caption word features: `aggregated_text_feats/<name>.pkl|pickle`."""
    return sorted(
        p for p in src.rglob("*") if p.suffix in (".pkl", ".pickle") and _in_text_feats(p, src)
    )


def _in_text_feats(path: Path, src: Path) -> bool:
    return any(
        part.startswith("aggregated_text_feats") for part in path.relative_to(src).parts[:-1]
    )


def _write_caption_features(
    path: Path,
    video_ids: list[str],
    captions: dict[str, list[str]],
    paragraphs: bool,
    out: Path,
) -> dict[str, int]:
    """`video -> [array [words, dim] per caption]` as `caption_features/<name>.npy`, rows in
    captions.jsonl order (a paragraph's captions stacked, as CE's `fuse_captions`)."""
    raw = load_pickle(path)
    if not isinstance(raw, dict):
        raise VidretError(f"{path}: expected a dict video_id -> word features per caption")
    rows: list[np.ndarray] = []
    for vid in video_ids:
        per_caption = raw.get(vid)
        if not isinstance(per_caption, (list, tuple)):
            raise VidretError(f"{path}: no list of caption features for video '{vid}'")
        try:
            arrays = [np.atleast_2d(np.asarray(a, np.float32)) for a in per_caption]
            arrays = [
                a.reshape(-1, a.shape[-1]) if a.size else np.zeros((0, a.shape[-1]), np.float32)
                for a in arrays
            ]
        except (TypeError, ValueError) as e:
            raise VidretError(
                f"{path}: the word features of video '{vid}' are not arrays of numbers ({e})"
            ) from None
        if paragraphs:
            arrays = [np.concatenate(arrays)] if arrays else []
        if len(arrays) != len(captions[vid]):
            raise VidretError(
                f"{path}: video '{vid}' has features of {len(arrays)} captions, its raw "
                f"captions {len(captions[vid])}: they must be in the same order"
            )
        rows += arrays
    dims = {a.shape[1] for a in rows if a.size}
    if not dims:
        raise VidretError(f"{path}: every caption's word features are empty")
    if len(dims) != 1:
        raise VidretError(f"{path}: word features of several dimensions {sorted(dims)}")
    dim = dims.pop()
    folder = out.caption_features_folder()
    tokens = min(MAX_CAPTION_TOKENS, max(len(a) for a in rows))
    feats = np.lib.format.open_memmap(
        folder / f"{path.stem}.npy", mode="w+", dtype=np.float16, shape=(len(rows), tokens, dim)
    )
    lengths = np.zeros(len(rows), np.int64)
    for i, a in enumerate(rows):
        lengths[i] = min(len(a), tokens)
        feats[i, : lengths[i]] = a[: lengths[i]]
    feats.flush()
    del feats
    np.save(lengths_file(folder, path.stem), lengths)
    return {"dim": int(dim), "tokens": int(tokens), "captions": len(rows)}


def _caption_side(path: Path, src: Path) -> bool:
    return _in_text_feats(path, src) or "caption_idx" in path.name


def _copy_splits(
    src: Path, out: DatasetWriter, row_of: dict[str, int], report: ImportReport
) -> None:
    for path in sorted(p for p in src.rglob("*.txt") if _SPLIT_FILE.match(p.name)):
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        known = [v for v in dict.fromkeys(ids) if v in row_of]
        if len(known) < len(ids):
            report.skipped.append(
                f"splits/{path.name}: {len(ids) - len(known)} ids without captions dropped"
            )
        if known:
            out.split(path.stem, known)
            report.splits[path.stem] = len(known)


def _import_mmt_h5(
    src: Path,
    dst: Path,
    dataset: str,
    paragraphs: bool,
    max_frames: int,
    overwrite: bool,
    progress: bool,
) -> ImportReport:
    """MMT's per-video HDF5 release: two passes, sizes first, so arrays are written in
    place (memory-mapped) however large the release."""
    report = ImportReport()
    files = video_files(src)
    captions: dict[str, list[str]] = {}
    sizes: dict[str, list[int]] = {}  # expert -> [dim, most features kept]
    for vid, path in progress_bar(files.items(), enabled=progress, desc="reading sizes"):
        bad_id = video_id_problem(vid)
        if bad_id:
            report.skipped.append(f"{path}: {bad_id}; the video is left out")
            continue
        texts, shapes = read_shapes(path)
        captions[vid] = [" ".join(_sentence(t) for t in texts)] if paragraphs else texts
        for expert, (n, dim) in shapes.items():
            have = sizes.setdefault(expert, [dim, 0])
            if have[0] != dim:
                raise VidretError(f"{path}: features.{expert} is {dim}-d, other videos {have[0]}-d")
            have[1] = max(have[1], min(n, max_frames))
    if not sizes:
        raise VidretError(f"{src}: no video has any features.<expert>")
    names = expert_file_names(sizes, src)
    sizes = {names[e]: size for e, size in sizes.items()}
    video_ids = sorted(captions)
    lists_dir = src / LISTS_DIR if (src / LISTS_DIR).is_dir() else src
    splits, notes = protocol_splits(dataset, lists_dir, captions, load_pickle)
    report.skipped += notes

    with dataset_folder(dst, overwrite=overwrite) as folder:
        arrays = {
            e: folder.expert_in_place(e, (len(video_ids), n, d), np.float32)
            for e, (d, n) in sizes.items()
        }
        lengths = {e: np.zeros(len(video_ids), np.int64) for e in sizes}
        times = {e: np.full((len(video_ids), n), np.nan, np.float32) for e, (_, n) in sizes.items()}
        for row, vid in enumerate(
            progress_bar(video_ids, enabled=progress, desc="importing videos")
        ):
            video = read_video(files[vid], max_frames)
            for expert, feats in video.features.items():
                name = names[expert]
                arrays[name][row, : len(feats)] = feats
                times[name][row, : len(feats)] = video.times[expert]
                lengths[name][row] = len(feats)
        for expert, array in arrays.items():
            array.flush()
            folder.companions(expert, lengths=lengths[expert], times=times[expert])
            report.experts[expert] = {
                "dim": sizes[expert][0],
                "frames": sizes[expert][1],
                "videos_with_features": int((lengths[expert] > 0).sum()),
            }
        del arrays
        _write_common(folder, src, dataset, "mmt-h5", paragraphs, captions, splits, report)
    return report


def _write_common(
    out: DatasetWriter,
    src: Path,
    dataset: str,
    layout: str,
    paragraphs: bool,
    captions: dict[str, list[str]],
    splits: dict[str, list[tuple[str, int | None]]],
    report: ImportReport,
) -> None:
    """videos.jsonl, captions.jsonl (sen_id numbers all captions, as MSR-VTT's own
    annotations do), the protocol splits and dataset.json, for either layout."""
    video_ids = sorted(captions)
    out.videos({"video_id": v, "source": dataset} for v in video_ids)
    rows = [
        {"video_id": vid, "sen_id": k, "caption": text}
        for k, (vid, text) in enumerate((v, t) for v in video_ids for t in captions[v])
    ]
    out.captions(rows)
    _write_protocol_splits(out, splits, report)
    report.videos, report.captions = len(video_ids), len(rows)
    out.metadata(
        {
            "name": f"{dataset} (imported from {src.name})",
            "generated": False,
            "source": str(src.resolve()),
            "importer": "vidret data import-mmt",
            "layout": layout,
            "paragraphs": paragraphs,
            "experts": {n: {"dim": r["dim"]} for n, r in report.experts.items()},
        },
    )


def _write_protocol_splits(
    out: DatasetWriter, splits: dict[str, list[tuple[str, int | None]]], report: ImportReport
) -> None:
    for name, rows in splits.items():
        out.split(name, [vid if k is None else f"{vid}\t{k}" for vid, k in rows])
        report.splits[name] = len(rows)
