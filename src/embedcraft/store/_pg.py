"""What `PostgresCollection` needs besides SQL: the driver, the parts of its URL, and saved
encoder folders packed as bytes, so fitted encoders live in the database with the documents."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import InputError, missing_dependency

__all__ = ["pack", "psycopg_module", "split_url", "unpack"]

_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")


def psycopg_module() -> Any:
    """The psycopg module, or a clear MissingDependencyError."""
    try:
        import psycopg
    except ImportError:
        raise missing_dependency("psycopg[binary]", "postgres", "PostgresCollection") from None
    return psycopg


def split_url(url: str) -> tuple[str, str, str]:
    """(URL for psycopg, URL safe to show, table prefix) from a postgresql:// URL."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise InputError(f"not a PostgreSQL URL (postgresql://user@host:port/db): {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "table_prefix"), "embedcraft_")
    if not _PREFIX.match(prefix):
        raise InputError(f"table_prefix {prefix!r}: use lowercase letters, digits and '_'")
    conninfo = urlunsplit(
        parts._replace(query=urlencode([q for q in query if q[0] != "table_prefix"]))
    )
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    return conninfo, urlunsplit(parts._replace(netloc=netloc)), prefix


def pack(folder: Path) -> bytes:
    """A saved encoder folder as tar bytes, to keep it in the database."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Extract what `pack` made: plain files and folders inside `folder`, nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        for m in members:
            if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in m.name.split("/"):
                raise InputError(f"a stored encoder holds an unexpected entry {m.name!r}")
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
        tar.extractall(folder, members, **safe)  # type: ignore[arg-type]
