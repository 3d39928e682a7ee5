"""Encoding through a cache: look every input up, encode only what is missing, keep it.

An entry's key is the 16-byte BLAKE2b digest of the input's bytes (a text's UTF-8, an image's
file content), keyed with a digest of the encoder's fingerprint and the embedcraft version: the
same input through an encoder with other weights, parameters or learned state is another entry.
Inputs repeated within one call are encoded once. What the report says about inputs served from
the cache: their count (`cached`), which were truncated (kept with the vector), and which are
empty (zero vectors); their token counts are not repeated.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .._cache import cache_dir
from ..errors import EmbedcraftError, InputError
from ._disk import FILE_NAME, EmbeddingCache
from ._stats import Entry, VectorCache

if TYPE_CHECKING:
    from ..encoders.base import BaseEncoder
    from ..encoders.contract import CacheSetting, Encoded

__all__ = ["cached_rows", "caching", "default_cache", "encode_cached", "resolve_cache"]


log = logging.getLogger("embedcraft")

_TRUNCATED = 1
_CHUNKED = 2
_MAX_TOKENS_SHIFT = 8

_IN_FORCE: contextvars.ContextVar[VectorCache | None] = contextvars.ContextVar(
    "embedcraft_cache", default=None
)
_DEFAULTS: dict[str, EmbeddingCache] = {}
_DEFAULTS_LOCK = threading.Lock()


def default_cache() -> EmbeddingCache:
    """The disk cache in the user cache folder, opened once per process."""
    path = str(cache_dir("embeddings") / FILE_NAME)
    with _DEFAULTS_LOCK:
        cache = _DEFAULTS.get(path)
        if cache is None:
            cache = _DEFAULTS[path] = EmbeddingCache(path)
        return cache


def resolve_cache(setting: CacheSetting) -> VectorCache | None:
    """The cache an `encode(..., cache=setting)` call uses, or None."""
    if setting is None:
        return _IN_FORCE.get()
    if setting is True:
        try:
            return default_cache()
        except (EmbedcraftError, OSError, sqlite3.Error) as exc:  # e.g. a read-only home folder
            log.warning("the embedding cache cannot be opened (%s): encoding without it", exc)
            return None
    if setting is False:
        return None
    if isinstance(setting, VectorCache):
        return setting
    raise InputError(
        f"cache must be True, False, None or a cache object (EmbeddingCache, MemoryCache), "
        f"got {type(setting).__name__}"
    )


@contextlib.contextmanager
def caching(setting: CacheSetting = True) -> Iterator[VectorCache | None]:
    """Within the block, every `encode` that is not told otherwise uses this cache (True: the
    default disk cache; False or None: none). What the CLI wraps around a command."""
    cache = resolve_cache(setting) if setting is not None else None
    token = _IN_FORCE.set(cache)
    try:
        yield cache
    finally:
        _IN_FORCE.reset(token)


def _key_prefix(encoder: BaseEncoder) -> bytes:
    from .. import __version__

    text = f"embedcraft {__version__}|{encoder.fingerprint()}"
    return hashlib.blake2b(text.encode(), digest_size=32).digest()


def _keys(encoder: BaseEncoder, items: list[Any]) -> list[bytes | None]:
    """Each input's entry key (None: not cacheable)."""
    prefix = _key_prefix(encoder)
    keys: list[bytes | None] = []
    for item in items:
        raw = encoder.cache_key_bytes(item)
        digest = None if raw is None else hashlib.blake2b(raw, digest_size=16, key=prefix)
        keys.append(None if digest is None else digest.digest())
    return keys


def cached_rows(
    encoder: BaseEncoder, items: list[Any], cache: VectorCache
) -> dict[int, np.ndarray]:
    """The vectors `cache` holds for `items`, by position (counted as hits): for a caller that
    schedules only the rest (the server leaves them out of its model runs)."""
    if not getattr(encoder, "worth_caching", False):
        return {}
    keys = _keys(encoder, items)
    found = _lookup(cache, keys)
    rows = {
        i: np.frombuffer(found[k][0], dtype=np.float32)
        for i, k in enumerate(keys)
        if k is not None and k in found
    }
    cache.stats.record(len(rows), 0, 0.0, 0)
    return rows


def encode_cached(
    encoder: BaseEncoder,
    items: list[Any],
    cache: VectorCache,
    run: Callable[[list[Any]], Encoded],
) -> Encoded:
    """`run(items)` through `cache`: only inputs not found are passed to `run` (once each),
    and their vectors are kept (not those of inputs that failed to read)."""
    from ..encoders.contract import Encoded, EncodeReport

    keys = _keys(encoder, items)
    found = _lookup(cache, keys)
    first: dict[bytes, int] = {}
    todo: list[int] = []
    for position, key in enumerate(keys):
        if key is None:
            todo.append(position)
        elif key not in found and key not in first:
            first[key] = position
            todo.append(position)
    t0 = time.perf_counter()
    fresh = run([items[i] for i in todo]) if todo else None
    seconds = time.perf_counter() - t0

    fresh_entries: dict[bytes, Entry] = {}
    failed: dict[int, str] = {}
    if fresh is not None:
        vectors = np.ascontiguousarray(fresh.vectors, dtype=np.float32)
        truncated = set(fresh.report.truncated)
        base = (_CHUNKED if fresh.report.chunked else 0) | (
            fresh.report.max_tokens << _MAX_TOKENS_SHIFT
        )
        failed = {todo[i]: why for i, why in fresh.report.failed.items()}
        for i, position in enumerate(todo):
            key = keys[position]
            if key is None or i in fresh.report.failed:
                continue
            flags = base | (_TRUNCATED if i in truncated else 0)
            fresh_entries[key] = (vectors[i].tobytes(), flags)
    stored = _store(cache, fresh_entries)

    width = _width(encoder, found, fresh)
    out = np.empty((len(items), width), dtype=np.float32)
    if fresh is not None:
        out[todo] = fresh.vectors
    encoded = set(todo)
    served = [p for p in range(len(items)) if keys[p] is not None and p not in encoded]
    report_truncated = [todo[i] for i in fresh.report.truncated] if fresh else []
    max_tokens = fresh.report.max_tokens if fresh else 0
    chunked = bool(fresh and fresh.report.chunked)
    empty = 0
    for position in served:
        key = keys[position]
        assert key is not None
        vector, flags = found[key] if key in found else fresh_entries[key]
        row = np.frombuffer(vector, dtype=np.float32)
        if len(row) != width:
            raise InputError(
                f"the embedding cache holds a {len(row)}-wide vector for a {width}-wide encoder "
                f"{encoder.name!r}: clear it with `embedcraft cache clear`"
            )
        out[position] = row
        empty += not row.any()
        if flags & _TRUNCATED:
            report_truncated.append(position)
        chunked = chunked or bool(flags & _CHUNKED)
        max_tokens = max(max_tokens, flags >> _MAX_TOKENS_SHIFT)
    cache.stats.record(len(served), len(todo), seconds, stored)
    fresh_report = fresh.report if fresh is not None else EncodeReport()
    report = EncodeReport(
        inputs=len(items),
        tokens=fresh_report.tokens,
        oov_tokens=fresh_report.oov_tokens,
        empty_inputs=fresh_report.empty_inputs + empty,
        truncated=sorted(report_truncated),
        max_tokens=max_tokens,
        chunked=chunked,
        failed=failed,
        cached=len(served),
    )
    return Encoded(out, report)


def _lookup(cache: VectorCache, keys: list[bytes | None]) -> dict[bytes, Entry]:
    """What the cache holds for `keys`; nothing when it cannot be read (the inputs are then
    encoded: a cache never fails an encode)."""
    try:
        return cache.lookup(list({k for k in keys if k is not None}))
    except (EmbedcraftError, OSError, sqlite3.Error) as exc:
        log.warning("embedding cache lookup failed (%s): encoding without it", exc)
        return {}


def _store(cache: VectorCache, entries: dict[bytes, Entry]) -> int:
    """Keep `entries`; a cache that cannot be written (a full disk) loses only the entries."""
    if not entries:
        return 0
    try:
        return cache.store(list(entries), list(entries.values()))
    except (EmbedcraftError, OSError, sqlite3.Error) as exc:
        log.warning("embedding cache write failed (%s): vectors returned, not kept", exc)
        return 0


def _width(encoder: BaseEncoder, found: dict[bytes, Entry], fresh: Encoded | None) -> int:
    if fresh is not None:
        return int(fresh.vectors.shape[1])
    if found:
        return len(next(iter(found.values()))[0]) // 4
    return int(encoder.dim)
