"""Never encode the same input twice: an embedding cache shared by every entry point.

`encode(texts, cache=True)` looks each input up in the disk cache (`EmbeddingCache`, one SQLite
file in the user cache folder, shared by all processes on the machine) and encodes only what is
missing; `MemoryCache` keeps vectors in the process instead (the server's default). Entries are
keyed by the encoder's fingerprint (weights, parameters, learned state) and the input's bytes.

Where it is on by default, and why:
- the CLI (`encode`, `index`, `compare`, `plot`, `encode --engine ray`): reruns are the common
  case there; `--no-cache` turns it off;
- `embedcraft serve`: in memory (popular texts repeat); `--cache disk|off` changes it.
Off by default in the Python API: a library call that writes to the user's home folder, or a
timing loop that silently measures cache lookups, would surprise. Pass `cache=True`, a cache
object, or wrap code in `with caching():`.

What is cached: the vectors of encoders for which a lookup is cheaper than the computation
(`worth_caching`: transformers and image encoders). Static and sparse encoders compute a row
faster than SQLite finds one, and always bypass the cache.

Exactness: a cached vector is the one computed when the input was first seen, stored as its
float32 bytes. For deterministic encoders it equals a fresh computation byte for byte; for the
int8 `minilm-l6`, whose activation scales follow the batch, it is that first batch's vector
(cosine to a fresh one >= 0.98, typically > 0.999).
"""

from ..encoders.contract import CacheSetting
from ._disk import DEFAULT_MAX_BYTES, EmbeddingCache
from ._encode import cached_rows, caching, default_cache, encode_cached, resolve_cache
from ._memory import MemoryCache
from ._stats import CacheStats, VectorCache

__all__ = [
    "DEFAULT_MAX_BYTES",
    "CacheSetting",
    "CacheStats",
    "EmbeddingCache",
    "MemoryCache",
    "VectorCache",
    "cached_rows",
    "caching",
    "default_cache",
    "encode_cached",
    "resolve_cache",
]
