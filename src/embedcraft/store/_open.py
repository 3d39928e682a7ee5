"""One entry point for both backends: a folder path, or a ``postgresql://`` URL."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..encoders.base import Encoder
from ..errors import InputError
from ._base import StoredVectors
from ._interface import VectorCollection
from .collection import Collection

__all__ = ["is_collection_folder", "is_postgres_url", "open_collection", "read_collection"]


def is_postgres_url(location: str | os.PathLike[str]) -> bool:
    """Whether `location` names a PostgreSQL collection (a postgresql:// or postgres:// URL)."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def is_collection_folder(location: str | os.PathLike[str]) -> bool:
    """Whether `location` is a folder holding a collection (its `Collection.DATABASE` file)."""
    return not is_postgres_url(location) and (Path(location) / Collection.DATABASE).is_file()


def open_collection(
    location: str | os.PathLike[str], encoders: Sequence[str | Encoder] | None = None
) -> VectorCollection:
    """A `Collection` for a folder, a `PostgresCollection` for a PostgreSQL URL.

    With `encoders`, a missing collection is created; without, it must exist.
    """
    if is_postgres_url(location):
        from .postgres import PostgresCollection

        return PostgresCollection(str(location), encoders=encoders)
    return Collection(Path(location), encoders=encoders)


def read_collection(
    location: str | os.PathLike[str], encoder: str | None = None, limit: int | None = None
) -> StoredVectors:
    """The first `limit` documents (all by default) of an existing collection, folder or
    PostgreSQL URL, with one encoder's vectors (its `export`), for plots and analysis.

    A missing folder is an error, never a new collection.
    """
    where = os.fspath(location)
    if not is_postgres_url(where) and not is_collection_folder(where):
        raise InputError(f"{where}: not a collection folder (no {Collection.DATABASE})")
    with open_collection(where) as col:
        return col.export(encoder, limit=limit)
