"""Persisted collections: documents, metadata and vectors in a folder, with dense, sparse and
hybrid search and metadata filters."""

from __future__ import annotations

from ._base import StoredVectors
from ._indexes import HnswSettings
from ._open import open_collection
from .collection import Collection, Document, SearchMode
from .filters import Condition, Filter, parse_filter, parse_where
from .ingest import read_documents
from .postgres import PostgresCollection

__all__ = [
    "Collection",
    "Condition",
    "Document",
    "Filter",
    "HnswSettings",
    "PostgresCollection",
    "SearchMode",
    "StoredVectors",
    "open_collection",
    "parse_filter",
    "parse_where",
    "read_documents",
]
