"""An LRU cache of query embeddings, shared by a server's concurrent requests.

A search page sends the same queries again and again (paging, a shared link, a popular
term); a hit skips the caption encoder, most of a query's cost. Keyed by the cleaned
query text: the embedding depends on nothing else for a given index.
"""

from __future__ import annotations

import threading

import numpy as np
from cachetools import LRUCache

# per query: its per-expert vectors [experts, dim] and weights [experts]
CachedEmbedding = tuple[np.ndarray, np.ndarray]


class QueryCache:
    def __init__(self, size: int):
        self.size = size
        self._lru: LRUCache[str, CachedEmbedding] | None = LRUCache(size) if size > 0 else None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, query: str) -> CachedEmbedding | None:
        if self._lru is None:
            self.misses += 1
            return None
        with self._lock:
            found = self._lru.get(query)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def put(self, query: str, embedding: CachedEmbedding) -> None:
        if self._lru is not None:
            with self._lock:
                self._lru[query] = embedding
