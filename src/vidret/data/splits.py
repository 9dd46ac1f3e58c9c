"""Splits: named lists of video ids, and seeded random splits made on the fly.

Random splits order the videos by a SHA-256 hash of `(seed, video_id)` rather than by a
random number generator, so the same seed gives the same split on every machine, every
NumPy version and whatever the order of `videos.jsonl`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from vidret.data.format import SPLITS_DIR
from vidret.errors import Problem, VidretError

SPLIT_PARTS = ("train", "val", "test")


def read_named_splits(
    root: Path, known_ids: set[str], problems: list[Problem]
) -> dict[str, list[str]]:
    """Read every `splits/<name>.txt`, recording unknown or repeated ids and bad lines.

    A line is a video id, or a video id, a tab and K: then only that video's K-th caption
    (from 0, in captions.jsonl order) is scored when the split is evaluated, as MSR-VTT
    1k-A scores one caption per test video (`read_split_choices` keeps the K)."""
    return {
        name: list(choice) for name, choice in read_split_choices(root, known_ids, problems).items()
    }


def scored_captions(root: Path, name: str) -> dict[str, int | None]:
    """`video id -> K` for `splits/<name>.txt` (None: all the video's captions are scored)."""
    problems: list[Problem] = []
    return _read_one(root / SPLITS_DIR / f"{name}.txt", None, problems)


def read_split_choices(
    root: Path, known_ids: set[str], problems: list[Problem]
) -> dict[str, dict[str, int | None]]:
    """Every named split as `video id -> K` (None: all its captions are scored)."""
    folder = root / SPLITS_DIR
    if not folder.is_dir():
        return {}
    return {p.stem: _read_one(p, known_ids, problems) for p in sorted(folder.glob("*.txt"))}


def _read_one(
    path: Path, known_ids: set[str] | None, problems: list[Problem]
) -> dict[str, int | None]:
    rel = f"{SPLITS_DIR}/{path.name}"
    chosen: dict[str, int | None] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, text in enumerate(f, start=1):
            fields = text.strip().split("\t")
            vid = fields[0].strip()
            if not vid:
                continue
            caption: int | None = None
            if len(fields) > 2 or (len(fields) == 2 and not fields[1].strip().isdigit()):
                problems.append(
                    Problem(
                        rel, "expected a video id, optionally a tab and a caption number", line_no
                    )
                )
                continue
            if len(fields) == 2:
                caption = int(fields[1])
            if known_ids is not None and vid not in known_ids:
                problems.append(Problem(rel, f"unknown video id '{vid}'", line_no))
            elif vid in chosen:
                problems.append(Problem(rel, f"video id '{vid}' listed twice", line_no))
            else:
                chosen[vid] = caption
    return chosen


def load_named_split(root: Path, name: str, known_ids: set[str]) -> list[str]:
    """The video ids of `splits/<name>.txt`, or a clear error naming the splits available."""
    path = root / SPLITS_DIR / f"{name}.txt"
    if not path.exists():
        have = sorted(p.stem for p in (root / SPLITS_DIR).glob("*.txt"))
        raise VidretError(
            f"{root}: no split named '{name}' ({SPLITS_DIR}/{name}.txt); "
            f"available: {', '.join(have) or 'none'}. Use 'all' or a random split instead."
        )
    problems: list[Problem] = []
    ids = list(_read_one(path, known_ids, problems))
    if problems:
        raise VidretError("\n".join(str(p) for p in problems))
    return ids


def parse_split_sizes(text: str) -> tuple[float, ...]:
    """Parse '600/100/100' (counts) or '0.8/0.1/0.1' (fractions) into numbers."""
    try:
        sizes = tuple(float(part) for part in text.split("/"))
    except ValueError:
        raise VidretError(
            f"split sizes '{text}' must be numbers separated by '/', e.g. 600/100/100 "
            "or 0.8/0.1/0.1"
        ) from None
    if len(sizes) != len(SPLIT_PARTS) or any(s < 0 for s in sizes):
        raise VidretError(f"split sizes '{text}' need three non-negative parts: train/val/test")
    return sizes


def resolve_split_counts(sizes: Sequence[float], num_videos: int) -> tuple[int, int, int]:
    """Turn counts or fractions into counts that fit `num_videos`.

    Fractions (all parts <= 1) are rounded down for val and test; train takes the rest of
    their total, so 0.8/0.1/0.1 of 1000 is exactly 800/100/100.
    """
    if all(s <= 1 for s in sizes):
        if sum(sizes) > 1 + 1e-9:
            raise VidretError(f"split fractions {list(sizes)} add up to more than 1")
        val = int(sizes[1] * num_videos + 1e-9)
        test = int(sizes[2] * num_videos + 1e-9)
        train = round(sum(sizes) * num_videos) - val - test
        counts = (train, val, test)
    else:
        if any(s != int(s) for s in sizes):
            raise VidretError(f"split counts {list(sizes)} must be whole numbers")
        counts = tuple(int(s) for s in sizes)
    if sum(counts) > num_videos:
        raise VidretError(
            f"split of {counts[0]}/{counts[1]}/{counts[2]} videos needs {sum(counts)}, "
            f"but the dataset has {num_videos}"
        )
    return counts  # type: ignore[return-value]


def random_split(
    video_ids: Sequence[str], sizes: Sequence[float], seed: int
) -> dict[str, list[str]]:
    """Split videos into train/val/test of the given counts or fractions, by seed.

    The ordering depends only on the seed and the ids, so it repeats on any machine.
    """
    counts = resolve_split_counts(sizes, len(video_ids))
    order = sorted(video_ids, key=lambda vid: _hash_key(seed, vid))
    out: dict[str, list[str]] = {}
    start = 0
    for part, count in zip(SPLIT_PARTS, counts, strict=True):
        out[part] = order[start : start + count]
        start += count
    return out


def cross_validation_fold(
    parts: dict[str, list[str]], folds: int, fold: int, seed: int
) -> dict[str, list[str]]:
    """Fold `fold` of a K-fold cross-validation over the training videos: the train and
    val parts together, in a seeded order, cut into `folds` near-equal folds; this fold
    is the validation part, the others train. The test part is left as it is."""
    if folds < 2:
        raise VidretError(f"data.folds={folds}: cross-validation needs at least 2 folds")
    if not 0 <= fold < folds:
        raise VidretError(f"data.fold={fold}: choose 0 to {folds - 1} (data.folds={folds})")
    pool = sorted(parts["train"] + parts["val"], key=lambda vid: _hash_key(seed, vid))
    if len(pool) < folds:
        raise VidretError(f"{len(pool)} training videos cannot make {folds} folds")
    bounds = [round(i * len(pool) / folds) for i in range(folds + 1)]
    val = pool[bounds[fold] : bounds[fold + 1]]
    return {"train": pool[: bounds[fold]] + pool[bounds[fold + 1] :], "val": val,
            "test": parts["test"]}  # fmt: skip


def _hash_key(seed: int, video_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{video_id}".encode()).digest()


def resolve_split(
    root: Path,
    video_ids: Sequence[str],
    kind: str,
    sizes: str = "600/100/100",
    seed: int = 0,
    names: dict[str, str] | None = None,
) -> dict[str, list[str]]:
    """train/val/test video ids for a run: `random` (seeded), `named` files, or `all`.

    `all` trains on every video and has no val or test part.
    """
    if kind == "all":
        return {"train": list(video_ids), "val": [], "test": []}
    if kind == "random":
        return random_split(video_ids, parse_split_sizes(sizes), seed)
    if kind == "named":
        names = names or {p: p for p in SPLIT_PARTS}
        known = set(video_ids)
        return {
            part: load_named_split(root, names[part], known) if part in names else []
            for part in SPLIT_PARTS
        }
    raise VidretError(f"data.split={kind!r}: use random, named or all")
