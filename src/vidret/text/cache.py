"""On-disk caches that belong to a dataset: text features, static expert vectors.

Entries are folders written atomically (a killed process leaves the previous entry or
none), keyed by model and by caption text: a text already encoded is never encoded
again, whichever dataset or split asks for it.

Where: `$VIDRET_CACHE_DIR/<dataset>` if set, else `<dataset>/cache` when the dataset
folder is writable, else `~/.cache/vidret/<dataset>` (read-only data, like ../shared). A
folder whose owner may not write it (mode r-x) counts as read-only even for root, who
could: its owner marked it as data not to be written into.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidret.cache_dir import user_cache_dir
from vidret.data.format import CACHE_DIR
from vidret.io import atomic_directory, save_npy_atomic, write_json_atomic
from vidret.progress import note
from vidret.text.model_key import model_key
from vidret.text.sentence_bert import EncodedTexts, encode_texts

_FORMAT = 1


def cache_root(dataset_root: Path) -> Path:
    dataset_root = dataset_root.resolve()
    tag = f"{dataset_root.name}-{hashlib.sha1(str(dataset_root).encode()).hexdigest()[:8]}"
    if os.environ.get("VIDRET_CACHE_DIR") or not _writable(dataset_root):
        return user_cache_dir() / tag
    return dataset_root / CACHE_DIR


def _writable(folder: Path) -> bool:
    try:
        owner_may_write = bool(folder.stat().st_mode & stat.S_IWUSR)
    except OSError:
        return False
    return owner_may_write and os.access(folder, os.W_OK)


@dataclass
class TextFeatureCache:
    """Text features of one model, one kind (sentence / tokens) and one token length."""

    folder: Path
    model_path: Path
    with_tokens: bool
    max_tokens: int

    @classmethod
    def for_dataset(
        cls, dataset_root: Path, model_path: Path, with_tokens: bool, max_tokens: int
    ) -> TextFeatureCache:
        kind = f"tokens-{max_tokens}" if with_tokens else "sentence"
        folder = cache_root(dataset_root) / "text" / model_key(model_path) / kind
        return cls(folder, model_path, with_tokens, max_tokens)

    def get(self, texts: list[str], progress: bool = True) -> EncodedTexts:
        """Features of `texts` (in order), encoding only those not cached yet."""
        known, stored = self._read()
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            if progress:  # minutes for a large dataset: say what happens, once
                what = "sentence and token features" if self.with_tokens else "sentence features"
                note(
                    f"encoding {len(missing)} captions ({what}) with Sentence-BERT; "
                    f"cached in {self.folder} for later runs",
                    err=True,
                )
            began = time.perf_counter()
            new = encode_texts(
                missing, self.model_path, self.with_tokens, self.max_tokens, progress=progress
            )
            stored = _concat(stored, new)
            order = [*known, *missing]
            self._write(order, stored)
            known = {t: i for i, t in enumerate(order)}
            if progress:
                seconds = time.perf_counter() - began
                note(f"encoded {len(missing)} captions in {seconds:.0f} s", err=True)
        rows = np.array([known[t] for t in texts], np.int64)
        return EncodedTexts(
            sentence=np.asarray(stored.sentence[rows]),
            tokens=None if stored.tokens is None else np.asarray(stored.tokens[rows]),
            lengths=None if stored.lengths is None else np.asarray(stored.lengths[rows]),
        )

    def _read(self) -> tuple[dict[str, int], EncodedTexts | None]:
        manifest = self.folder / "manifest.json"
        if not manifest.exists():
            return {}, None
        try:
            meta = json.loads(manifest.read_text())
            texts = json.loads((self.folder / "texts.json").read_text())
            sentence = np.load(self.folder / "sentence.npy", mmap_mode="r")
            tokens = lengths = None
            if self.with_tokens:
                tokens = np.load(self.folder / "tokens.npy", mmap_mode="r")
                lengths = np.load(self.folder / "lengths.npy")
        except (OSError, ValueError):
            return {}, None  # unreadable: rebuilt below, atomically replacing it
        counts = {meta.get("count"), len(texts), len(sentence)}
        if meta.get("format") != _FORMAT or len(counts) != 1:
            return {}, None  # inconsistent: rebuilt rather than trusted
        return {t: i for i, t in enumerate(texts)}, EncodedTexts(sentence, tokens, lengths)

    def _write(self, texts: list[str], enc: EncodedTexts) -> None:
        with atomic_directory(self.folder, overwrite=True) as tmp:
            save_npy_atomic(tmp / "sentence.npy", enc.sentence)
            if enc.tokens is not None:
                save_npy_atomic(tmp / "tokens.npy", enc.tokens)
                save_npy_atomic(tmp / "lengths.npy", enc.lengths)
            write_json_atomic(tmp / "texts.json", texts)
            write_json_atomic(
                tmp / "manifest.json",
                {
                    "format": _FORMAT,
                    "count": len(texts),
                    "model": str(self.model_path),
                    "with_tokens": self.with_tokens,
                    "max_tokens": self.max_tokens,
                },
            )


def _concat(old: EncodedTexts | None, new: EncodedTexts) -> EncodedTexts:
    if old is None:
        return new
    return EncodedTexts(
        sentence=np.concatenate([old.sentence, new.sentence]),
        tokens=None if new.tokens is None else np.concatenate([old.tokens, new.tokens]),
        lengths=None if new.lengths is None else np.concatenate([old.lengths, new.lengths]),
    )
