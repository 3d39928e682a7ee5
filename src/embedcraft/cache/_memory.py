"""An in-process embedding cache: least recently used entries go first past a size limit."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ..errors import InputError
from ._stats import CacheStats, Entry

__all__ = ["MemoryCache"]

_ENTRY_OVERHEAD = 120
"""Bytes an entry costs beyond its key and vector (dict slot, tuple, bytes headers)."""


class MemoryCache:
    """Vectors kept in this process (the server's default): fast, gone when it exits.

    `max_bytes` bounds what the entries hold (vectors, keys and per-entry overhead); past it,
    the least recently used entries are dropped.
    """

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise InputError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def lookup(self, keys: Sequence[bytes]) -> dict[bytes, Entry]:
        found: dict[bytes, Entry] = {}
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    found[key] = entry
        return found

    def store(self, keys: Sequence[bytes], entries: Sequence[Entry]) -> int:
        new = 0
        with self._lock:
            for key, entry in zip(keys, entries, strict=True):
                if key in self._entries:
                    continue
                self._entries[key] = entry
                self._bytes += len(key) + len(entry[0]) + _ENTRY_OVERHEAD
                new += 1
            while self._bytes > self.max_bytes and self._entries:
                key, (vector, _) = self._entries.popitem(last=False)
                self._bytes -= len(key) + len(vector) + _ENTRY_OVERHEAD
        return new

    def info(self) -> dict[str, Any]:
        with self._lock:
            entries, held = len(self._entries), self._bytes
        return {
            "kind": "memory",
            "entries": entries,
            "bytes": held,
            "max_bytes": self.max_bytes,
            "stats": self.stats.as_dict(),
        }

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            self._bytes = 0
        return count
