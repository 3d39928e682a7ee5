"""The on-disk embedding cache: one SQLite file in the user cache folder, shared by every
process on the machine (CLI runs, collections, Ray workers, servers), bounded in size.

Entries are (16-byte key, float32 vector bytes, flags, last use). Writers take SQLite's write
lock for one short transaction per batch (readers never wait in WAL mode), so several processes
may fill the same cache at once: an entry another process wrote first is kept, nothing is lost
or half written. Past `max_bytes` of vectors and keys, the least recently used entries go; a
lookup refreshes an entry's last use at most once a minute, so reads rarely write.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._cache import cache_dir
from .._sqlite import ensure_schema, open_wal, transaction
from ..errors import CorruptFileError, InputError
from ._stats import CacheStats, Entry

__all__ = ["DEFAULT_MAX_BYTES", "EmbeddingCache"]

log = logging.getLogger("embedcraft")

DEFAULT_MAX_BYTES = 4 << 30
"""The default limit on what entries hold (vectors and keys): 4 GiB, ~2.7M 384-dim vectors."""

FILE_NAME = "embeddings.sqlite"
FORMAT = "embedcraft-embedding-cache/1"
_CHUNK = 500
"""Keys per SELECT (under SQLite's limit on bound parameters)."""
_REFRESH_S = 60
"""A hit rewrites an entry's last use only when it is older than this."""
_EVICT_TO = 0.9
"""Eviction frees down to this share of `max_bytes`, so it does not run on every write."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key BLOB PRIMARY KEY, vector BLOB NOT NULL, flags INTEGER NOT NULL, used INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_use ON entries (used);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 0), entries INTEGER NOT NULL, bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (0, 0, 0);
"""


class EmbeddingCache:
    """Vectors on disk, by key, shared between processes (see the module docstring).

    `path` is the database file (default: `embeddings.sqlite` in the user cache folder, which
    `EMBEDCRAFT_CACHE` moves). A damaged file is set aside as `<name>.damaged` and a new one
    started: a cache holds nothing that cannot be computed again.
    """

    def __init__(self, path: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise InputError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        self.path = Path(path) if path is not None else cache_dir("embeddings") / FILE_NAME
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._conn = self._open()

    # ----------------------------------------------------------------- opening
    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if not self.path.is_file():
                raise CorruptFileError(
                    f"{self.path}: cannot open the embedding cache ({exc})"
                ) from None
            aside = self.path.with_name(self.path.name + ".damaged")
            log.warning(
                "the embedding cache %s is damaged (%s): moved to %s, starting a new one",
                self.path,
                exc,
                aside.name,
            )
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        # 16 KiB pages hold ten 384-dim vectors (96% full) and no vector under 4,000 dims
        # spills into overflow pages
        conn = open_wal(self.path, timeout=120, page_size=16384)
        try:
            found = ensure_schema(conn, _SCHEMA, FORMAT)
        except BaseException:
            conn.close()
            raise
        if found != FORMAT:
            conn.close()
            raise CorruptFileError(
                f"{self.path}: embedding cache format {found!r}, this version reads {FORMAT}; "
                "run `embedcraft cache clear` or remove the file"
            )
        return conn

    def close(self) -> None:
        """Close the database (the object is unusable afterwards)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A copy in another process (a Ray worker) opens the same file."""
        self.__init__(state["path"], state["max_bytes"])  # type: ignore[misc]

    # ----------------------------------------------------------------- the cache
    def lookup(self, keys: Sequence[bytes]) -> dict[bytes, Entry]:
        found: dict[bytes, Entry] = {}
        stale: list[bytes] = []
        now = int(time.time())
        with self._lock:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, vector, flags, used FROM entries WHERE key IN ({marks})", chunk
                ).fetchall()
                for key, vector, flags, used in rows:
                    found[key] = (vector, flags)
                    if used < now - _REFRESH_S:
                        stale.append(key)
            if stale:
                self._refresh(stale, now)
        return found

    def _refresh(self, keys: list[bytes], now: int) -> None:
        try:
            with transaction(self._conn):
                self._conn.executemany(
                    "UPDATE entries SET used = ? WHERE key = ?", [(now, k) for k in keys]
                )
        except sqlite3.OperationalError as exc:  # busy past the timeout: the entries stay
            log.debug("embedding cache: last-use refresh skipped (%s)", exc)

    def store(self, keys: Sequence[bytes], entries: Sequence[Entry]) -> int:
        if len(keys) != len(entries):
            raise InputError(f"{len(keys)} keys but {len(entries)} entries")
        now = int(time.time())
        with self._lock, transaction(self._conn):
            present: set[bytes] = set()
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                present.update(
                    row[0]
                    for row in self._conn.execute(
                        f"SELECT key FROM entries WHERE key IN ({marks})", chunk
                    )
                )
            rows, size = [], 0
            for key, (vector, flags) in zip(keys, entries, strict=True):
                if key in present:
                    continue
                present.add(key)
                rows.append((key, vector, flags, now))
                size += len(key) + len(vector)
            self._conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", rows)
            self._conn.execute(
                "UPDATE totals SET entries = entries + ?, bytes = bytes + ? WHERE id = 0",
                (len(rows), size),
            )
            self._evict()
        return len(rows)

    def _evict(self) -> None:
        """Inside a write: drop the least recently used entries past `max_bytes`."""
        (held,) = self._conn.execute("SELECT bytes FROM totals WHERE id = 0").fetchone()
        if held <= self.max_bytes:
            return
        excess = held - int(self.max_bytes * _EVICT_TO)
        (entries,) = self._conn.execute("SELECT entries FROM totals WHERE id = 0").fetchone()
        freed = dropped = 0
        while freed < excess:
            guess = int(excess / max(held / max(entries, 1), 1) * 1.1) + 16
            victims = self._conn.execute(
                "SELECT rowid, length(key) + length(vector) FROM entries ORDER BY used LIMIT ?",
                (guess,),
            ).fetchall()
            if not victims:
                break
            chosen = []
            for rowid, size in victims:
                chosen.append((rowid,))
                freed += size
                if freed >= excess:
                    break
            self._conn.executemany("DELETE FROM entries WHERE rowid = ?", chosen)
            dropped += len(chosen)
        self._conn.execute(
            "UPDATE totals SET entries = entries - ?, bytes = bytes - ? WHERE id = 0",
            (dropped, freed),
        )

    def info(self) -> dict[str, Any]:
        with self._lock:
            entries, held = self._conn.execute(
                "SELECT entries, bytes FROM totals WHERE id = 0"
            ).fetchone()
        on_disk = sum(
            p.stat().st_size
            for p in (self.path, self.path.with_name(self.path.name + "-wal"))
            if p.is_file()
        )
        return {
            "kind": "disk",
            "path": str(self.path),
            "entries": entries,
            "bytes": held,
            "file_bytes": on_disk,
            "max_bytes": self.max_bytes,
            "stats": self.stats.as_dict(),
        }

    def clear(self) -> int:
        with self._lock:
            with transaction(self._conn):
                (count,) = self._conn.execute("SELECT entries FROM totals WHERE id = 0").fetchone()
                self._conn.execute("DELETE FROM entries")
                self._conn.execute("UPDATE totals SET entries = 0, bytes = 0 WHERE id = 0")
            try:
                self._conn.execute("VACUUM")  # give the space back
            except sqlite3.OperationalError as exc:  # another process is reading: space stays
                log.info("embedding cache cleared; the file shrinks later (%s)", exc)
        return int(count)
