"""Persisted collections: documents, metadata and vectors in a folder, with dense, sparse and
hybrid search and metadata filters."""

from __future__ import annotations

from ._indexes import HnswSettings
from .collection import Collection, Document, SearchMode
from .filters import Condition, Filter, parse_filter, parse_where

__all__ = [
    "Collection",
    "Condition",
    "Document",
    "Filter",
    "HnswSettings",
    "SearchMode",
    "parse_filter",
    "parse_where",
]
