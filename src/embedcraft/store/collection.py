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
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..encoders.base import Encoder, as_texts
from ..errors import DimensionMismatchError, InputError
from ..search import Hit, reciprocal_rank_fusion, weighted_fusion
from . import _schema as db
from ._derived import DerivedIndexes
from ._encoders import EncoderSlot, load_slots, register_encoders
from ._indexes import HnswSettings
from .filters import Filter, parse_filter, sql_where

__all__ = ["Collection", "Document", "HnswSettings", "SearchMode"]

log = logging.getLogger("embedcraft")

SearchMode = Literal["dense", "sparse", "hybrid"]
_FILTER_CACHE = 8
"""Filters whose admitted rows are remembered (until the next write)."""
_FETCH_FOR_FUSION = 100
"""Candidates taken from each side before a hybrid fusion (at least k)."""


@dataclass(frozen=True)
class Document:
    """A stored document: its id, text and metadata."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


class Collection:
    """A persisted, searchable set of documents; see the module docstring for the layout.

    ``Collection(path, encoders=["bm25", "minilm-l6"])`` creates the folder on first use;
    ``Collection(path)`` opens an existing one. Encoders are catalog names, saved encoder
    folders or encoder objects; sparse ones (BM25, TF-IDF) are fitted on the collection itself.
    """

    def __init__(
        self,
        path: str | Path,
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
        given = register_encoders(self._conn, self.path, encoders) if encoders else {}
        self._slots: list[EncoderSlot] = load_slots(self._conn, self.path)
        for s in self._slots:
            if s.name in given and not s.sparse:
                s._encoder = given[s.name]
        if not self._slots:
            raise InputError(f"{self.path}: the collection has no encoders")
        self._filter_cache: dict[tuple[str, tuple[Any, ...]], tuple[int, np.ndarray]] = {}
        self._mask_cache: dict[int, tuple[Any, ...]] = {}
        self._indexes = DerivedIndexes(lambda: self.conn, self.path, self.hnsw, persist_indexes)

    # ------------------------------------------------------------------ basics
    def __repr__(self) -> str:
        names = ", ".join(s.name for s in self._slots)
        return f"Collection({str(self.path)!r}, encoders=[{names}], count={self.count()})"

    def __len__(self) -> int:
        return self.count()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Save indexes updated since they were last saved, and close the database."""
        with self._lock:
            if self._conn is None:
                return
            self._indexes.save_pending(self._slots)
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise InputError(f"{self.path}: the collection is closed")
        return self._conn

    @property
    def encoder_names(self) -> list[str]:
        return [s.name for s in self._slots]

    def encoder(self, name: str) -> Encoder:
        """The encoder registered under `name` (as used for documents and queries)."""
        return self._by_name(name).encoder

    def count(self, where: Filter | None = None) -> int:
        """Number of documents (matching `where` when given)."""
        sql, params = sql_where(parse_filter(where), "metadata", "sqlite")
        with self._lock:
            (n,) = self.conn.execute(f"SELECT COUNT(*) FROM docs WHERE {sql}", params).fetchone()
        return int(n)

    def generation(self) -> int:
        """A number that grows with every committed write (by any process)."""
        with self._lock:
            return db.generation(self.conn)

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
        """Add new documents (an id already present is an error: use `upsert`); returns the ids.

        Each batch of `batch_size` documents is encoded, then committed in one transaction.
        `vectors` maps a dense encoder's name to the documents' vectors when they were made
        elsewhere (n x dim); that encoder then encodes only the queries.
        """
        return self._write(texts, ids, metadata, vectors, batch_size, progress, replace=False)

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
        if ids is None:
            raise InputError("upsert needs the ids of the documents to add or replace")
        return self._write(texts, ids, metadata, vectors, batch_size, progress, replace=True)

    def delete(self, ids: str | Sequence[str]) -> int:
        """Delete documents by id, all or none: an unknown id is an error. Returns the count."""
        wanted = self._check_ids([ids] if isinstance(ids, str) else ids)
        with self._lock, db.transaction(self.conn) as conn:
            rows = self._rowids(conn, wanted)
            missing = [i for i in wanted if i not in rows]
            if missing:
                raise InputError(_unknown_ids(missing))
            for chunk in _chunks(list(rows.values()), 500):
                marks = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM vectors WHERE doc IN ({marks})", chunk)
                conn.execute(f"DELETE FROM docs WHERE rowid IN ({marks})", chunk)
            db.bump_generation(conn)
        return len(rows)

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
        missing = [i for i in wanted if i not in found]
        if missing:
            raise InputError(_unknown_ids(missing))
        return [found[i] for i in wanted]

    def ids(self) -> list[str]:
        """Every document id, in insertion order."""
        with self._lock:
            return [r[0] for r in self.conn.execute("SELECT id FROM docs ORDER BY rowid")]

    def _write(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None,
        metadata: Sequence[Mapping[str, Any] | None] | None,
        given: Mapping[str, Any] | None,
        batch_size: int,
        progress: bool,
        *,
        replace: bool,
    ) -> list[str]:
        docs = as_texts(texts)
        for i, text in enumerate(docs):
            if not text.strip():
                raise InputError(f"document {i} has an empty text")
        doc_ids = [uuid.uuid4().hex for _ in docs] if ids is None else self._check_ids(ids)
        if len(doc_ids) != len(docs):
            raise InputError(f"{len(docs)} texts but {len(doc_ids)} ids")
        if len(set(doc_ids)) != len(doc_ids):
            seen: set[str] = set()
            dup = next(i for i in doc_ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise InputError(f"id {dup!r} appears twice in one call")
        metas = [None] * len(docs) if metadata is None else list(metadata)
        if len(metas) != len(docs):
            raise InputError(f"{len(docs)} texts but {len(metas)} metadata entries")
        meta_json = [db.dump_metadata(i, m) for i, m in enumerate(metas)]
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if not docs:
            return []
        with self._lock:
            if not replace:
                existing = self._rowids(self.conn, doc_ids)
                if existing:
                    shown = ", ".join(repr(i) for i in list(existing)[:5])
                    raise InputError(
                        f"{len(existing)} id(s) already in the collection ({shown}): "
                        "use upsert to replace documents"
                    )
            dense = [s for s in self._slots if not s.sparse]
            made = self._given_vectors(given or {}, len(docs))
            self._fit_unfitted([s for s in dense if s.slot not in made], docs)
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(docs), desc="Indexing", unit=" docs")
            try:
                for start in range(0, len(docs), batch_size):
                    stop = start + batch_size
                    vectors = {
                        s.slot: made[s.slot][start:stop]
                        if s.slot in made
                        else s.encode_documents(docs[start:stop])
                        for s in dense
                    }
                    self._commit_batch(
                        doc_ids[start:stop], docs[start:stop], meta_json[start:stop], vectors,
                        replace=replace,
                    )  # fmt: skip
                    if bar is not None:
                        bar.update(len(docs[start:stop]))
            finally:
                if bar is not None:
                    bar.close()
        return doc_ids

    def _given_vectors(self, given: Mapping[str, Any], n: int) -> dict[int, np.ndarray]:
        """Checked document vectors made elsewhere, by slot."""
        made = {}
        for name, matrix in given.items():
            slot = self._by_name(name)
            if slot.sparse:
                raise InputError(f"{name!r} is sparse: its vectors are made from the texts")
            made[slot.slot] = slot.given_documents(matrix, n)
        return made

    def _fit_unfitted(self, dense: list[EncoderSlot], docs: list[str]) -> None:
        """Dense encoders that learn from text are fitted on the first documents added."""
        for s in dense:
            if s.is_fitted():
                continue
            if self.count() > 0:
                raise InputError(
                    f"encoder {s.name!r} is not fitted and the collection is not empty: "
                    "fit it and create the collection with the fitted encoder"
                )
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
                old = list(self._rowids(conn, ids).values())
                for chunk in _chunks(old, 500):
                    marks = ",".join("?" * len(chunk))
                    conn.execute(f"DELETE FROM vectors WHERE doc IN ({marks})", chunk)
                    conn.execute(f"DELETE FROM docs WHERE rowid IN ({marks})", chunk)
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
    ) -> list[Hit]:
        """The k best documents for `query`; see `search_many`."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        return self.search_many(
            [query], k, mode=mode, where=where, encoder=encoder, fusion=fusion, alpha=alpha,
            explain=explain,
        )[0]  # fmt: skip

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
    ) -> list[list[Hit]]:
        """The k best documents for each query, among those matching `where`.

        mode: "dense" (cosine of the dense encoder's vectors), "sparse" (BM25/TF-IDF score) or
        "hybrid" (both, fused by reciprocal rank, or with fusion="weighted" a blend of min-max
        scaled scores, `alpha` on the dense side). The default is hybrid when the collection
        has both kinds of encoder. `encoder` picks one by name for dense or sparse mode.
        A filter returns exactly the top k of the matching documents (fewer only when fewer
        match). explain=True adds `Hit.explanation`: the terms (sparse) or words (dense, for
        transformer encoders) that contributed most.
        """
        items = as_texts(queries)
        if not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}")
        if fusion not in ("rrf", "weighted"):
            raise InputError(f"fusion must be 'rrf' or 'weighted', got {fusion!r}")
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"alpha must be between 0 and 1, got {alpha}")
        conditions = parse_filter(where)
        with self._lock:
            sides = self._sides(mode, encoder)
            allowed = self._allowed(conditions)
            fetch = k if len(sides) == 1 else max(k, _FETCH_FOR_FUSION)
            ranked = {s.slot: self._search_side(s, items, fetch, allowed) for s in sides}
            results = self._fuse(ranked, sides, len(items), k, fusion, alpha)
            return self._hits(items, results, sides, explain)

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
        if not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}")
        conditions = parse_filter(where)
        with self._lock:
            (side,) = self._sides("dense", encoder)
            q = side.prepare_queries(vectors)
            ranked = {side.slot: self._indexes_search(side, q, k, self._allowed(conditions))}
            results = self._fuse(ranked, [side], len(q), k, "rrf", 0.5)
            return self._hits([""] * len(q), results, [side], False)

    def _allowed(self, conditions: list[Any]) -> np.ndarray | None:
        """Sorted rowids of the documents a filter admits (None: no filter).

        The last few filters' answers are kept until the next committed write, so a run of
        queries with one filter scans the metadata once.
        """
        if not conditions:
            return None
        sql, params = sql_where(conditions, "metadata", "sqlite")
        key, current = (sql, tuple(params)), db.generation(self.conn)
        cached = self._filter_cache.get(key)
        if cached is not None and cached[0] == current:
            return cached[1]
        rows = self.conn.execute(f"SELECT rowid FROM docs WHERE {sql}", params)
        allowed = np.fromiter((r[0] for r in rows), dtype=np.int64)
        allowed.sort()
        self._filter_cache[key] = (current, allowed)
        while len(self._filter_cache) > _FILTER_CACHE:
            self._filter_cache.pop(next(iter(self._filter_cache)))
        return allowed

    def _indexes_search(
        self, side: EncoderSlot, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        dense = self._indexes.dense(side)
        mask = None
        if allowed is not None:
            key = (side.slot, id(allowed), id(dense.alive), len(dense))
            cached = self._mask_cache.get(side.slot)
            if cached is None or cached[0] != key:
                cached = (key, dense.mask_of(allowed), allowed, dense.alive)
                self._mask_cache[side.slot] = cached
            mask = cached[1]
        return list(zip(*dense.search(q, k, mask), strict=True))

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
        results = []
        for qi in range(n_queries):
            lists = [
                [(int(r), float(v)) for v, r in zip(*ranked[s.slot][qi], strict=True) if r >= 0]
                for s in sides
            ]
            if len(sides) == 1:
                fused = lists[0][:k]
            elif fusion == "rrf":
                fused = reciprocal_rank_fusion([[r for r, _ in lst] for lst in lists], k)
            else:
                fused = weighted_fusion(lists, [alpha, 1.0 - alpha], k)
            per_side = [dict(lst) for lst in lists]
            results.append(
                [
                    (
                        r,
                        score,
                        {s.name: d[r] for s, d in zip(sides, per_side, strict=True) if r in d},
                    )
                    for r, score in fused
                ]
            )
        return results

    def _sides(self, mode: SearchMode | None, name: str | None) -> list[EncoderSlot]:
        dense = [s for s in self._slots if not s.sparse]
        sparse = [s for s in self._slots if s.sparse]
        if name is not None:
            chosen = self._by_name(name)
            if mode == "hybrid":
                raise InputError("hybrid mode uses one dense and one sparse encoder; omit encoder")
            wanted = "sparse" if chosen.sparse else "dense"
            if mode is not None and mode != wanted:
                raise InputError(f"encoder {name!r} is {wanted}, not {mode}")
            return [chosen]
        if mode is None:
            mode = "hybrid" if dense and sparse else "dense" if dense else "sparse"
        if mode not in ("dense", "sparse", "hybrid"):
            raise InputError(f"mode must be dense, sparse or hybrid, got {mode!r}")
        if mode in ("dense", "hybrid") and not dense:
            raise InputError(f"{mode} search needs a dense encoder; this collection has none")
        if mode in ("sparse", "hybrid") and not sparse:
            raise InputError(f"{mode} search needs a sparse encoder (e.g. bm25); it has none")
        if mode == "dense":
            return dense[:1]
        return sparse[:1] if mode == "sparse" else [dense[0], sparse[0]]

    def _search_side(
        self, slot: EncoderSlot, queries: list[str], k: int, allowed: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        if slot.sparse:
            index = self._indexes.sparse(slot)
            mask = None if allowed is None else index.mask_of(allowed)
            scores, rows = index.search(slot.encode_sparse_queries(index, queries), k, mask)
            return list(zip(scores, rows, strict=True))
        return self._indexes_search(slot, slot.encode_queries(queries), k, allowed)

    def _hits(
        self,
        queries: list[str],
        results: list[list[tuple[int, float, dict[str, float]]]],
        sides: list[EncoderSlot],
        explain: bool,
    ) -> list[list[Hit]]:
        wanted = sorted({r for hits in results for r, _, _ in hits})
        docs: dict[int, tuple[str, str, str]] = {}
        for chunk in _chunks(wanted, 500):
            marks = ",".join("?" * len(chunk))
            for rowid, doc_id, text, meta in self.conn.execute(
                f"SELECT rowid, id, text, metadata FROM docs WHERE rowid IN ({marks})", chunk
            ):
                docs[rowid] = (doc_id, text, meta)
        out: list[list[Hit]] = []
        for qi, hits in enumerate(results):
            row: list[Hit] = []
            for r, score, side_scores in hits:
                if r not in docs:  # deleted after the index was synced: drop, never mislabel
                    continue
                doc_id, text, meta = docs[r]
                metadata = {} if meta == "{}" else json.loads(meta)
                explanation = None
                if explain:
                    explanation = {"scores": side_scores}
                    for s in sides:
                        explanation[s.name] = self._explain(s, queries[qi], r, text)
                row.append(Hit(doc_id, score, text, len(row) + 1, metadata, explanation))
            out.append(row)
        return out

    def _explain(self, slot: EncoderSlot, query: str, rowid: int, text: str) -> Any:
        if slot.sparse:
            index = self._indexes.sparse(slot)
            terms = index.explain(slot.encode_sparse_queries(index, [query]), rowid)
            return {"terms": [{"term": t, "contribution": c} for t, c in terms]}
        return slot.explain_dense(query, text)

    # ------------------------------------------------------------------ indexes
    def _by_name(self, name: str) -> EncoderSlot:
        for s in self._slots:
            if s.name == name:
                return s
        raise InputError(
            f"no encoder {name!r} in this collection; it has: {', '.join(self.encoder_names)}"
        )

    def rebuild(self) -> None:
        """Throw away every derived index and build them again from the database."""
        with self._lock:
            self._indexes.rebuild(self._slots)

    @staticmethod
    def _check_ids(ids: Iterable[Any]) -> list[str]:
        if isinstance(ids, str | bytes) or ids is None:
            raise TypeError("ids must be a list of strings")
        out = []
        for i, doc_id in enumerate(ids):
            if not isinstance(doc_id, str) or not doc_id:
                raise InputError(f"id {i} must be a non-empty string, got {doc_id!r}")
            out.append(doc_id)
        return out

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
    def destroy(path: str | Path) -> None:
        """Delete a collection folder (refuses a folder that is not a collection)."""
        folder = Path(path)
        if not (folder / db.DATABASE).is_file():
            raise InputError(f"{folder}: not a collection (no {db.DATABASE}); nothing deleted")
        shutil.rmtree(folder)


def _side_scores(
    rowid: int, sides: list[EncoderSlot], per_side: list[dict[int, float]]
) -> dict[str, float]:
    return {s.name: d[rowid] for s, d in zip(sides, per_side, strict=True) if rowid in d}


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _unknown_ids(missing: list[str]) -> str:
    shown = ", ".join(repr(i) for i in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return f"unknown id(s): {shown}{more}"


def check_dimension(name: str, expected: int, got: int) -> None:
    if expected != got:
        raise DimensionMismatchError(
            f"encoder {name!r} gives {got}-dim vectors but the collection stores {expected}"
        )
