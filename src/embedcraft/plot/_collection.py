"""Stored vectors, texts and metadata read back from a collection, for plotting."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from ..store import StoredVectors, open_collection
from ..store import _schema as db
from ..store._open import is_postgres_url

__all__ = ["read_collection"]


def read_collection(
    location: str | os.PathLike[str], encoder: str | None = None, limit: int | None = None
) -> StoredVectors:
    """The first `limit` documents (all by default) of a collection folder or PostgreSQL URL,
    with one encoder's vectors (`Collection.export`); a missing folder is an error, not a new
    collection."""
    where = os.fspath(location)
    if not is_postgres_url(where) and not (Path(where) / db.DATABASE).is_file():
        raise InputError(f"{where}: not a collection folder (no {db.DATABASE})")
    with open_collection(where) as col:
        return col.export(encoder, limit=limit)
