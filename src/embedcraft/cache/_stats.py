"""What every embedding cache shares: the interface encoders call, and its running counts."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["CacheStats", "Entry", "VectorCache"]

Entry = tuple[bytes, int]
"""One cached vector: its float32 bytes and its flags (see `embedcraft.cache._encode`)."""


@dataclass
class CacheStats:
    """Counts since this cache object was made: inputs served from it (`hits`), inputs
    encoded (`misses`), vectors written, and the encoding time the hits saved (each hit
    valued at the mean time one miss took to encode)."""

    hits: int = 0
    misses: int = 0
    stored: int = 0
    encode_seconds: float = 0.0
    """Time spent encoding the misses."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, hits: int, misses: int, seconds: float, stored: int) -> None:
        """Count one cached encode: `seconds` is what encoding its misses took."""
        with self._lock:
            self.hits += hits
            self.misses += misses
            self.stored += stored
            self.encode_seconds += seconds

    @property
    def seconds_saved(self) -> float:
        """Hits times the mean encode time of a miss (0 before the first miss)."""
        return self.hits * self.encode_seconds / self.misses if self.misses else 0.0

    @property
    def hit_rate(self) -> float:
        """Share of inputs served from the cache."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The counts, JSON-ready (for /health and `embedcraft cache info`)."""
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": round(self.hit_rate, 4),
                "stored": self.stored,
                "encode_seconds": round(self.encode_seconds, 3),
                "seconds_saved": round(self.seconds_saved, 3),
            }


@runtime_checkable
class VectorCache(Protocol):
    """A store of vectors by key, safe to share between threads. Keys are 16-byte digests of
    (encoder fingerprint, input); see `embedcraft.cache._encode`."""

    stats: CacheStats

    def lookup(self, keys: Sequence[bytes]) -> dict[bytes, Entry]:
        """The entries found among `keys` (absent keys are left out)."""
        ...

    def store(self, keys: Sequence[bytes], entries: Sequence[Entry]) -> int:
        """Keep `entries` under `keys`; returns how many were new."""
        ...

    def info(self) -> dict[str, Any]:
        """Where it is, what it holds, its limit, and `stats`."""
        ...

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        ...
