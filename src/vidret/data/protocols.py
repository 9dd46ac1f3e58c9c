"""The field's evaluation protocols as named splits, from the lists the releases ship.

Which list is which follows the reference loaders (gabeur/mmt `data_loader/*_dataset.py`,
albanie/collaborative-experts `data_loader/*_dataset.py`):

- MSR-VTT 1k-A (JSFusion): `1k-A_train` (9,000) from `train_list_jsfusion.txt`, and
  `1k-A_test` (1,000 videos, one caption each) from `val_list_jsfusion.txt` with
  `jsfusion_val_caption_idx.pkl`.
- MSR-VTT 1k-B (Miech): `1k-B_train`, `1k-B_test` from `train_list_miech.txt`,
  `test_list_miech.txt`; the **first** caption of each test video scored, as both
  references do ("we follow Antoine's approach of using the first text caption": MMT's
  `captions_per_video` 1 keeps `captions[:1]`; CE's `num_test_captions` 1, which
  `train-miech-ce.json` inherits).
- MSR-VTT full: `full_train` (6,513), `full_val` (497), `full_test` (2,990) from MMT's
  `train_list.txt`, `val_list.txt`, `test_list.txt` or CE's `*_list_full.txt`, under both
  conventions: `full_val` / `full_test` score all 20 captions (CE's evaluation,
  `num_test_captions` 20), `full-first_val` / `full-first_test` the first (MMT's default
  `captions_per_video` 1). Which one a number used is in its split's name.
- ActivityNet paragraphs: `train`, `val1` from `train_list.txt`, `val_1_list.txt`.
- LSMDC: `train`, `test` (1,000) from `LSMDC16_annos_training.csv` and
  `LSMDC16_challenge_1000_publictect.csv` (tab-separated, the id first).

`jsfusion_val_caption_idx.pkl` maps each 1k-A test video to the index of the caption
scored (MMT and CE keep `captions[idx]`); the split line is `video<TAB>idx`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vidret.errors import VidretError

CAPTION_INDEX_FILE = "jsfusion_val_caption_idx.pkl"


@dataclass(frozen=True)
class ProtocolSplit:
    name: str  # the named split written (splits/<name>.txt)
    sources: tuple[str, ...]  # list files that may hold it, in the release's own names
    caption_index: bool = False  # one scored caption per video, from CAPTION_INDEX_FILE
    first_caption: bool = False  # only each video's first caption is scored


PROTOCOLS: dict[str, tuple[ProtocolSplit, ...]] = {
    "msrvtt": (
        ProtocolSplit("1k-A_train", ("train_list_jsfusion.txt",)),
        ProtocolSplit("1k-A_test", ("val_list_jsfusion.txt",), caption_index=True),
        ProtocolSplit("1k-B_train", ("train_list_miech.txt",)),
        ProtocolSplit("1k-B_test", ("test_list_miech.txt",), first_caption=True),
        ProtocolSplit("full_train", ("train_list.txt", "train_list_full.txt")),
        ProtocolSplit("full_val", ("val_list.txt", "val_list_full.txt")),
        ProtocolSplit("full_test", ("test_list.txt", "test_list_full.txt")),
        ProtocolSplit("full-first_val", ("val_list.txt", "val_list_full.txt"), first_caption=True),
        ProtocolSplit(
            "full-first_test", ("test_list.txt", "test_list_full.txt"), first_caption=True
        ),
    ),
    "activitynet": (
        ProtocolSplit("train", ("train_list.txt",)),
        ProtocolSplit("val1", ("val_1_list.txt",)),
    ),
    "lsmdc": (
        ProtocolSplit("train", ("LSMDC16_annos_training.csv",)),
        ProtocolSplit("test", ("LSMDC16_challenge_1000_publictect.csv",)),
    ),
}


def read_list(path: Path) -> list[str]:
    """Video ids of a list file: one a line (.txt), or the first tab-separated field (.csv)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise VidretError(f"{path}: not UTF-8 text ({e})") from None
    ids = []
    for line in text.splitlines():
        field = line.split("\t")[0].strip() if path.suffix == ".csv" else line.strip()
        if field:
            ids.append(field)
    return ids


def protocol_splits(
    dataset: str,
    lists_dir: Path,
    captions: dict[str, list[str]],
    load_pickle: Callable[[Path], object],
) -> tuple[dict[str, list[tuple[str, int | None]]], list[str]]:
    """`name -> [(video id, scored caption or None)]` for each protocol whose lists exist,
    and notes on what was dropped (ids without captions in the release)."""
    splits: dict[str, list[tuple[str, int | None]]] = {}
    notes: list[str] = []
    for split in PROTOCOLS[dataset]:
        found = [lists_dir / s for s in split.sources if (lists_dir / s).is_file()]
        if not found:
            continue
        ids = list(dict.fromkeys(read_list(found[0])))
        choice: dict[str, int] = {}
        if split.caption_index:
            choice = _caption_index(lists_dir / CAPTION_INDEX_FILE, load_pickle)
        rows: list[tuple[str, int | None]] = []
        for vid in ids:
            if vid not in captions:
                continue
            k = choice.get(vid) if split.caption_index else (0 if split.first_caption else None)
            if split.caption_index and k is None:
                raise VidretError(
                    f"{lists_dir / CAPTION_INDEX_FILE}: no caption index for 1k-A test video "
                    f"'{vid}'"
                )
            if k is not None and not 0 <= k < len(captions[vid]):
                raise VidretError(
                    f"{lists_dir / CAPTION_INDEX_FILE}: caption {k} of '{vid}', which has "
                    f"{len(captions[vid])}"
                )
            rows.append((vid, k))
        if len(rows) < len(ids):
            notes.append(
                f"{split.name}: {len(ids) - len(rows)} of {len(ids)} ids in {found[0].name} "
                "have no captions in the release and were left out"
            )
        splits[split.name] = rows
    return splits, notes


def _caption_index(path: Path, load_pickle: Callable[[Path], object]) -> dict[str, int]:
    if not path.is_file():
        raise VidretError(
            f"{path}: missing; the 1k-A protocol scores the caption it names for each test "
            "video (it ships with the MMT and CE MSR-VTT releases)"
        )
    index = load_pickle(path)
    if not isinstance(index, dict):
        raise VidretError(f"{path}: expected a dict video id -> caption index")
    try:
        return {str(k): int(v) for k, v in index.items()}
    except (TypeError, ValueError) as e:
        raise VidretError(f"{path}: caption indices must be integers ({e})") from None
