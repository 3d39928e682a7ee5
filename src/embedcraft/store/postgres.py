"""`PostgresCollection`: the `VectorCollection` interface on PostgreSQL + pgvector, for
collections that outgrow a folder or are shared by several machines.

Tables (names start with a prefix, ``embedcraft_`` unless the URL says ``?table_prefix=...``):
`info` (format, `generation`), `encoders` (name, sparse, dim, spec, and the saved model of a dense
encoder fitted on the collection), `docs` (rowid, id, text, metadata jsonb) and one `dense_<slot>`
table per dense encoder (`embedding vector(dim)` with an HNSW cosine index). Each write batch is
one transaction that also bumps `generation`. Dense search runs in the server; sparse encoders
(BM25, TF-IDF) are refitted in memory on the collection's texts whenever `generation` moves.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..encoders.base import BaseEncoder, Encoder, as_texts
from ..errors import InputError
from ..search import Hit
from ._base import (
    SearchMode,
    _CollectionBase,
    _in_order,
    _unknown_ids,
)
from ._encoders import EncoderSlot, new_encoders, resolve_encoders
from ._indexes import HnswSettings, SparseIndex
from ._pg import pack, psycopg_module, split_url, unpack
from ._ranking import check_k, check_search, fetch_size, fuse_query
from .collection import Document
from .filters import Condition, Filter, parse_filter, sql_has_key, sql_where

__all__ = ["PostgresCollection"]

FORMAT = "embedcraft-postgres/1"
_HNSW_MAX_DIM = 2000
"""pgvector's HNSW takes `vector` columns of at most 2,000 dimensions; wider ones search exactly."""


class PostgresCollection(_CollectionBase):
    """A searchable set of documents in a PostgreSQL database: the `VectorCollection` of a URL.

    ``PostgresCollection("postgresql://user@host/db", encoders=["bm25", "minilm-l6"])`` creates
    the tables on first use (and the `vector` extension, where the user may);
    ``PostgresCollection(url)`` opens them. `hnsw` sets the index (m, ef_construction), the
    search beam (ef_search) and when search is exact (threshold, exact_limit).
    """

    def __init__(
        self,
        url: str,
        encoders: Sequence[str | Encoder] | None = None,
        *,
        hnsw: HnswSettings | None = None,
    ) -> None:
        psycopg = psycopg_module()
        conninfo, self.url, self.prefix = split_url(url)
        self.hnsw = hnsw or HnswSettings()
        self._lock = threading.RLock()
        self._sparse: dict[int, SparseIndex] = {}
        self._docs, self._info, self._encoders = (self._t(n) for n in ("docs", "info", "encoders"))
        try:
            self._conn: Any = psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            raise InputError(f"cannot connect to {self.url}: {exc}".strip()) from None
        self._folder = Path(tempfile.mkdtemp(prefix="embedcraft-pg-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._folder, True)
        try:
            exists = self._one("SELECT to_regclass(%s)", (self._info,)) is not None
            if not exists and not encoders:
                raise InputError(
                    f"{self.url}: no collection with table prefix {self.prefix!r}; create one "
                    "by naming its encoders (e.g. encoders=['bm25', 'minilm-l6'])"
                )
            self._enable_vector()
            if not exists:
                self._create_tables()
            found = self._one(f"SELECT value FROM {self._info} WHERE key = 'format'")
            if found != FORMAT:
                raise InputError(f"{self.url}: table format {found!r}; this version reads {FORMAT}")
            given = self._register(encoders) if encoders else {}
            self._slots: list[EncoderSlot] = self._load_slots(given)
            if not self._slots:
                raise InputError(f"{self.url}: the collection has no encoders")
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ tables
    def _t(self, name: str) -> str:
        return f'"{self.prefix}{name}"'

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def _enable_vector(self) -> None:
        """Create the `vector` extension if missing, and teach psycopg its type."""
        from pgvector.psycopg import register_vector

        if self._one("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 0:
            try:
                self.conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg_module().Error as exc:
                raise InputError(
                    f"{self.url}: the pgvector extension is not installed in this database and "
                    f"could not be created ({exc}); run CREATE EXTENSION vector as its owner"
                ) from None
        register_vector(self.conn)
        version = self._one("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        self._iterative = tuple(int(v) for v in version.split(".")[:2]) >= (0, 8)

    def _create_tables(self) -> None:
        with self.conn.transaction():
            self._lock_schema()
            self.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._info} "
                "(key text PRIMARY KEY, value text NOT NULL);"
                f"CREATE TABLE IF NOT EXISTS {self._encoders} (slot serial PRIMARY KEY, "
                "name text NOT NULL UNIQUE, sparse boolean NOT NULL, dim integer, "
                "spec jsonb NOT NULL, saved bytea);"
                f"CREATE TABLE IF NOT EXISTS {self._docs} (rowid bigserial PRIMARY KEY, "
                "id text NOT NULL UNIQUE, text text NOT NULL, metadata jsonb NOT NULL DEFAULT '{}')"
            )
            self.conn.execute(
                f"INSERT INTO {self._info} VALUES ('format', %s), ('generation', '0') "
                "ON CONFLICT DO NOTHING",
                (FORMAT,),
            )

    def _lock_schema(self) -> None:
        """Serialize schema changes under this prefix across clients (inside a transaction)."""
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.prefix,))

    def _create_dense(self, slot: int, dim: int) -> None:
        """The vector table of one dense encoder and its HNSW index (inside a transaction)."""
        table = self._t(f"dense_{slot}")
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (doc bigint PRIMARY KEY REFERENCES "
            f"{self._docs} (rowid) ON DELETE CASCADE, embedding vector({int(dim)}) NOT NULL)"
        )
        if dim <= _HNSW_MAX_DIM:
            self.conn.execute(
                f"CREATE INDEX IF NOT EXISTS {self._t(f'dense_{slot}_hnsw')} ON {table} USING "
                f"hnsw (embedding vector_cosine_ops) WITH (m = {int(self.hnsw.m)}, "
                f"ef_construction = {int(self.hnsw.ef_construction)})"
            )

    def _register(self, encoders: Sequence[str | Encoder]) -> dict[str, BaseEncoder]:
        """Record encoders not yet in the collection (only while it holds no documents).

        Returns the encoder objects given, by name, so this session uses them as they are.
        """
        resolved = resolve_encoders(encoders)
        with self.conn.transaction():
            self._lock_schema()
            known = {r[0] for r in self.conn.execute(f"SELECT name FROM {self._encoders}")}
            count = self._one(f"SELECT count(*) FROM {self._docs}")
            for entry in new_encoders(resolved, known, int(count)):
                saved = None
                if entry.save_whole:  # learned state travels with the collection
                    folder = self._folder / "register" / uuid.uuid4().hex
                    entry.encoder.save(folder)
                    saved = pack(folder)
                slot = self._one(
                    f"INSERT INTO {self._encoders} (name, sparse, dim, spec, saved) "
                    "VALUES (%s, %s, %s, %s::jsonb, %s) RETURNING slot",
                    (entry.name, entry.sparse, entry.dim, entry.spec_json, saved),
                )
                if entry.dim is not None:
                    self._create_dense(slot, entry.dim)
        return {e.name: e for e in resolved}

    def _load_slots(self, given: dict[str, BaseEncoder]) -> list[EncoderSlot]:
        slots = []
        for slot, name, sparse, dim, spec, saved in self.conn.execute(
            f"SELECT slot, name, sparse, dim, spec, saved FROM {self._encoders} ORDER BY slot"
        ):
            mine = None if sparse else given.get(name)
            entry = EncoderSlot(self._folder, slot, name, sparse, dim, spec, mine)
            if saved is not None:
                unpack(bytes(saved), entry.saved_folder)
            slots.append(entry)
        return slots

    # ------------------------------------------------------------------ basics
    _REPR_NAME = "PostgresCollection"

    def _location(self) -> str:
        return self.url

    def close(self) -> None:
        """Close the connection and drop the local copies of fitted encoders."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._cleanup()

    @property
    def conn(self) -> Any:
        """The psycopg connection (autocommit; writes use explicit transactions)."""
        if self._conn is None:
            raise InputError(f"{self.url}: the collection is closed")
        return self._conn

    def _where(self, where: Filter | None) -> tuple[str, list[Any], list[Condition]]:
        conditions = parse_filter(where)
        return (*sql_where(conditions, "metadata", "postgres"), conditions)

    def _check_matched(
        self, where: tuple[str, list[Any], list[Condition]], results: Sequence[Sequence[Any]]
    ) -> None:
        """After a filtered search left a query without results: refuse a filter on a key no
        document has (`_refuse_unknown_keys`)."""
        sql, params, conditions = where
        if conditions and not all(results) and self._count_upto(sql, params, 1) == 0:
            self._refuse_unknown_keys(conditions)

    def count(self, where: Filter | None = None) -> int:
        """Number of documents (matching `where` when given)."""
        sql, params, conditions = self._where(where)
        with self._lock:
            n = int(self._one(f"SELECT count(*) FROM {self._docs} WHERE {sql}", params))
            if conditions and not n:
                self._refuse_unknown_keys(conditions)
            return n

    def generation(self) -> int:
        """A number that grows with every committed write (by any client)."""
        with self._lock:
            return int(self._one(f"SELECT value FROM {self._info} WHERE key = 'generation'"))

    def info(self) -> dict[str, Any]:
        """What the collection holds and how its indexes stand (JSON-ready)."""
        with self._lock:
            current = self.generation()
            encoders = []
            for s in self._slots:
                index: dict[str, Any] | None = None
                if s.sparse and s.slot in self._sparse:
                    made = self._sparse[s.slot].generation
                    index = {"kind": "bm25", "generation": made, "current": made == current}
                elif not s.sparse and s.width is not None:
                    kind = "hnsw" if s.width <= _HNSW_MAX_DIM else "exact"
                    index = {"kind": kind, "generation": current, "current": True}  # the server's
                encoders.append(
                    {"name": s.name, "sparse": s.sparse, "dim": s.width, "index": index}
                )
            return {"url": self.url, "table_prefix": self.prefix, "count": self.count(),
                    "generation": current, "encoders": encoders}  # fmt: skip

    # ------------------------------------------------------------------ writes
    def delete(self, ids: str | Sequence[str]) -> int:
        """Delete documents by id, all or none: an unknown id is an error. Returns the count."""
        wanted = list(dict.fromkeys(self._check_ids([ids] if isinstance(ids, str) else ids)))
        with self._lock, self.conn.transaction():
            sql = f"DELETE FROM {self._docs} WHERE id = ANY(%s) RETURNING id"
            gone = {r[0] for r in self.conn.execute(sql, (wanted,))}
            missing = [i for i in wanted if i not in gone]
            if missing:  # raising rolls the transaction back: nothing is deleted
                raise InputError(_unknown_ids(missing))
            self._bump()
        return len(gone)

    def get(self, ids: str | Sequence[str]) -> list[Document]:
        """The documents with these ids, in the order asked; an unknown id is an error."""
        wanted = self._check_ids([ids] if isinstance(ids, str) else ids)
        sql = f"SELECT id, text, metadata FROM {self._docs} WHERE id = ANY(%s)"
        with self._lock:
            found = {r[0]: Document(*r) for r in self.conn.execute(sql, (wanted,))}
        return _in_order(wanted, found)

    def ids(self) -> list[str]:
        """Every document id, in insertion order."""
        with self._lock:
            return [r[0] for r in self.conn.execute(f"SELECT id FROM {self._docs} ORDER BY rowid")]

    def _bump(self) -> None:
        self.conn.execute(
            f"UPDATE {self._info} SET value = (value::bigint + 1)::text WHERE key = 'generation'"
        )

    def _check_text(self, i: int, text: str) -> None:
        super()._check_text(i, text)
        if "\x00" in text:
            raise InputError(f"document {i} holds a NUL character, which PostgreSQL refuses")

    def _existing_ids(self, ids: list[str]) -> list[str]:
        sql = f"SELECT id FROM {self._docs} WHERE id = ANY(%s)"
        return [r[0] for r in self.conn.execute(sql, (ids,))]

    def _stored_docs(self, ids: list[str]) -> dict[str, tuple[str, Any]]:
        sql = f"SELECT id, text, metadata FROM {self._docs} WHERE id = ANY(%s)"
        return {r[0]: (r[1], r[2]) for r in self.conn.execute(sql, (ids,))}

    def _has_key(self, key: str) -> bool:
        sql, params = sql_has_key(key, "metadata", "postgres")
        return self._one(f"SELECT 1 FROM {self._docs} WHERE {sql} LIMIT 1", params) is not None

    def _metadata_keys(self, limit: int) -> list[str]:
        keys = f"SELECT DISTINCT k FROM {self._docs}, jsonb_object_keys(metadata) k"
        return [r[0] for r in self.conn.execute(f"{keys} ORDER BY 1 LIMIT %s", (limit,))]

    def _fit_unfitted(self, docs: list[str], made: dict[int, np.ndarray]) -> None:
        """A dense encoder that learns from text is fitted on the first documents added, then
        kept in the `encoders` table so every client encodes with the same fitted model."""
        for i, s in enumerate(self._slots):
            if s.sparse or s.slot in made or s.is_fitted():
                continue
            self._refuse_late_fit(s)
            encoder = s.encoder.fit(docs)
            encoder.save(s.saved_folder)
            dim = int(encoder.dim)
            with self.conn.transaction():
                self._lock_schema()
                self.conn.execute(
                    f"UPDATE {self._encoders} SET dim = %s, saved = %s WHERE slot = %s",
                    (dim, pack(s.saved_folder), s.slot),
                )
                self._create_dense(s.slot, dim)
            self._slots[i] = EncoderSlot(self._folder, s.slot, s.name, False, dim, s.spec, encoder)

    def _commit_batch(
        self,
        ids: list[str],
        texts: list[str],
        metadata: list[str],
        vectors: dict[int, np.ndarray],
        *,
        replace: bool,
    ) -> None:
        psycopg = psycopg_module()
        try:
            with self.conn.transaction():
                if replace:  # the old rows' vectors go with them (ON DELETE CASCADE)
                    self.conn.execute(f"DELETE FROM {self._docs} WHERE id = ANY(%s)", (ids,))
                rowid = dict(
                    self.conn.execute(
                        f"INSERT INTO {self._docs} (id, text, metadata) SELECT * FROM "
                        "unnest(%s::text[], %s::text[], %s::jsonb[]) RETURNING id, rowid",
                        (ids, texts, metadata),
                    ).fetchall()
                )
                for slot, matrix in vectors.items():
                    copy_sql = f"COPY {self._t(f'dense_{slot}')} FROM STDIN WITH (FORMAT BINARY)"
                    with self.conn.cursor() as cur, cur.copy(copy_sql) as copy:
                        copy.set_types(["int8", "vector"])
                        for doc_id, vector in zip(ids, matrix, strict=True):
                            copy.write_row((rowid[doc_id], vector))
                self._bump()
        except psycopg.errors.UniqueViolation:
            raise InputError(
                "an id of this batch was added meanwhile by another writer: use upsert"
            ) from None
        except psycopg.DataError as exc:
            raise InputError(f"PostgreSQL refused a document of this batch: {exc}") from None

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

        Modes, fusion, filters, `min_score` and explanations as in `Collection.search_many`.
        Dense scores are 1 - cosine distance, and a filter returns exactly the top k of the
        matching documents. A query whose dense vector is zero (no known word) has no dense
        results.
        """
        items = as_texts(queries)
        check_search(k, fusion, alpha, min_score)
        filtered = self._where(where)
        where_sql, params, _ = filtered
        with self._lock:
            sides = self._sides(mode, encoder)
            fetch = fetch_size(k, sides)
            ranked = [
                (self._search_sparse if s.sparse else self._search_dense)(
                    s, items, fetch, where_sql, params
                )
                for s in sides
            ]
            results = [
                fuse_query([side[qi] for side in ranked], sides, k, fusion, alpha)
                for qi in range(len(items))
            ]
            self._check_matched(filtered, results)
            return self._hits(items, results, sides, explain, min_score)

    def _dense_sql(self, slot: EncoderSlot, where_sql: str, *, exact: bool = False) -> str:
        """Nearest rows by cosine distance; parameters: query vector, filter's, limit.

        The exact form sorts a subquery (OFFSET 0 keeps it apart) that no index can serve, so
        it stays exact whatever the planner settings.
        """
        rows = f"{self._t(f'dense_{slot.slot}')} v"
        if where_sql != "1=1":
            rows += f" JOIN {self._docs} d ON d.rowid = v.doc WHERE {where_sql}"
        select = f"SELECT v.doc, v.embedding <=> %s AS distance FROM {rows}"
        if exact:
            return f"SELECT * FROM ({select} OFFSET 0) s ORDER BY distance LIMIT %s"
        return f"{select} ORDER BY distance LIMIT %s"

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int = 10,
        *,
        where: Filter | None = None,
        encoder: str | None = None,
    ) -> list[list[Hit]]:
        """The k documents closest (cosine) to each given query vector, as `Collection`'s."""
        check_search(k, "rrf", 0.5)
        filtered = self._where(where)
        where_sql, params, _ = filtered
        with self._lock:
            (side,) = self._sides("dense", encoder)
            q = side.prepare_queries(vectors)
            ranked = self._rank_dense(side, q, k, where_sql, params)
            self._check_matched(filtered, ranked)
            results = [fuse_query([row], [side], k, "rrf", 0.5) for row in ranked]
            return self._hits([""] * len(q), results, [side], False)

    def nearest_ids(
        self,
        vectors: np.ndarray,
        k: int = 10,
        *,
        where: Filter | None = None,
        encoder: str | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        """Ids and cosine scores of the k documents closest to each query vector, as
        `Collection.nearest_ids`: (ids per query, a (queries, k) float32 score array, -inf
        where fewer than k documents qualify). Reads no text or metadata."""
        check_k(k)
        filtered = self._where(where)
        where_sql, params, _ = filtered
        with self._lock:
            (side,) = self._sides("dense", encoder)
            ranked = self._rank_dense(side, side.prepare_queries(vectors), k, where_sql, params)
            self._check_matched(filtered, ranked)
            rowids = sorted({r for row in ranked for r, _ in row})
            sql = f"SELECT rowid, id FROM {self._docs} WHERE rowid = ANY(%s)"
            id_of: dict[int, str] = dict(self.conn.execute(sql, (rowids,)).fetchall())
        ids: list[list[str]] = []
        scores = np.full((len(ranked), k), -np.inf, dtype=np.float32)
        for i, row in enumerate(ranked):
            kept = [(id_of[r], score) for r, score in row if r in id_of]  # deleted meanwhile: gone
            ids.append([doc_id for doc_id, _ in kept])
            scores[i, : len(kept)] = [score for _, score in kept]
        return ids, scores

    def _search_dense(
        self, slot: EncoderSlot, queries: list[str], k: int, where_sql: str, params: list[Any]
    ) -> list[list[tuple[int, float]]]:
        """Per query, (rowid, 1 - cosine distance) best first (see `_rank_dense`)."""
        return self._rank_dense(slot, slot.encode_queries(queries), k, where_sql, params)

    def _rank_dense(
        self, slot: EncoderSlot, vectors: np.ndarray, k: int, where_sql: str, params: list[Any]
    ) -> list[list[tuple[int, float]]]:
        """Per query, (rowid, 1 - cosine distance) best first.

        Exact below `hnsw.threshold` documents or when a filter admits at most
        `hnsw.exact_limit` of them (as `Collection`); otherwise HNSW with `hnsw.ef_search` and,
        under a filter, pgvector's iterative scan. An HNSW query that still returns fewer than
        min(k, matching rows) is redone exactly, so filtered lists are never cut short.
        """
        filtered = where_sql != "1=1"
        limit = max(self.hnsw.exact_limit, k) if filtered else 0
        matching = self._count_upto(where_sql, params, limit + 1) if filtered else None
        exact = (
            slot.dim > _HNSW_MAX_DIM
            or self._count_upto("1=1", [], self.hnsw.threshold) < self.hnsw.threshold
            or (matching is not None and matching <= limit)
        )
        out: list[list[tuple[int, float]]] = [[] for _ in vectors]
        live = [i for i, v in enumerate(vectors) if v.any()]  # a zero vector has no direction
        sql = self._dense_sql(slot, where_sql, exact=exact)
        with self.conn.transaction():
            if not exact:
                ef = min(1000, max(self.hnsw.ef_search, k))
                self.conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
                if filtered and self._iterative:  # pgvector >= 0.8
                    self.conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            for i in live:
                out[i] = self._nearest(sql, vectors[i], params, k)
        short = [i for i in live if len(out[i]) < k]
        if short and not exact:
            if matching is None:
                matching = self._count_upto(where_sql, params, k)
            sql = self._dense_sql(slot, where_sql, exact=True)
            for i in short:
                if len(out[i]) < min(k, matching):
                    out[i] = self._nearest(sql, vectors[i], params, k)
        return out

    def _nearest(
        self, sql: str, vector: np.ndarray, params: list[Any], k: int
    ) -> list[tuple[int, float]]:
        rows = self.conn.execute(sql, [vector, *params, k]).fetchall()
        found = [(int(doc), 1.0 - d if d == d else 0.0) for doc, d in rows]  # NaN: zero vector
        return sorted(found, key=lambda item: (-item[1], item[0]))  # relaxed order: re-sort

    def _count_upto(self, where_sql: str, params: list[Any], n: int) -> int:
        """Documents matching the filter, counted up to n (cheap on a big table)."""
        sql = f"SELECT count(*) FROM (SELECT 1 FROM {self._docs} WHERE {where_sql} LIMIT %s) s"
        return int(self._one(sql, [*params, n]))

    def _search_sparse(
        self, slot: EncoderSlot, queries: list[str], k: int, where_sql: str, params: list[Any]
    ) -> list[list[tuple[int, float]]]:
        index = self._sparse_index(slot)
        mask = None
        if where_sql != "1=1":
            sql = f"SELECT rowid FROM {self._docs} WHERE {where_sql} ORDER BY rowid"
            allowed = np.array([r[0] for r in self.conn.execute(sql, params)], dtype=np.int64)
            mask = index.mask_of(allowed)
        scores, rows = index.search(index.queries(queries), k, mask)
        return [
            [(int(r), float(v)) for v, r in zip(s_row, r_row, strict=True) if r >= 0]
            for s_row, r_row in zip(scores, rows, strict=True)
        ]

    def _sparse_index(self, slot: EncoderSlot) -> SparseIndex:
        """The slot's encoder fitted on the current texts (refitted when `generation` moved)."""
        current = self.generation()  # read first: a write meanwhile only makes it refit again
        index = self._sparse.get(slot.slot)
        if index is None or index.generation != current:
            sql = f"SELECT rowid, text FROM {self._docs} ORDER BY rowid"
            rows = self.conn.execute(sql).fetchall()
            encoder, matrix = slot.fit_sparse([r[1] for r in rows])
            rowids = np.array([r[0] for r in rows], dtype=np.int64)
            index = SparseIndex(encoder, matrix, rowids, current)
            self._sparse[slot.slot] = index
        return index

    def _export_rows(self, limit: int | None) -> list[tuple[int, str, str, Any]]:
        cap = "" if limit is None else f" LIMIT {int(limit)}"
        sql = f"SELECT rowid, id, text, metadata FROM {self._docs} ORDER BY rowid{cap}"
        return [tuple(r) for r in self.conn.execute(sql).fetchall()]

    def _export_dense(self, slot: EncoderSlot, rowids: list[int]) -> dict[int, np.ndarray]:
        sql = f"SELECT doc, embedding FROM {self._t(f'dense_{slot.slot}')} WHERE doc = ANY(%s)"
        return {
            int(doc): np.asarray(vec.to_numpy() if hasattr(vec, "to_numpy") else vec, np.float32)
            for doc, vec in self.conn.execute(sql, (rowids,))
        }

    def _fetch_docs(self, rowids: list[int]) -> dict[int, tuple[str, str, Any]]:
        sql = f"SELECT rowid, id, text, metadata FROM {self._docs} WHERE rowid = ANY(%s)"
        return {r[0]: r[1:] for r in self.conn.execute(sql, (rowids,))}

    # ------------------------------------------------------------------ maintenance
    def rebuild(self) -> None:
        """Rebuild every HNSW index in the server (recreating a dropped one) and refit the
        sparse encoders."""
        with self._lock:
            self._sparse.clear()
            for s in self._slots:
                if s.sparse:
                    self._sparse_index(s)
                elif s.width is not None:
                    with self.conn.transaction():
                        self._create_dense(s.slot, s.width)
                    if s.width <= _HNSW_MAX_DIM:
                        self.conn.execute(f"REINDEX INDEX {self._t(f'dense_{s.slot}_hnsw')}")

    @staticmethod
    def destroy(url: str) -> None:
        """Drop the tables of the collection at `url` (refuses when there is none)."""
        conninfo, safe, prefix = split_url(url)
        with psycopg_module().connect(conninfo, autocommit=True) as conn:
            if conn.execute("SELECT to_regclass(%s)", (f'"{prefix}info"',)).fetchone()[0] is None:
                raise InputError(f"{safe}: no collection with table prefix {prefix!r}")
            with conn.transaction():
                slots = [r[0] for r in conn.execute(f'SELECT slot FROM "{prefix}encoders"')]
                for name in [*(f"dense_{s}" for s in slots), "docs", "encoders", "info"]:
                    conn.execute(f'DROP TABLE IF EXISTS "{prefix}{name}" CASCADE')
