"""One entry point for both backends: a folder path, or a ``postgresql://`` URL."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..encoders.base import Encoder
from .collection import Collection

__all__ = ["is_postgres_url", "open_collection"]


def is_postgres_url(location: str | os.PathLike[str]) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_collection(
    location: str | os.PathLike[str], encoders: Sequence[str | Encoder] | None = None
) -> Any:
    """A `Collection` for a folder, a `PostgresCollection` for a PostgreSQL URL.

    With `encoders`, a missing collection is created; without, it must exist.
    """
    if is_postgres_url(location):
        from .postgres import PostgresCollection

        return PostgresCollection(str(location), encoders=encoders)
    return Collection(location, encoders=encoders)
