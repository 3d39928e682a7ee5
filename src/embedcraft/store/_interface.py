"""`VectorCollection`: the one interface of a collection, whichever database holds it.

`Collection` (a SQLite folder) and `PostgresCollection` (PostgreSQL + pgvector) both implement
it, and `open_collection` returns it, so code written against it runs on either backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, Self, runtime_checkable

import numpy as np

from ..encoders.base import BaseEncoder
from ..search import Hit
from ._base import DocState, SearchMode, StoredVectors
from .collection import Document
from .filters import Filter

__all__ = ["VectorCollection"]


@runtime_checkable
class VectorCollection(Protocol):
    """A persisted, searchable set of documents with their metadata and vectors.

    Writes (`add`, `upsert`, `delete`) are all or nothing per batch; searches see every write
    committed so far, by any process or client. `info()` holds "count", "generation" and
    "encoders" (name, sparse, dim, index), plus where the collection lives ("path" or "url").
    """

    @property
    def encoder_names(self) -> list[str]:
        """The names of the collection's encoders, in the order they were registered."""
        ...

    def encoder(self, name: str) -> BaseEncoder:
        """The encoder registered under `name` (as used for documents and queries)."""
        ...

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        vectors: Mapping[str, Any] | None = None,
        batch_size: int = 256,
        progress: bool = False,
    ) -> list[str]:
        """Add new documents (an id already stored is an error); returns their ids."""
        ...

    def upsert(
        self,
        texts: Sequence[str],
        ids: Sequence[str],
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        vectors: Mapping[str, Any] | None = None,
        batch_size: int = 256,
        progress: bool = False,
    ) -> list[str]:
        """Add documents, replacing any stored under the same ids; returns the ids."""
        ...

    def compare_stored(
        self,
        texts: Sequence[str],
        ids: Sequence[str],
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[DocState]:
        """Per document: "new", "unchanged" (same text and metadata) or "changed"."""
        ...

    def delete(self, ids: str | Sequence[str]) -> int:
        """Delete documents by id, all or none; returns how many."""
        ...

    def bulk(self, *, progress: bool = False) -> AbstractContextManager[Self]:
        """A block of many writes after which the search indexes are brought up to date once."""
        ...

    def get(self, ids: str | Sequence[str]) -> list[Document]:
        """The documents with these ids, in the order asked."""
        ...

    def ids(self) -> list[str]:
        """Every document id, in insertion order."""
        ...

    def count(self, where: Filter | None = None) -> int:
        """Number of documents (matching `where` when given)."""
        ...

    def __len__(self) -> int: ...

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: SearchMode | None = None,
        where: Filter | None = None,
        encoder: str | None = None,
        fusion: Literal["rrf", "weighted"] = "rrf",
        alpha: float = 0.5,
        explain: bool = False,
        min_score: float | None = None,
    ) -> list[Hit]:
        """The k best documents for `query` (dense, sparse or hybrid) scoring at least
        `min_score`; a filter on a key no document has is an error."""
        ...

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        mode: SearchMode | None = None,
        where: Filter | None = None,
        encoder: str | None = None,
        fusion: Literal["rrf", "weighted"] = "rrf",
        alpha: float = 0.5,
        explain: bool = False,
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        """The k best documents for each query."""
        ...

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int = 10,
        *,
        where: Filter | None = None,
        encoder: str | None = None,
    ) -> list[list[Hit]]:
        """The k documents closest (cosine) to each given query vector, as hits."""
        ...

    def nearest_ids(
        self,
        vectors: np.ndarray,
        k: int = 10,
        *,
        where: Filter | None = None,
        encoder: str | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        """Ids and a (queries, k) float32 score array (-inf pads) of the closest documents."""
        ...

    def export(self, encoder: str | None = None, *, limit: int | None = None) -> StoredVectors:
        """The documents and one encoder's vectors, for plots and analysis."""
        ...

    def info(self) -> dict[str, Any]:
        """What the collection holds and how its indexes stand (JSON-ready)."""
        ...

    def generation(self) -> int:
        """A number that grows with every committed write."""
        ...

    def rebuild(self) -> None:
        """Rebuild the search indexes from the stored documents and vectors."""
        ...

    def close(self) -> None:
        """Release the database connection (and save what must be saved)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...
