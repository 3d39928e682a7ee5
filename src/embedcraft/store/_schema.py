"""The SQLite side of a collection: schema, connection settings, transactions, row encoding.

SQLite is the source of truth. Vectors live in an ordinary (rowid) table: a WITHOUT ROWID table
keeps rows in index pages that hold at most ~1 KB of a row, so a 256-dim float32 vector (1 KB)
spilled into an overflow page of its own and a million of them took 4.6 GB instead of 1.1 GB
(databases made that way still open and work). WAL journaling lets readers in other processes
keep reading while one writer commits; each write is one transaction that also bumps
`generation`, the counter every derived index compares against to know whether it is stale.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._sqlite import ensure_schema, open_wal, transaction
from ..errors import CorruptFileError, InputError

__all__ = [
    "DATABASE",
    "FORMAT",
    "blobs_to_matrix",
    "bump_generation",
    "connect",
    "dump_metadata",
    "generation",
    "log_removed",
    "removed_since",
    "snapshot",
    "transaction",
    "vector_blob",
]

DATABASE = "collection.sqlite"
FORMAT = "embedcraft-collection/1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS encoders (
    slot INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    sparse INTEGER NOT NULL,
    dim INTEGER,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS docs (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS vectors (
    slot INTEGER NOT NULL,
    doc INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (slot, doc)
);
CREATE TABLE IF NOT EXISTS removed (generation INTEGER NOT NULL, doc INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS removed_by_generation ON removed (generation);
INSERT OR IGNORE INTO info VALUES ('generation', '0');
"""


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open (or create) a collection database in WAL mode; CorruptFileError if it is not one."""
    if not create and not path.is_file():
        raise InputError(f"{path.parent}: not a collection (no {DATABASE})")
    try:
        conn = open_wal(path)
        conn.execute("PRAGMA foreign_keys=ON")
        found = ensure_schema(conn, _SCHEMA, FORMAT)
    except sqlite3.DatabaseError as exc:
        raise CorruptFileError(f"{path}: not a readable collection database ({exc})") from None
    if found != FORMAT:
        raise CorruptFileError(f"{path}: collection format {found!r}, this version reads {FORMAT}")
    return conn


@contextlib.contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: every read inside sees one committed state of the database.

    Derived indexes read the generation and the rows it stands for in one snapshot, so a
    commit from another process between two reads cannot make them disagree.
    """
    if conn.in_transaction:  # already inside one (a write): it is the snapshot
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def bump_generation(conn: sqlite3.Connection) -> None:
    """Mark a change, inside the writing transaction."""
    conn.execute("UPDATE info SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")


def log_removed(conn: sqlite3.Connection, rowids: list[int]) -> None:
    """Record rows removed by the writing transaction (before it bumps the generation).

    A row logged at generation g is gone from g + 1 on, so an index saved at generation G
    catches up with `removed_since(conn, G)` instead of scanning every row.
    """
    conn.executemany(
        "INSERT INTO removed (generation, doc) SELECT CAST(value AS INTEGER), ? FROM info "
        "WHERE key = 'generation'",
        [(r,) for r in rowids],
    )


def removed_since(conn: sqlite3.Connection, generation: int) -> np.ndarray:
    """Rowids removed after the state of `generation` (sorted, int64)."""
    rows = conn.execute("SELECT doc FROM removed WHERE generation >= ?", (generation,))
    found = np.fromiter((r[0] for r in rows), dtype=np.int64)
    found.sort()
    return found


def generation(conn: sqlite3.Connection) -> int:
    (value,) = conn.execute("SELECT value FROM info WHERE key = 'generation'").fetchone()
    return int(value)


class GenerationWatch:
    """The generation, read again from the database only after some transaction has committed.

    In WAL mode every commit, by any process, rewrites the header of the WAL index, the
    shared-memory file `<database>-shm` (its first 48 bytes: a change counter, the last frame,
    salts; SQLite's documented "walformat"). While those bytes are as they were when the
    generation was last read, nothing has committed since, so that value still holds: a search
    saves an SQL round trip. The header is read before the value, so a commit landing between
    the two reads is seen at the next call. Where the file cannot be mapped, every call reads
    the database.

    The file stays open until `close`, called after the connection is closed: SQLite holds
    POSIX locks on it, and closing ANY descriptor of a file drops every lock the process holds
    on it. Closing ours early let another process's last close delete the file under SQLite's
    own mapping (a bus error while a writer ingested).
    """

    _HEADER = 48

    def __init__(self, conn: sqlite3.Connection, database: Path) -> None:
        self._conn = conn
        self._shm_path = database.with_name(database.name + "-shm")
        self._map: mmap.mmap | None = None
        self._file: Any = None
        self._tried = False
        self._seen: bytes | None = None
        self._value = -1

    def current(self) -> int:
        """The generation now."""
        header = self._header()
        if header is not None and header == self._seen:
            return self._value
        value = generation(self._conn)
        self._seen, self._value = header, value
        return value

    def _header(self) -> bytes | None:
        if self._map is None:
            if self._tried:
                return None
            self._tried = True
            generation(self._conn)  # a read transaction makes SQLite create the file
            try:
                self._file = open(self._shm_path, "rb")  # noqa: SIM115 (open until close())
                self._map = mmap.mmap(self._file.fileno(), self._HEADER, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # no such file, too short, cannot map: read the db
                return None
        return self._map[: self._HEADER]

    def close(self) -> None:
        """Unmap and close the WAL index (after the connection has closed)."""
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None


def dump_metadata(index: int, metadata: Any) -> str:
    """One document's metadata as JSON text; InputError naming the document when it cannot be."""
    if metadata is None:
        return "{}"
    if not isinstance(metadata, Mapping):
        raise InputError(f"metadata of document {index} must be a mapping, got {metadata!r}")
    for key in metadata:
        if not isinstance(key, str):
            raise InputError(f"metadata of document {index}: key {key!r} is not a string")
    try:
        return json.dumps(dict(metadata), allow_nan=False, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"metadata of document {index} is not JSON-serializable: {exc}") from None


def vector_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def blobs_to_matrix(blobs: list[bytes], dim: int) -> np.ndarray:
    """float32 (len(blobs), dim) from stored vectors; CorruptFileError on a wrong length."""
    data = b"".join(blobs)
    if len(data) != 4 * dim * len(blobs):
        raise CorruptFileError(f"stored vectors are not {dim} float32 values each")
    return np.frombuffer(data, dtype="<f4").reshape(len(blobs), dim).astype(np.float32)
