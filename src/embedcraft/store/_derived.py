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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _schema as db
from ._encoders import EncoderSlot
from ._indexes import DenseIndex, HnswSettings, SparseIndex

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
        self._dense: dict[int, DenseIndex] = {}
        self._sparse: dict[int, SparseIndex] = {}
        self._dirty: set[int] = set()

    @property
    def conn(self) -> sqlite3.Connection:
        return self._connection()

    def save_pending(self, slots: Sequence[EncoderSlot]) -> None:
        """Save dense indexes that were updated in memory since they were last saved."""
        for slot in slots:
            if slot.slot in self._dirty and slot.slot in self._dense:
                self._save_dense(slot)

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
        rows = self.conn.execute(
            "SELECT doc, vector FROM vectors WHERE slot = ? AND doc > ? ORDER BY doc",
            (slot.slot, after),
        ).fetchall()
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = db.blobs_to_matrix([r[1] for r in rows], slot.dim)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        np.divide(matrix, norms, out=matrix, where=norms > 0)
        return rowids, matrix

    def dense(self, slot: EncoderSlot, current: int | None = None) -> DenseIndex:
        """The slot's FAISS index, exactly as the database stands now.

        `current`, when given, is a generation the caller has just read: an index loaded at
        that generation is returned as it is (the search hot path). Otherwise the generation
        and the rows are read in one snapshot, and a saved copy is trusted only when its
        generation, live row count and highest live row agree with the database; anything
        else is caught up (new rows appended, removed ones masked) or rebuilt.
        """
        index = self._dense.get(slot.slot)
        if index is not None and current is not None and index.generation == current:
            return index
        with db.snapshot(self.conn):
            return self._dense_in_snapshot(slot, index)

    def _dense_in_snapshot(self, slot: EncoderSlot, index: DenseIndex | None) -> DenseIndex:
        current = db.generation(self.conn)
        if index is not None and index.generation == current:
            return index
        if index is None and self.persist_indexes:
            index = DenseIndex.load(
                self._index_folder(slot), self.hnsw, slot.dim, encoder=slot.name
            )
            if index is not None and index.generation == current:
                index = self._trusted(slot, index, index.live, index.max_live_rowid)
        rebuilt = False
        if index is None:
            index, rebuilt = self._build_dense(slot, current), True
        elif index.generation != current:
            new_rows, new_vectors = self._dense_vectors(slot, after=index.max_rowid)
            index.append(new_rows, new_vectors)
            present = self.conn.execute(
                "SELECT doc FROM vectors WHERE slot = ? AND doc <= ?", (slot.slot, index.max_rowid)
            ).fetchall()
            index.alive = np.isin(index.rowids, np.fromiter((r[0] for r in present), np.int64))
            index.generation = current
            if index.needs_rebuild():
                index, rebuilt = self._build_dense(slot, current), True
            else:
                self._dirty.add(slot.slot)
        self._dense[slot.slot] = index
        if rebuilt:
            self._save_dense(slot)
        return index

    def _trusted(self, slot: EncoderSlot, index: Any, live: int, top: int) -> Any:
        """A saved index at the database's generation, or None when it disagrees with it.

        It must cover as many documents as the database holds, the last at the same rowid
        (every document has a vector in every dense slot; the count reads the small id index,
        not the vectors). A copy restored from elsewhere or a hand-edited database fails this.
        """
        count, last = self.conn.execute(
            "SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM docs"
        ).fetchone()
        if count == live and last == top:
            return index
        log.warning("the saved index of %s disagrees with the database: rebuilding", slot.name)
        return None

    def _build_dense(self, slot: EncoderSlot, current: int) -> DenseIndex:
        rowids, matrix = self._dense_vectors(slot)
        index = DenseIndex(slot.dim, self.hnsw)
        index.build(rowids, matrix, current)
        log.info("built the %s index of %s (%d rows)", index.kind, slot.name, len(rowids))
        return index

    def _save_dense(self, slot: EncoderSlot) -> None:
        self._dirty.discard(slot.slot)
        if not self.persist_indexes:
            return
        try:
            self._dense[slot.slot].save(self._index_folder(slot), encoder=slot.name)
        except OSError as exc:  # the index is a cache: searching goes on without the file
            log.warning("could not save the index of %s: %s", slot.name, exc)

    def sparse(self, slot: EncoderSlot) -> SparseIndex:
        """The slot's encoder fitted on the current collection and its document matrix."""
        with db.snapshot(self.conn):  # the generation and the texts it stands for
            current = db.generation(self.conn)
            index = self._sparse.get(slot.slot)
            if index is None and self.persist_indexes:
                index = SparseIndex.load(self._index_folder(slot), encoder=slot.name)
                if index is not None and index.generation == current:
                    top = int(index.rowids[-1]) if len(index.rowids) else 0
                    index = self._trusted(slot, index, len(index.rowids), top)
            if index is not None and index.generation == current:
                self._sparse[slot.slot] = index
                return index
            rows = self.conn.execute("SELECT rowid, text FROM docs ORDER BY rowid").fetchall()
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        texts = [r[1] for r in rows]
        encoder, matrix = slot.fit_sparse(texts)
        index = SparseIndex(encoder, matrix, rowids, current)
        self._sparse[slot.slot] = index
        if self.persist_indexes and texts:  # an empty collection's index: nothing to keep
            try:
                index.save(self._index_folder(slot), encoder=slot.name)
            except OSError as exc:
                log.warning("could not save the index of %s: %s", slot.name, exc)
        return index

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
