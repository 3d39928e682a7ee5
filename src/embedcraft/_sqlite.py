"""SQLite as embedcraft uses it: WAL mode for readers beside one writer, and transactions that
land whole or not at all. Collections and the embedding cache open their databases here."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ensure_schema", "open_wal", "transaction"]


def open_wal(
    path: Path, *, timeout: float = 60.0, page_size: int | None = None
) -> sqlite3.Connection:
    """A connection in autocommit mode, WAL journal (its file capped at 64 MB), normal sync,
    usable from any thread (callers serialise), waiting up to `timeout` s for a writer.
    `page_size` applies to a new database only (it is fixed once WAL mode is on)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
    if page_size is not None:
        conn.execute(f"PRAGMA page_size={int(page_size)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA journal_size_limit=67108864")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (a batch lands whole or not)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def ensure_schema(conn: sqlite3.Connection, schema: str, fmt: str) -> str:
    """Run `schema` (statements separated by ";", each idempotent) in one transaction and record
    `fmt` in its `info (key, value)` table unless a format is there; returns the format found,
    which the caller compares with the one it reads."""
    with transaction(conn):
        for statement in schema.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO info VALUES ('format', ?)", (fmt,))
    (found,) = conn.execute("SELECT value FROM info WHERE key = 'format'").fetchone()
    return str(found)
