"""A sentence-transformers model's tokenization under the `tokenizers` library alone.

Search embeds queries without sentence-transformers, transformers or PyTorch: the model
folder's `tokenizer.json` does the tokenization, called as sentence-transformers calls it
(longest-first truncation at `max_seq_length`, special tokens added, padded to the
longest text of the batch). Tested equal to `SentenceTransformer.preprocess`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

# texts -> {"input_ids", "attention_mask"} as int64 arrays [texts, tokens]
Tokenize = Callable[[list[str]], dict[str, np.ndarray]]


def fast_tokenizer(
    tokenizer_file: Path,
    max_seq_length: int,
    do_lower_case: bool,
    min_length: int = 0,
    add_special_tokens: bool = True,
    drop_token_id: int | None = None,
) -> Tokenize:
    """`min_length`: pad every batch to at least this many tokens (a model that reads a
    fixed number of token features sees the padding it was trained with).
    `add_special_tokens` False and `drop_token_id` (masked out wherever it occurs): as
    model2vec tokenizes for a static model (no [CLS]/[SEP], unknown tokens dropped)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(max_length=max_seq_length)
    pad = tokenizer.padding or {}
    pad_id = pad.get("pad_id", 0)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad.get("pad_token", "[PAD]"))

    def tokenize(texts: list[str]) -> dict[str, np.ndarray]:
        texts = [t.strip() for t in texts]
        if do_lower_case:
            texts = [t.lower() for t in texts]
        encoded = tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
        ids = np.array([e.ids for e in encoded], np.int64)
        mask = np.array([e.attention_mask for e in encoded], np.int64)
        if drop_token_id is not None:
            mask[ids == drop_token_id] = 0
        short = min_length - ids.shape[1]
        if short > 0:
            ids = np.pad(ids, ((0, 0), (0, short)), constant_values=pad_id)
            mask = np.pad(mask, ((0, 0), (0, short)))
        return {"input_ids": ids, "attention_mask": mask}

    return tokenize
