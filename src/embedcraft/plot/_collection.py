"""Stored vectors, texts and metadata read back from a collection, for plotting: the store's
`read_collection`, under the name the plot code has always used."""

from __future__ import annotations

from ..store import read_collection

__all__ = ["read_collection"]
