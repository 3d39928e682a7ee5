"""`Collection`: documents, their metadata and vectors in a folder, searchable by meaning and words.

The folder holds `collection.sqlite` (the truth: ids, texts, metadata as JSON, each dense
encoder's vectors as float32 blobs, each encoder's spec), `encoders/` (the encoders, saved) and
`indexes/` (FAISS and BM25 indexes derived from the database, rebuilt when missing, stale or
damaged). Writes are one SQLite transaction per batch, so a crash loses at most the batch in
flight; searches bring the indexes up to date with whatever has been committed, by any process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ..encoders.base import Encoder, as_texts
from ..errors import InputError
from ..search import Hit
from . import _schema as db
from ._base import (
    SearchMode,
    _chunks,
    _CollectionBase,
    _in_order,
    _unknown_ids,
)
from ._derived import DerivedIndexes
from ._encoders import EncoderSlot, load_slots, register_encoders
from ._indexes import HnswSettings
from ._ranking import check_k, check_search, fetch_size, fuse_query
from .filters import Filter, parse_filter, sql_has_key, sql_where

__all__ = ["Collection", "Document", "HnswSettings", "SearchMode"]

log = logging.getLogger("embedcraft")

_decode = json.JSONDecoder().decode
_FILTER_CACHE = 8
"""Filters whose admitted rows are remembered (until the next write)."""


@dataclass(frozen=True)
class Document:
    """A stored document: its id, text and metadata."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


class Collection(_CollectionBase):
    """A persisted, searchable set of documents in a folder: the SQLite `VectorCollection`
    (see the module docstring for the layout).

    ``Collection(path, encoders=["bm25", "minilm-l6"])`` creates the folder on first use;
    ``Collection(path)`` opens an existing one. Encoders are catalog names, saved encoder
    folders or encoder objects; sparse ones (BM25, TF-IDF) are fitted on the collection itself.
    """

    DATABASE: ClassVar[str] = db.DATABASE
    """The file in a collection folder that holds its documents, vectors and encoder specs."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        encoders: Sequence[str | Encoder] | None = None,
        *,
        hnsw: HnswSettings | None = None,
        persist_indexes: bool = True,
    ) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path} is a file, not a collection folder")
        exists = (self.path / db.DATABASE).is_file()
        if not exists and not encoders:
            raise InputError(
                f"{self.path}: no collection here; to create one, name its encoders "
                "(--encoder bm25 --encoder minilm-l6, or encoders=['bm25', 'minilm-l6'])"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.hnsw = hnsw or HnswSettings()
        self.persist_indexes = persist_indexes
        self._lock = threading.RLock()
        self._conn = db.connect(self.path / db.DATABASE, create=not exists)
        self._watch = db.GenerationWatch(self._conn, self.path / db.DATABASE)
        given = register_encoders(self._conn, self.path, encoders) if encoders else {}
        self._slots: list[EncoderSlot] = load_slots(self._conn, self.path, given)
        if not self._slots:
            raise InputError(f"{self.path}: the collection has no encoders")
        self._filter_cache: dict[tuple[str, tuple[Any, ...]], tuple[int, np.ndarray]] = {}
        self._mask_cache: dict[int, tuple[Any, ...]] = {}
        self._id_of_rowid = np.empty(0, dtype=object)
        self._id_top = 0
        self._id_map_generation = -1
        self._indexes = DerivedIndexes(lambda: self.conn, self.path, self.hnsw, persist_indexes)

    # ------------------------------------------------------------------ basics
    _REPR_NAME = "Collection"

    def _location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        """Save indexes updated since they were last saved, and close the database."""
        with self._lock:
            if self._conn is None:
                return
            self._indexes.save_pending(self._slots)
            self._conn.close()
            self._watch.close()  # after the connection: see GenerationWatch
            self._conn = None  # type: ignore[assignment]

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise InputError(f"{self.path}: the collection is closed")
        return self._conn

    def count(self, where: Filter | None = None) -> int:
        """Number of documents (matching `where` when given)."""
        conditions = parse_filter(where)
        sql, params = sql_where(conditions, "metadata", "sqlite")
        with self._lock:
            (n,) = self.conn.execute(f"SELECT COUNT(*) FROM docs WHERE {sql}", params).fetchone()
            if conditions and not n:
                self._refuse_unknown_keys(conditions)
        return int(n)

    def generation(self) -> int:
        """A number that grows with every committed write (by any process)."""
        with self._lock:
            self.conn  # noqa: B018 (raises when closed)
            return self._watch.current()

    def info(self) -> dict[str, Any]:
        """What the collection holds and how its indexes stand (JSON-ready)."""
        with self._lock:
            encoders = []
            for s in self._slots:
                entry: dict[str, Any] = {"name": s.name, "sparse": s.sparse, "dim": s.width}
                entry["index"] = self._indexes.state(s)
                encoders.append(entry)
            return {
                "path": str(self.path),
                "count": self.count(),
                "generation": self.generation(),
                "encoders": encoders,
            }

    # ------------------------------------------------------------------ writes
    def delete(self, ids: str | Sequence[str]) -> int:
        """Delete documents by id, all or none: an unknown id is an error. Returns the count."""
        wanted = self._check_ids([ids] if isinstance(ids, str) else ids)
        with self._lock, db.transaction(self.conn) as conn:
            rows = self._rowids(conn, wanted)
            missing = [i for i in wanted if i not in rows]
            if missing:
                raise InputError(_unknown_ids(missing))
            self._remove_rows(conn, list(rows.values()))
            db.bump_generation(conn)
        return len(rows)

    @staticmethod
    def _remove_rows(conn: sqlite3.Connection, rowids: list[int]) -> None:
        """Delete these rows and their vectors, and log them for the derived indexes."""
        for chunk in _chunks(rowids, 500):
            marks = ",".join("?" * len(chunk))
            by_key = "slot IN (SELECT slot FROM encoders) AND doc"  # the primary key: no scan
            conn.execute(f"DELETE FROM vectors WHERE {by_key} IN ({marks})", chunk)
            conn.execute(f"DELETE FROM docs WHERE rowid IN ({marks})", chunk)
        db.log_removed(conn, rowids)

    def get(self, ids: str | Sequence[str]) -> list[Document]:
        """The documents with these ids, in the order asked; an unknown id is an error."""
        wanted = self._check_ids([ids] if isinstance(ids, str) else ids)
        found: dict[str, Document] = {}
        with self._lock:
            for chunk in _chunks(wanted, 500):
                marks = ",".join("?" * len(chunk))
                for doc_id, text, meta in self.conn.execute(
                    f"SELECT id, text, metadata FROM docs WHERE id IN ({marks})", chunk
                ):
                    found[doc_id] = Document(doc_id, text, json.loads(meta))
        return _in_order(wanted, found)

    def ids(self) -> list[str]:
        """Every document id, in insertion order."""
        with self._lock:
            return [r[0] for r in self.conn.execute("SELECT id FROM docs ORDER BY rowid")]

    def _export_rows(self, limit: int | None) -> list[tuple[int, str, str, Any]]:
        cap = "" if limit is None else f" LIMIT {int(limit)}"
        sql = f"SELECT rowid, id, text, metadata FROM docs ORDER BY rowid{cap}"
        rows: list[tuple[int, str, str, Any]] = self.conn.execute(sql).fetchall()
        return rows

    def _export_dense(self, slot: EncoderSlot, rowids: list[int]) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        for chunk in _chunks(rowids, 500):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT doc, vector FROM vectors WHERE slot = ? AND doc IN ({marks})",
                (slot.slot, *chunk),
            ).fetchall()
            matrix = db.blobs_to_matrix([r[1] for r in rows], slot.dim)
            found.update(zip((r[0] for r in rows), matrix, strict=True))
        return found

    def _existing_ids(self, ids: list[str]) -> list[str]:
        return list(self._rowids(self.conn, ids))

    def _fit_unfitted(self, docs: list[str], made: dict[int, np.ndarray]) -> None:
        """Dense encoders that learn from text are fitted on the first documents added."""
        for s in self._slots:
            if s.sparse or s.slot in made or s.is_fitted():
                continue
            self._refuse_late_fit(s)
            s.fit_and_save(self.conn, docs)

    def _commit_batch(
        self,
        ids: list[str],
        texts: list[str],
        metadata: list[str],
        vectors: dict[int, np.ndarray],
        *,
        replace: bool,
    ) -> None:
        with db.transaction(self.conn) as conn:
            if replace:
                self._remove_rows(conn, list(self._rowids(conn, ids).values()))
            rowids = []
            try:
                for doc_id, text, meta in zip(ids, texts, metadata, strict=True):
                    cursor = conn.execute(
                        "INSERT INTO docs (id, text, metadata) VALUES (?, ?, ?)",
                        (doc_id, text, meta),
                    )
                    rowids.append(cursor.lastrowid)
            except sqlite3.IntegrityError:
                raise InputError(
                    f"id {doc_id!r} was added meanwhile by another writer: use upsert"
                ) from None
            for slot, matrix in vectors.items():
                conn.executemany(
                    "INSERT INTO vectors (slot, doc, vector) VALUES (?, ?, ?)",
                    [(slot, r, db.vector_blob(v)) for r, v in zip(rowids, matrix, strict=True)],
                )
            db.bump_generation(conn)

    # ------------------------------------------------------------------ search
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
        """The k best documents for each query, among those matching `where`.

        mode: "dense" (cosine of the dense encoder's vectors), "sparse" (BM25/TF-IDF score) or
        "hybrid" (both, fused by reciprocal rank, or with fusion="weighted" a blend of min-max
        scaled scores, `alpha` on the dense side; the fused score reads 0..1, 1 for a document
        first on both sides, and `Hit.dense_score`/`sparse_score` hold each side's own). The
        default is hybrid when the collection has both kinds of encoder. `encoder` picks one
        by name for dense or sparse mode. A filter returns exactly the top k of the matching
        documents (fewer only when fewer match); one on a key no document has is an error.
        `min_score` drops hits scoring less. explain=True adds `Hit.explanation`: the terms
        (sparse) or words (dense, for transformer encoders) that contributed most.
        """
        items = as_texts(queries)
        check_search(k, fusion, alpha, min_score)
        conditions = parse_filter(where)
        with self._lock:
            sides = self._sides(mode, encoder)
            allowed = self._allowed(conditions)
            fetch = fetch_size(k, sides)
            ranked = {s.slot: self._search_side(s, items, fetch, allowed) for s in sides}
            results = self._fuse(ranked, sides, len(items), k, fusion, alpha)
            return self._hits(items, results, sides, explain, min_score)

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int = 10,
        *,
        where: Filter | None = None,
        encoder: str | None = None,
    ) -> list[list[Hit]]:
        """The k documents closest (cosine) to each given query vector, for a dense encoder.

        For vectors made elsewhere (an item's own vector, a query encoded in batch): rows of
        `vectors` must have the encoder's width; `encoder` picks the dense encoder by name.
        """
        check_k(k)
        conditions = parse_filter(where)
        with self._lock:
            (side,) = self._sides("dense", encoder)
            q = side.prepare_queries(vectors)
            ranked = {side.slot: self._indexes_search(side, q, k, self._allowed(conditions))}
            results = self._fuse(ranked, [side], len(q), k, "rrf", 0.5)
            return self._hits([""] * len(q), results, [side], False)

    def nearest_ids(
        self,
        vectors: np.ndarray,
        k: int = 10,
        *,
        where: Filter | None = None,
        encoder: str | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        """Ids and cosine scores of the k documents closest to each query vector; the fast path.

        Like `search_vectors` but reads no text or metadata: it returns (ids per query, a
        (queries, k) float32 score array, -inf where fewer than k documents qualify). For
        recommendation-style lookups and high query rates.
        """
        check_k(k)
        conditions = parse_filter(where)
        with self._lock:
            (side,) = self._sides("dense", encoder)
            q = side.prepare_queries(vectors)
            dense = self._indexes.dense(side, self._watch.current())
            mask = self._mask(side, dense, self._allowed(conditions))
            scores, rows = dense.search(q, k, mask)
            id_of = self._ids_by_rowid(dense.generation)  # read after the index: covers its rows
            if rows.size and rows.min() >= 0:  # full lists: one gather
                return id_of[rows].tolist(), scores
            return [id_of[row[row >= 0]].tolist() for row in rows], scores

    def _ids_by_rowid(self, current: int) -> np.ndarray:
        """The id of every document at its rowid (an object array), topped up after writes.

        A rowid names one version of one document forever (an upsert makes a new rowid), so
        entries never go stale; removed rows linger, but the indexes never return them.
        """
        if self._id_map_generation != current:
            rows = self.conn.execute(
                "SELECT rowid, id FROM docs WHERE rowid > ?", (self._id_top,)
            ).fetchall()
            if rows:
                rowids = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
                top = int(rowids.max())
                if top >= len(self._id_of_rowid):
                    grown = np.empty(max(top + 1, 2 * len(self._id_of_rowid)), dtype=object)
                    grown[: len(self._id_of_rowid)] = self._id_of_rowid
                    self._id_of_rowid = grown
                ids = np.empty(len(rows), dtype=object)
                ids[:] = [i for _, i in rows]
                self._id_of_rowid[rowids] = ids
                self._id_top = max(self._id_top, top)
            self._id_map_generation = current
        return self._id_of_rowid

    def _allowed(self, conditions: list[Any]) -> np.ndarray | None:
        """Sorted rowids of the documents a filter admits (None: no filter).

        The last few filters' answers are kept until the next committed write, so a run of
        queries with one filter scans the metadata once.
        """
        if not conditions:
            return None
        sql, params = sql_where(conditions, "metadata", "sqlite")
        key, current = (sql, tuple(params)), self._watch.current()
        cached = self._filter_cache.get(key)
        if cached is not None and cached[0] == current:
            allowed = cached[1]
        else:
            rows = self.conn.execute(f"SELECT rowid FROM docs WHERE {sql}", params)
            allowed = np.fromiter((r[0] for r in rows), dtype=np.int64)
            allowed.sort()
            self._filter_cache[key] = (current, allowed)
            while len(self._filter_cache) > _FILTER_CACHE:
                self._filter_cache.pop(next(iter(self._filter_cache)))
        if not allowed.size:
            self._refuse_unknown_keys(conditions)
        return allowed

    def _indexes_search(
        self, side: EncoderSlot, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        dense = self._indexes.dense(side, self._watch.current())
        mask = self._mask(side, dense, allowed)
        return list(zip(*dense.search(q, k, mask), strict=True))

    def _mask(self, side: EncoderSlot, index: Any, allowed: np.ndarray | None) -> Any:
        """The index-position mask of a filter's rows, kept while filter and index stand."""
        if allowed is None:
            return None
        key = (side.slot, id(allowed), id(index), id(index.alive), len(index.rowids))
        cached = self._mask_cache.get(side.slot)
        if cached is None or cached[0] != key:
            cached = (key, index.mask_of(allowed), allowed, index, index.alive)
            self._mask_cache[side.slot] = cached
        return cached[1]

    @staticmethod
    def _fuse(
        ranked: dict[int, list[tuple[np.ndarray, np.ndarray]]],
        sides: list[EncoderSlot],
        n_queries: int,
        k: int,
        fusion: str,
        alpha: float,
    ) -> list[list[tuple[int, float, dict[str, float]]]]:
        """Per query: (rowid, score, score on each side) best first, one list per side fused."""
        if len(sides) == 1:  # one side: its own order and scores, nothing to fuse
            name = sides[0].name
            return [
                [
                    (r, v, {name: v})
                    for r, v in zip(rows.tolist(), scores.tolist(), strict=True)
                    if r >= 0
                ]
                for scores, rows in ranked[sides[0].slot][:n_queries]
            ]
        results = []
        for qi in range(n_queries):
            lists = [
                [(int(r), float(v)) for v, r in zip(*ranked[s.slot][qi], strict=True) if r >= 0]
                for s in sides
            ]
            results.append(fuse_query(lists, sides, k, fusion, alpha))
        return results

    def _search_side(
        self, slot: EncoderSlot, queries: list[str], k: int, allowed: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        if slot.sparse:
            index = self._sparse_index(slot)
            mask = self._mask(slot, index, allowed)
            scores, rows = index.search(index.queries(queries), k, mask)
            return list(zip(scores, rows, strict=True))
        return self._indexes_search(slot, slot.encode_queries(queries), k, allowed)

    def _fetch_docs(self, rowids: list[int]) -> dict[int, tuple[str, str, Any]]:
        docs: dict[int, tuple[str, str, Any]] = {}
        for chunk in _chunks(rowids, 500):
            marks = ",".join("?" * len(chunk))
            for rowid, doc_id, text, meta in self.conn.execute(
                f"SELECT rowid, id, text, metadata FROM docs WHERE rowid IN ({marks})", chunk
            ):
                docs[rowid] = (doc_id, text, meta)
        return docs

    def _metadata(self, stored: Any) -> dict[str, Any]:
        return {} if stored == "{}" else _decode(stored)

    def _stored_docs(self, ids: list[str]) -> dict[str, tuple[str, Any]]:
        marks = ",".join("?" * len(ids))
        sql = f"SELECT id, text, metadata FROM docs WHERE id IN ({marks})"
        return {r[0]: (r[1], r[2]) for r in self.conn.execute(sql, ids)}

    def _has_key(self, key: str) -> bool:
        sql, params = sql_has_key(key, "metadata", "sqlite")
        return (
            self.conn.execute(f"SELECT 1 FROM docs WHERE {sql} LIMIT 1", params).fetchone()
            is not None
        )

    def _metadata_keys(self, limit: int) -> list[str]:
        sql = "SELECT DISTINCT j.key FROM docs, json_each(docs.metadata) AS j ORDER BY 1 LIMIT ?"
        return [r[0] for r in self.conn.execute(sql, (limit,))]

    def _sparse_index(self, slot: EncoderSlot) -> Any:
        return self._indexes.sparse(slot)

    # ------------------------------------------------------------------ indexes
    def build_indexes(self, *, progress: bool = False) -> None:
        """Bring the search indexes up to date with the documents now, and save them.

        `add` and `upsert` do this when they finish, so a collection is ready to answer the
        moment it is opened again; a sparse encoder other than BM25 is refitted at its first
        search instead (its weights change with every document).
        """
        with self._lock:
            self._after_write(progress)
            self._indexes.save_pending(self._slots)

    def _after_write(self, progress: bool) -> None:
        if not progress:
            self._indexes.sync(self._slots)
            return
        from tqdm.auto import tqdm

        for slot in tqdm(self._slots, desc="Building search indexes", unit=" index"):
            self._indexes.sync([slot])

    def rebuild(self) -> None:
        """Throw away every derived index and build them again from the database."""
        with self._lock:
            self._indexes.rebuild(self._slots)

    @staticmethod
    def _rowids(conn: sqlite3.Connection, ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for doc_id, rowid in conn.execute(
                f"SELECT id, rowid FROM docs WHERE id IN ({marks})", chunk
            ):
                found[doc_id] = rowid
        return found

    @staticmethod
    def destroy(path: str | os.PathLike[str]) -> None:
        """Delete a collection folder (refuses a folder that is not a collection)."""
        folder = Path(path)
        if not (folder / db.DATABASE).is_file():
            raise InputError(f"{folder}: not a collection (no {db.DATABASE}); nothing deleted")
        shutil.rmtree(folder)
