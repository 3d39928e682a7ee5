"""Persisted collections: documents, metadata and vectors in a folder, with dense, sparse and
hybrid search and metadata filters."""

from __future__ import annotations

from ._base import StoredVectors
from ._indexes import HnswSettings
from ._interface import VectorCollection
from ._open import is_collection_folder, is_postgres_url, open_collection, read_collection
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
    "VectorCollection",
    "is_collection_folder",
    "is_postgres_url",
    "open_collection",
    "parse_filter",
    "parse_where",
    "read_collection",
    "read_documents",
]
