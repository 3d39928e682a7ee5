"""Keeping a collection's derived indexes in step with its database.

`DerivedIndexes` holds the loaded FAISS and sparse indexes of a collection, loads saved ones
whose stamp is intact, brings them up to the database's generation (dense: append new rows and
mask removed ones; sparse: refit), rebuilds when that is cheaper or the saved copy is damaged,
and saves them back. The database is never written here.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _schema as db
from ._bm25 import Bm25Index
from ._encoders import EncoderSlot
from ._indexes import STAMP, DenseIndex, HnswSettings, SparseIndex
from ._ivf import IvfIndex

__all__ = ["DerivedIndexes"]

log = logging.getLogger("embedcraft")


class DerivedIndexes:
    """The indexes of one open collection (see the module docstring)."""

    def __init__(
        self,
        connection: Callable[[], sqlite3.Connection],
        path: Path,
        hnsw: HnswSettings,
        persist: bool,
    ) -> None:
        self._connection = connection
        self.path = path
        self.hnsw = hnsw
        self.persist_indexes = persist
        self._dense: dict[int, DenseIndex | IvfIndex] = {}
        self._sparse: dict[int, SparseIndex | Bm25Index] = {}
        self._dirty: set[int] = set()

    @property
    def conn(self) -> sqlite3.Connection:
        return self._connection()

    def save_pending(self, slots: Sequence[EncoderSlot]) -> None:
        """Save the indexes updated in memory since they were last saved, where worth it (a
        large index with a few rows added is caught up from the database when next opened)."""
        for slot in slots:
            index = (self._sparse if slot.sparse else self._dense).get(slot.slot)
            if slot.slot in self._dirty and index is not None and index.worth_saving():
                self._save(slot, index)

    def _index_folder(self, slot: EncoderSlot) -> Path:
        kind = "sparse" if slot.sparse else "dense"
        return self.path / "indexes" / f"{kind}-{slot.slot}"

    def state(self, slot: EncoderSlot) -> dict[str, Any] | None:
        """The saved index's kind and generation (from its stamp), or None when there is none."""
        loaded = (self._sparse if slot.sparse else self._dense).get(slot.slot)
        if loaded is not None:
            kind, gen = getattr(loaded, "kind", "bm25"), loaded.generation
        else:
            try:
                stamp = json.loads((self._index_folder(slot) / "stamp.json").read_text("utf-8"))
                kind, gen = stamp.get("kind", "bm25"), int(stamp["generation"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
        return {"kind": kind, "generation": gen, "current": gen == db.generation(self.conn)}

    def _dense_vectors(self, slot: EncoderSlot, after: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Rowids above `after` and their unit-length vectors, read in chunks (no copies of
        the whole set on the way: a million rows take the memory of their matrix once)."""
        (n,) = self.conn.execute("SELECT COUNT(*) FROM docs WHERE rowid > ?", (after,)).fetchone()
        rowids = np.empty(n, dtype=np.int64)
        matrix = np.empty((n, slot.dim), dtype=np.float32)
        cursor = self.conn.execute(
            "SELECT doc, vector FROM vectors WHERE slot = ? AND doc > ? ORDER BY doc",
            (slot.slot, after),
        )
        filled = 0
        while rows := cursor.fetchmany(50_000):
            if filled + len(rows) > len(rowids):  # more vectors than documents: grow
                rowids = np.resize(rowids, filled + len(rows))
                matrix = np.resize(matrix, (filled + len(rows), slot.dim))
            chunk = db.blobs_to_matrix([r[1] for r in rows], slot.dim)
            norms = np.linalg.norm(chunk, axis=1, keepdims=True)
            np.divide(chunk, norms, out=chunk, where=norms > 0)
            rowids[filled : filled + len(rows)] = [r[0] for r in rows]
            matrix[filled : filled + len(rows)] = chunk
            filled += len(rows)
        return rowids[:filled], matrix[:filled]

    def _texts(self, after: int = 0) -> tuple[np.ndarray, Iterator[str]]:
        """Rowids above `after` and an iterator over their texts, in rowid order."""
        rows = self.conn.execute("SELECT rowid FROM docs WHERE rowid > ? ORDER BY rowid", (after,))
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64)
        cursor = self.conn.execute(
            "SELECT text FROM docs WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
            (after, int(rowids[-1]) if len(rowids) else after),
        )
        return rowids, (r[0] for r in cursor)

    def dense(self, slot: EncoderSlot, current: int | None = None) -> DenseIndex | IvfIndex:
        """The slot's FAISS index, exactly as the database stands now.

        `current`, when given, is a generation the caller has just read: an index loaded at
        that generation is returned as it is (the search hot path). Otherwise it is synced
        (see `_synced`).
        """
        index = self._dense.get(slot.slot)
        if index is not None and current is not None and index.generation == current:
            return index
        synced: DenseIndex | IvfIndex = self._synced(slot, self._dense, _DenseKind(self, slot))
        return synced

    def sparse(self, slot: EncoderSlot) -> Any:
        """The slot's sparse index: BM25 postings kept up to date (`Bm25Index`) or, for other
        sparse encoders, the encoder fitted on the current collection (`SparseIndex`)."""
        if Bm25Index.handles(slot.encoder):
            return self._synced(slot, self._sparse, _Bm25Kind(self, slot))
        return self._refitted(slot)

    def _synced(self, slot: EncoderSlot, loaded: dict[int, Any], kind: _IndexKind) -> Any:
        """The slot's index at the database's generation, read in one snapshot.

        An index in memory or saved on disk is caught up: rows added since are appended (their
        ids are all higher), rows removed since (the `removed` log) are masked. A saved copy is
        trusted only if, once caught up, it covers as many documents as the database holds,
        the last at the same rowid. Anything else is rebuilt. A rebuilt index is saved at
        once; a caught-up one when it says it is worth it, or at `save_pending`.
        """
        with db.snapshot(self.conn):
            current = db.generation(self.conn)
            index = loaded.get(slot.slot)
            if index is not None and index.generation == current:
                return index
            from_disk = False
            if index is None and self.persist_indexes:
                index = kind.load(self._index_folder(slot))
                from_disk = index is not None
            rebuilt = False
            if index is not None and index.generation != current:
                index.append(*kind.read(after=index.max_rowid))
                removed = db.removed_since(self.conn, index.generation)
                if len(removed):
                    index.alive = index.alive & ~index.mask_of(removed)
                index.generation = current
                if index.needs_rebuild():
                    index = None
                else:
                    self._dirty.add(slot.slot)
            if from_disk and index is not None:
                index = self._trusted(slot, index)
            if index is None:
                index, rebuilt = kind.build(current), True
            loaded[slot.slot] = index
        if rebuilt or index.worth_saving():
            self._save(slot, index)
        return index

    def _trusted(self, slot: EncoderSlot, index: Any) -> Any:
        """A saved index caught up with the database, or None when it disagrees with it.

        It must cover as many documents as the database holds, the last at the same rowid
        (every document has a vector in every dense slot; the count reads the small id index,
        not the vectors). A copy restored from elsewhere or a hand-edited database fails this.
        """
        count, last = self.conn.execute(
            "SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM docs"
        ).fetchone()
        if count == index.live and last == index.max_live_rowid:
            return index
        log.warning("the saved index of %s disagrees with the database: rebuilding", slot.name)
        return None

    def _save(self, slot: EncoderSlot, index: Any) -> None:
        self._dirty.discard(slot.slot)
        if not self.persist_indexes or not len(index.rowids):
            return  # an empty collection's index: nothing to keep
        try:
            index.save(self._index_folder(slot), encoder=slot.name)
        except OSError as exc:  # the index is a cache: searching goes on without the file
            log.warning("could not save the index of %s: %s", slot.name, exc)

    def _refitted(self, slot: EncoderSlot) -> SparseIndex:
        """The slot's encoder fitted on the current collection and its document matrix."""
        with db.snapshot(self.conn):  # the generation and the texts it stands for
            current = db.generation(self.conn)
            saved = self._sparse.get(slot.slot)
            index = saved if isinstance(saved, SparseIndex) else None
            if index is None and self.persist_indexes:
                index = SparseIndex.load(self._index_folder(slot), encoder=slot.name)
                if index is not None and index.generation == current:
                    index = self._trusted(slot, index)
            if index is not None and index.generation == current:
                self._sparse[slot.slot] = index
                return index
            rows = self.conn.execute("SELECT rowid, text FROM docs ORDER BY rowid").fetchall()
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        texts = [r[1] for r in rows]
        encoder, matrix = slot.fit_sparse(texts)
        index = SparseIndex(encoder, matrix, rowids, current)
        self._sparse[slot.slot] = index
        self._save(slot, index)
        return index

    def sync(self, slots: Sequence[EncoderSlot]) -> None:
        """Bring every index kept up to date incrementally (dense, BM25) to the database now;
        sparse indexes that are refitted wait for their first search."""
        for s in slots:
            if not s.sparse:
                self.dense(s)
            elif Bm25Index.handles(s.encoder):
                self.sparse(s)

    def rebuild(self, slots: Sequence[EncoderSlot]) -> None:
        """Throw away every derived index and build them again from the database."""
        shutil.rmtree(self.path / "indexes", ignore_errors=True)
        self._dense.clear()
        self._sparse.clear()
        self._dirty.clear()
        for s in slots:
            if s.sparse:
                self.sparse(s)
            else:
                self.dense(s)


class _IndexKind:
    """How `DerivedIndexes._synced` loads, reads rows for, and builds one kind of index."""

    def __init__(self, owner: DerivedIndexes, slot: EncoderSlot) -> None:
        self.owner, self.slot = owner, slot

    def load(self, folder: Path) -> Any:
        raise NotImplementedError

    def read(self, after: int) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def build(self, generation: int) -> Any:
        raise NotImplementedError


class _DenseKind(_IndexKind):
    """FAISS: a flat or HNSW `DenseIndex`, or an `IvfIndex` from `ivf_threshold` rows."""

    def load(self, folder: Path) -> DenseIndex | IvfIndex | None:
        try:
            kind = json.loads((folder / STAMP).read_text("utf-8"))["kind"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        cls = IvfIndex if kind == IvfIndex.kind else DenseIndex
        settings, slot = self.owner.hnsw, self.slot
        return cls.load(folder, settings, slot.dim, encoder=slot.name)

    def read(self, after: int) -> tuple[np.ndarray, Any]:
        return self.owner._dense_vectors(self.slot, after)

    def build(self, generation: int) -> DenseIndex | IvfIndex:
        rowids, matrix = self.read(after=0)
        settings = self.owner.hnsw
        cls = IvfIndex if len(rowids) >= settings.ivf_threshold else DenseIndex
        index = cls(self.slot.dim, settings)
        index.build(rowids, matrix, generation)
        log.info("built the %s index of %s (%d rows)", index.kind, self.slot.name, len(rowids))
        return index


class _Bm25Kind(_IndexKind):
    """BM25 postings (`Bm25Index`), read from the documents' texts."""

    def load(self, folder: Path) -> Bm25Index | None:
        return Bm25Index.load(folder, self._encoder(), encoder=self.slot.name)

    def _encoder(self) -> Any:
        return self.slot.encoder

    def read(self, after: int) -> tuple[np.ndarray, Any]:
        return self.owner._texts(after)

    def build(self, generation: int) -> Bm25Index:
        index = Bm25Index(self._encoder())
        index.build(*self.read(after=0), generation)
        return index
