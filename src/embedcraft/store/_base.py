"""What `Collection` and `PostgresCollection` share and that does not depend on the database:
argument checks, the search-mode rules, fusion of ranked lists and the assembly of hits."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self, TypeVar

import numpy as np

from ..encoders.base import BaseEncoder, as_texts
from ..errors import InputError
from ..search import Hit
from . import _schema as db
from ._encoders import EncoderSlot
from .filters import Condition, Filter

SearchMode = Literal["dense", "sparse", "hybrid"]
DocState = Literal["new", "unchanged", "changed"]
"""How a document compares with the collection: not stored, stored as given, stored otherwise."""
_T = TypeVar("_T")


@dataclass
class StoredVectors:
    """A collection's documents (in insertion order) with one encoder's vectors, for analysis."""

    ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]]
    vectors: Any
    """float32 (n, dim) as stored for a dense encoder; a CSR matrix for a sparse one."""
    encoder: str


class _CollectionBase:
    """The database-independent half of a collection; subclasses supply the storage hooks."""

    _REPR_NAME = ""
    """The class name shown by `repr`."""
    _slots: list[EncoderSlot]
    _lock: threading.RLock
    _deferred = 0
    """Open `bulk` blocks: while one is, writes leave the indexes to its end."""

    # ------------------------------------------------------------------ storage hooks
    def _location(self) -> str:
        """Where the collection lives, as shown by `repr`."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the collection's resources."""
        raise NotImplementedError

    def count(self, where: Filter | None = None) -> int:
        """Number of documents (matching `where` when given)."""
        raise NotImplementedError

    def _export_rows(self, limit: int | None) -> list[tuple[int, str, str, Any]]:
        """(rowid, id, text, metadata JSON or dict) of the first `limit` documents, by rowid."""
        raise NotImplementedError

    def _export_dense(self, slot: EncoderSlot, rowids: list[int]) -> dict[int, np.ndarray]:
        """rowid -> stored vector of `slot` for these documents."""
        raise NotImplementedError

    def export(self, encoder: str | None = None, *, limit: int | None = None) -> StoredVectors:
        """The documents (the first `limit`, in insertion order) and one encoder's vectors.

        For plots and analysis. Dense vectors are those stored (as encoded or given); a sparse
        encoder stores none, so a fresh copy of it is fitted on the texts read and encodes
        them (with `limit`, its statistics are those of that sample). `encoder` defaults to
        the first dense encoder.
        """
        import json

        if limit is not None and limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}")
        with self._lock:
            if encoder is None:
                slot = ([s for s in self._slots if not s.sparse] or self._slots)[0]
            else:
                slot = self._by_name(encoder)
            rows = self._export_rows(limit)
            if not rows:
                raise InputError(f"{self._location()}: the collection is empty")
            texts = [r[2] for r in rows]
            if slot.sparse:
                _, vectors = slot.fit_sparse(texts)
            else:
                found = self._export_dense(slot, [r[0] for r in rows])
                missing = [r[1] for r in rows if r[0] not in found]
                if missing:
                    raise InputError(f"document {missing[0]!r} has no {slot.name} vector")
                vectors = np.empty((len(rows), slot.dim), dtype=np.float32)
                for i, r in enumerate(rows):
                    vectors[i] = found[r[0]]
        metadata = [json.loads(r[3]) if isinstance(r[3], str) else dict(r[3]) for r in rows]
        return StoredVectors([r[1] for r in rows], texts, metadata, vectors, slot.name)

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
        """The k best documents for each query, among those matching `where`."""
        raise NotImplementedError

    def _existing_ids(self, ids: list[str]) -> list[str]:
        """Those of `ids` already stored."""
        raise NotImplementedError

    def _fit_unfitted(self, docs: list[str], made: dict[int, np.ndarray]) -> None:
        """Fit the dense encoders that learn from text (and have no given vectors) on `docs`."""
        raise NotImplementedError

    def _commit_batch(
        self,
        ids: list[str],
        texts: list[str],
        metadata: list[str],
        vectors: dict[int, np.ndarray],
        *,
        replace: bool,
    ) -> None:
        """Store one batch of checked documents and their vectors in one transaction."""
        raise NotImplementedError

    def _fetch_docs(self, rowids: list[int]) -> dict[int, tuple[str, str, Any]]:
        """(id, text, stored metadata) of the documents still present, by rowid."""
        raise NotImplementedError

    def _metadata(self, stored: Any) -> dict[str, Any]:
        """A hit's metadata from what `_fetch_docs` returned for it."""
        metadata: dict[str, Any] = stored
        return metadata

    def _sparse_index(self, slot: EncoderSlot) -> Any:
        """The sparse index of a sparse encoder, fitted on the current texts."""
        raise NotImplementedError

    def _stored_docs(self, ids: list[str]) -> dict[str, tuple[str, Any]]:
        """(text, stored metadata) of those of `ids` that are stored, by id."""
        raise NotImplementedError

    def _has_key(self, key: str) -> bool:
        """Whether some document's metadata has `key` (a dotted path)."""
        raise NotImplementedError

    def _metadata_keys(self, limit: int) -> list[str]:
        """Up to `limit` top-level metadata keys of the documents, sorted (for a message)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ basics
    def __repr__(self) -> str:
        names = ", ".join(s.name for s in self._slots)
        return f"{self._REPR_NAME}({self._location()!r}, encoders=[{names}], count={self.count()})"

    def __len__(self) -> int:
        return self.count()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def encoder_names(self) -> list[str]:
        return [s.name for s in self._slots]

    def encoder(self, name: str) -> BaseEncoder:
        """The encoder registered under `name` (as used for documents and queries)."""
        return self._by_name(name).encoder

    def _by_name(self, name: str) -> EncoderSlot:
        """The slot of the encoder named `name`."""
        for s in self._slots:
            if s.name == name:
                return s
        raise InputError(
            f"no encoder {name!r} in this collection; it has: {', '.join(self.encoder_names)}"
        )

    @staticmethod
    def _check_ids(ids: Iterable[Any]) -> list[str]:
        """The ids as a list, each a non-empty string."""
        if isinstance(ids, str | bytes) or ids is None:
            raise TypeError("ids must be a list of strings")
        out = []
        for i, doc_id in enumerate(ids):
            if not isinstance(doc_id, str) or not doc_id:
                raise InputError(f"id {i} must be a non-empty string, got {doc_id!r}")
            out.append(doc_id)
        return out

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

    def _check_text(self, i: int, text: str) -> None:
        """Refuse document `i` when its text cannot be stored."""
        if not text.strip():
            raise InputError(f"document {i} has an empty text")

    def compare_stored(
        self,
        texts: Sequence[str],
        ids: Sequence[str],
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[DocState]:
        """For each document: "new" (no such id), "unchanged" (stored with this text and
        metadata) or "changed"; with `metadata` None, texts alone are compared.

        Indexing a file again upserts only what is not "unchanged", so a rerun (or the resume
        of an interrupted run) encodes nothing twice.
        """
        docs = as_texts(texts)
        doc_ids = self._check_ids(ids)
        if len(doc_ids) != len(docs):
            raise InputError(f"{len(docs)} texts but {len(doc_ids)} ids")
        if metadata is not None and len(metadata) != len(docs):
            raise InputError(f"{len(docs)} texts but {len(metadata)} metadata entries")
        stored: dict[str, tuple[str, Any]] = {}
        with self._lock:
            for chunk in _chunks(doc_ids, 500):
                stored.update(self._stored_docs(chunk))
        states: list[DocState] = []
        for i, (doc_id, text) in enumerate(zip(doc_ids, docs, strict=True)):
            found = stored.get(doc_id)
            if found is None:
                states.append("new")
                continue
            same = found[0] == text
            if same and metadata is not None:  # as JSON: True and 1 differ
                mine = db.dump_metadata(i, metadata[i])
                same = db.dump_metadata(i, self._metadata(found[1])) == mine
            states.append("unchanged" if same else "changed")
        return states

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
        """Check everything first, then encode and commit batch by batch."""
        docs = as_texts(texts)
        for i, text in enumerate(docs):
            self._check_text(i, text)
        doc_ids = [uuid.uuid4().hex for _ in docs] if ids is None else self._check_ids(ids)
        if len(doc_ids) != len(docs):
            raise InputError(f"{len(docs)} texts but {len(doc_ids)} ids")
        dup = first_duplicate(doc_ids)
        if dup is not None:
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
                existing = self._existing_ids(doc_ids)
                if existing:
                    shown = ", ".join(repr(i) for i in existing[:5])
                    raise InputError(
                        f"{len(existing)} id(s) already in the collection ({shown}): "
                        "use upsert to replace documents"
                    )
            made = self._given_vectors(given or {}, len(docs))
            self._fit_unfitted(docs, made)
            dense = [s for s in self._slots if not s.sparse]
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
            if not self._deferred:
                self._after_write(progress)
        return doc_ids

    @contextlib.contextmanager
    def bulk(self, *, progress: bool = False) -> Iterator[Self]:
        """Write many batches, bringing the search indexes up to date once, at the end.

        ``with col.bulk(): ...`` around many `add`/`upsert` calls (a file read in pieces):
        each call would otherwise update the indexes as it finishes. If the block fails, the
        indexes catch up at the next search.
        """
        self._deferred += 1
        try:
            yield self
        finally:
            self._deferred -= 1
        if not self._deferred:
            with self._lock:
                self._after_write(progress)

    def _after_write(self, progress: bool) -> None:
        """Bring the search indexes up to date after documents were written (a hook)."""

    def _given_vectors(self, given: Mapping[str, Any], n: int) -> dict[int, np.ndarray]:
        """Checked document vectors made elsewhere, by slot."""
        made = {}
        for name, matrix in given.items():
            slot = self._by_name(name)
            if slot.sparse:
                raise InputError(f"{name!r} is sparse: its vectors are made from the texts")
            made[slot.slot] = slot.given_documents(matrix, n)
        return made

    def _refuse_late_fit(self, slot: EncoderSlot) -> None:
        """Refuse to fit `slot`'s encoder on a collection that already holds documents."""
        if self.count() > 0:
            raise InputError(
                f"encoder {slot.name!r} is not fitted and the collection is not empty: "
                "fit it and create the collection with the fitted encoder"
            )

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
        min_score: float | None = None,
    ) -> list[Hit]:
        """The k best documents for `query`; see `search_many`."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        return self.search_many(
            [query], k, mode=mode, where=where, encoder=encoder, fusion=fusion, alpha=alpha,
            explain=explain, min_score=min_score,
        )[0]  # fmt: skip

    def _sides(self, mode: SearchMode | None, name: str | None) -> list[EncoderSlot]:
        """The encoders a search uses, from its mode and encoder name."""
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

    def _hits(
        self,
        queries: list[str],
        results: list[list[tuple[int, float, dict[str, float]]]],
        sides: list[EncoderSlot],
        explain: bool,
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        """Hits for each query's (rowid, score, side scores) scoring at least `min_score`; rows
        deleted meanwhile are dropped."""
        if min_score is not None:
            results = [[h for h in hits if h[1] >= min_score] for hits in results]
        docs = self._fetch_docs(sorted({r for hits in results for r, _, _ in hits}))
        out: list[list[Hit]] = []
        for query, hits in zip(queries, results, strict=True):
            row: list[Hit] = []
            for r, score, side_scores in hits:
                if r not in docs:  # deleted after the index was synced: drop, never mislabel
                    continue
                doc_id, text, meta = docs[r]
                metadata = self._metadata(meta)
                explanation = None
                if explain:
                    explanation = {"scores": side_scores}
                    for s in sides:
                        explanation[s.name] = self._explain(s, query, r, text)
                by_kind = {s.sparse: side_scores.get(s.name) for s in sides}
                row.append(
                    Hit(doc_id, score, text, len(row) + 1, metadata, explanation,
                        dense_score=by_kind.get(False), sparse_score=by_kind.get(True))
                )  # fmt: skip
            out.append(row)
        return out

    def _refuse_unknown_keys(self, conditions: Sequence[Condition]) -> None:
        """Raise when a filter names a metadata key no document has: it can match nothing, and
        is most likely misspelt (an empty collection, which has no keys, is not refused).

        Called only once a filter has matched no document, so it costs nothing otherwise.
        """
        missing = [k for k in dict.fromkeys(c.key for c in conditions) if not self._has_key(k)]
        if not missing or self.count() == 0:
            return
        known = self._metadata_keys(21)
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        keys = f"the documents' keys are: {shown}" if known else "no document has metadata"
        raise InputError(
            f"no document has the metadata key {missing[0]!r}, so the filter can match "
            f"nothing; {keys}"
        )

    def _explain(self, slot: EncoderSlot, query: str, rowid: int, text: str) -> Any:
        """Why document `rowid` matched `query` on one side: terms (sparse) or words (dense)."""
        if slot.sparse:
            index = self._sparse_index(slot)
            terms = index.explain(index.queries([query])[0], rowid)
            return {"terms": [{"term": t, "contribution": c} for t, c in terms]}
        return slot.explain_dense(query, text)


def _in_order(wanted: list[str], found: dict[str, _T]) -> list[_T]:
    """The found items in the order asked; an unknown id is an error."""
    missing = [i for i in wanted if i not in found]
    if missing:
        raise InputError(_unknown_ids(missing))
    return [found[i] for i in wanted]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    """`items` in consecutive lists of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _unknown_ids(missing: list[str]) -> str:
    """The error message for ids not in the collection (the first five shown)."""
    shown = ", ".join(repr(i) for i in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return f"unknown id(s): {shown}{more}"


def first_duplicate(ids: Sequence[str]) -> str | None:
    """The first id that repeats an earlier one, or None."""
    seen: set[str] = set()
    for doc_id in ids:
        if doc_id in seen:
            return doc_id
        seen.add(doc_id)
    return None
