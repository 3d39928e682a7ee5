"""Stored vectors, texts and metadata read back from a collection folder, for plotting."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..store import _schema as db
from ..store.collection import Collection

__all__ = ["StoredPoints", "read_collection"]


@dataclass
class StoredPoints:
    """A collection's documents with one encoder's vectors (dense array or sparse matrix)."""

    ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]]
    vectors: Any
    encoder: str


def read_collection(
    path: str | os.PathLike[str], encoder: str | None = None, limit: int | None = None
) -> StoredPoints:
    """The first `limit` documents (all by default) of the collection folder at `path`.

    Dense vectors are read as stored; for a sparse encoder (BM25, TF-IDF, which store no
    vectors) a fresh copy is fitted on the documents read, as the collection does.
    """
    if not (Path(path) / db.DATABASE).is_file():
        raise InputError(f"{path}: not a collection folder (no {db.DATABASE})")
    with Collection(path) as col:
        slots = {s.name: s for s in col._slots}
        if encoder is None:
            dense = [s for s in col._slots if not s.sparse]
            slot = (dense or col._slots)[0]
        elif encoder in slots:
            slot = slots[encoder]
        else:
            raise InputError(
                f"{path}: the collection has no encoder {encoder!r}; it has {', '.join(slots)}"
            )
        cap = "" if limit is None else f" LIMIT {int(limit)}"
        rows = col.conn.execute(
            f"SELECT rowid, id, text, metadata FROM docs ORDER BY rowid{cap}"
        ).fetchall()
        if not rows:
            raise InputError(f"{path}: the collection is empty")
        ids = [r[1] for r in rows]
        texts = [r[2] for r in rows]
        metadata = [json.loads(r[3]) for r in rows]
        if slot.sparse:
            _, vectors = slot.fit_sparse(texts)
        else:
            by_doc = dict(
                col.conn.execute(
                    "SELECT doc, vector FROM vectors WHERE slot = ? AND doc BETWEEN ? AND ?",
                    (slot.slot, rows[0][0], rows[-1][0]),
                ).fetchall()
            )
            missing = [r[1] for r in rows if r[0] not in by_doc]
            if missing:
                raise InputError(f"{path}: document {missing[0]!r} has no {slot.name} vector")
            vectors = db.blobs_to_matrix([by_doc[r[0]] for r in rows], slot.dim)
    return StoredPoints(ids, texts, metadata, vectors, slot.name)
