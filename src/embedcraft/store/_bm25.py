"""BM25 over a collection that grows: raw term counts in an inverted index, weighed at query time.

BM25 weights depend on corpus statistics (document count, document frequencies, mean length),
so storing weighted vectors means refitting and rewriting everything on every add. This index
stores what does not change, each document's term counts and length, as postings (term ->
positions, counts) and computes the statistics of the live documents when a query is scored:
adding documents appends postings, removing them clears a flag, and scores equal those of a
`BM25Encoder` fitted on exactly the documents the collection holds now. Postings written by a
build are saved and memory-mapped; rows added later sit in a small in-memory segment until it is
worth merging. Only the default vocabulary rule (every term kept) allows this; an encoder that
prunes its vocabulary (min_df, max_df, max_features) is refitted instead (`SparseIndex`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._files import atomic_directory
from ..encoders.base import BaseEncoder
from ..encoders.sparse import BM25Encoder
from ._indexes import RowPositions, _read_stamp, _write_stamp, top_k_into

__all__ = ["Bm25Index"]

_FILES = ["terms.json", "indptr.npy", "postings.npy", "counts.npy", "rowids.npy", "alive.npy",
          "lengths.npy"]  # fmt: skip
Query = list[tuple[int, float]]
"""A query as (term column, query weight) pairs."""


class Bm25Index(RowPositions):
    """Term counts of a collection's documents, scored by BM25 at query time (module docstring).

    Positions 0..n-1 name rows as in the dense indexes (`rowids` ascending, `alive` False for
    removed rows); positions below `base` are in the saved postings, the rest in `added`.
    """

    kind = "bm25"

    def __init__(self, encoder: BM25Encoder) -> None:
        self.encoder = encoder
        self.vocabulary: dict[str, int] = {}
        self.generation = -1
        self.rowids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.lengths = np.zeros(0, dtype=np.float32)
        self.postings = sp.csc_matrix((0, 0), dtype=np.float32)
        self.added = sp.csr_matrix((0, 0), dtype=np.float32)
        self._added_postings: sp.csc_matrix | None = None
        self._stats: tuple[np.ndarray, float, int] | None = None
        self._names: np.ndarray | None = None
        self._buffers: tuple[np.ndarray, np.ndarray] | None = None
        self._saturated: tuple[Any, dict[int, tuple[np.ndarray, np.ndarray]]] = (None, {})

    @staticmethod
    def handles(encoder: BaseEncoder) -> bool:
        """Whether this index can serve `encoder` (BM25 keeping every term it sees)."""
        return bool(
            isinstance(encoder, BM25Encoder)
            and encoder.min_df == 1
            and encoder.max_df == 1.0
            and encoder.max_features is None
        )

    # ------------------------------------------------------------------ state
    @property
    def base(self) -> int:
        return int(self.postings.shape[0])

    def needs_rebuild(self) -> bool:
        """Many removed rows: their postings cost time on every query."""
        return self.many_removed()

    def worth_saving(self) -> bool:
        """Whether the in-memory segment has grown enough to merge and save."""
        return bool(self.added.shape[0] > 0.1 * max(self.base, 1))

    def _statistics(self) -> tuple[np.ndarray, float, int]:
        """(alive mask, mean length, count) of the live documents, kept per `alive` array."""
        if self._stats is None or self._stats[0] is not self.alive:
            count = self.live
            total = float(self.lengths[self.alive].sum(dtype=np.float64))
            self._stats = (self.alive, (total / count if count else 0.0) or 1.0, count)
        return self._stats

    # ------------------------------------------------------------------ building
    def _counts(self, texts: Iterable[str], n: int) -> tuple[sp.csr_matrix, np.ndarray]:
        """Term counts (rows x every term known so far) and lengths of `texts`."""
        vocabulary = self.vocabulary
        analyze = self.encoder.analyzer_in_use.analyze
        lengths = np.zeros(n, dtype=np.float32)
        indptr = np.zeros(n + 1, dtype=np.int64)
        chunks: list[np.ndarray] = []
        columns: list[int] = []
        done = 0
        for i, text in enumerate(texts):
            features = analyze(text)
            lengths[i] = len(features)
            columns.extend([vocabulary.setdefault(f, len(vocabulary)) for f in features])
            indptr[i + 1] = done + len(columns)
            if len(columns) > 1_000_000:  # as arrays: a Python int per term costs 9x more
                chunks.append(np.asarray(columns, dtype=np.int32))
                done += len(columns)
                columns = []
        chunks.append(np.asarray(columns, dtype=np.int32))
        cols = np.concatenate(chunks)
        ones = np.ones(len(cols), dtype=np.float32)
        counts = sp.csr_matrix((ones, cols, indptr), shape=(n, len(vocabulary)))
        counts.sum_duplicates()
        return counts, lengths

    def build(self, rowids: np.ndarray, texts: Iterable[str], generation: int) -> None:
        """Count the terms of these documents (one per rowid, ascending)."""
        self.vocabulary = {}
        counts, self.lengths = self._counts(texts, len(rowids))
        self.postings = counts.tocsc()
        self.added = sp.csr_matrix((0, counts.shape[1]), dtype=np.float32)
        self._added_postings = None
        self.rowids = np.asarray(rowids, dtype=np.int64)
        self.alive = np.ones(len(rowids), dtype=bool)
        self.generation = generation
        self._names = None

    def append(self, rowids: np.ndarray, texts: Iterable[str]) -> None:
        """Add documents whose rowids are all above `max_rowid`."""
        if not len(rowids):
            return
        counts, lengths = self._counts(texts, len(rowids))
        width = len(self.vocabulary)
        old = self.added
        old.resize((old.shape[0], width))
        self.added = sp.vstack([old, counts], format="csr")
        self._added_postings = None
        self.rowids = np.concatenate([self.rowids, rowids.astype(np.int64)])
        self.alive = np.concatenate([self.alive, np.ones(len(rowids), dtype=bool)])
        self.lengths = np.concatenate([self.lengths, lengths])
        self._names = None

    def _merge(self) -> None:
        if not self.added.shape[0]:
            return
        saved = self.postings  # possibly mapped from disk, with int32 positions
        indptr = np.asarray(saved.indptr, dtype=np.int64)
        indptr = np.concatenate(
            [indptr, np.full(len(self.vocabulary) - saved.shape[1], indptr[-1])]
        )
        base = sp.csc_matrix(
            (np.asarray(saved.data), np.asarray(saved.indices, dtype=np.int64), indptr),
            shape=(saved.shape[0], len(self.vocabulary)),
        )
        self.postings = sp.vstack([base, self.added], format="csc")
        self.added = sp.csr_matrix((0, len(self.vocabulary)), dtype=np.float32)
        self._added_postings = None

    # ------------------------------------------------------------------ search
    def queries(self, texts: list[str]) -> list[Query]:
        """Each text's known terms with their query weight (count, or 1 when binary)."""
        analyze = self.encoder.analyzer_in_use.analyze
        binary = self.encoder.query_weighting == "binary"
        out = []
        for text in texts:
            weights: dict[int, float] = {}
            for feature in analyze(text):
                col = self.vocabulary.get(feature)
                if col is not None:
                    weights[col] = 1.0 if binary else weights.get(col, 0.0) + 1.0
            out.append(sorted(weights.items()))
        return out

    def _segments(self, col: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(positions, counts) of one term in the saved postings and the added segment."""
        found = []
        if col < self.postings.shape[1]:
            saved = self.postings
            start, end = saved.indptr[col], saved.indptr[col + 1]
            found.append((np.asarray(saved.indices[start:end]), saved.data[start:end]))
        if self.added.shape[0]:
            if self._added_postings is None:
                self._added_postings = self.added.tocsc()
            added = self._added_postings
            if col < added.shape[1]:
                start, end = added.indptr[col], added.indptr[col + 1]
                found.append((added.indices[start:end] + self.base, added.data[start:end]))
        return found

    def _term_scores(self, col: int, weight: float) -> tuple[np.ndarray, np.ndarray]:
        """(positions, BM25 contributions) of one query term over the live documents."""
        positions, saturation = self._term_saturation(col)
        df = len(positions)
        if df == 0:
            return positions, saturation
        n_live = self._statistics()[2]
        idf = float(np.log1p((n_live - df + 0.5) / (df + 0.5)))
        return positions, saturation * np.float32(idf * weight)

    def _term_saturation(self, col: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))) of one term's live
        postings: the document side of its score. Kept for common terms (those are what a
        query pays for) until the statistics change, that is until the next write."""
        stats = self._statistics()
        if self._saturated[0] is not stats:
            self._saturated = (stats, {})
        cached = self._saturated[1].get(col)
        if cached is not None:
            return cached
        alive, avgdl, n_live = stats
        k1, b = self.encoder.k1, self.encoder.b
        parts = self._segments(col)
        positions = np.concatenate([p for p, _ in parts]) if parts else np.zeros(0, np.int64)
        counts = np.concatenate([c for _, c in parts]) if parts else np.zeros(0, np.float32)
        if n_live < len(alive):
            keep = alive[positions]
            positions, counts = positions[keep], counts[keep]
        norm = k1 * (1.0 - b + b * self.lengths[positions] / np.float32(avgdl))
        saturation = ((k1 + 1.0) * counts / (counts + norm)).astype(np.float32, copy=False)
        if len(positions) >= 2000:
            if len(self._saturated[1]) >= 256:
                self._saturated[1].clear()
            self._saturated[1][col] = (positions, saturation)
        return positions, saturation

    def search(
        self, queries: list[Query], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rowids) of the top k per query among documents sharing a term with it."""
        m = len(queries)
        scores = np.full((m, k), -np.inf, dtype=np.float32)
        rows = np.full((m, k), -1, dtype=np.int64)
        for qi, query in enumerate(queries):
            terms = [self._term_scores(col, w) for col, w in query]
            terms = [t for t in terms if len(t[0])]
            if not terms:
                continue
            docs, values = terms[0] if len(terms) == 1 else self._summed(terms)
            if allowed is not None:
                keep = allowed[docs]
                docs, values = docs[keep], values[keep]
            top_k_into(docs, values, self.rowids, k, scores[qi], rows[qi])
        return scores, rows

    def _summed(self, terms: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Each matching document once, with its summed score, in time proportional to the
        postings read (not to the collection: a scan of a million scores took 3 ms a query).

        Two buffers as long as the collection are kept (searches run under the collection's
        lock): `total` accumulates scores and is zeroed again where written; `owner` picks one
        posting per document (the last written wins), so duplicates drop without sorting.
        """
        n = len(self.rowids)
        if self._buffers is None or len(self._buffers[0]) != n:
            self._buffers = (np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.int64))
        total, owner = self._buffers
        for positions, contribution in terms:
            total[positions] += contribution  # a term's positions are distinct
        every = np.concatenate([p for p, _ in terms])
        values = total[every]
        total[every] = 0.0
        order = np.arange(len(every))
        owner[every] = order
        first = owner[every] == order
        return every[first], values[first]

    def explain(self, query: Query, rowid: int, top: int = 5) -> list[tuple[str, float]]:
        """The terms that contributed most to one document's score, with their contributions."""
        pos = int(self.rowids.searchsorted(rowid))
        if pos >= len(self.rowids) or self.rowids[pos] != rowid:
            return []
        if self._names is None:
            self._names = np.asarray(list(self.vocabulary), dtype=object)
        found = []
        for col, weight in query:
            positions, contribution = self._term_scores(col, weight)
            hit = np.flatnonzero(positions == pos)
            if len(hit):
                found.append((str(self._names[col]), float(contribution[hit[0]])))
        found.sort(key=lambda item: -item[1])
        return [f for f in found if f[1] > 0][:top]

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path, **identity: Any) -> None:
        """Merge the added segment and write the postings beside a stamp."""
        self._merge()
        p = self.postings
        with atomic_directory(folder) as tmp:
            (tmp / "terms.json").write_text(json.dumps(list(self.vocabulary)), encoding="utf-8")
            np.save(tmp / "indptr.npy", np.asarray(p.indptr, dtype=np.int64))
            np.save(tmp / "postings.npy", np.asarray(p.indices, dtype=np.int32))
            np.save(tmp / "counts.npy", np.asarray(p.data, dtype=np.float32))
            np.save(tmp / "rowids.npy", self.rowids)
            np.save(tmp / "alive.npy", self.alive)
            np.save(tmp / "lengths.npy", self.lengths)
            _write_stamp(
                tmp, _FILES, generation=self.generation, kind=self.kind, rows=len(self.rowids),
                terms=len(self.vocabulary), digest_limit=1 << 20, **identity,
            )  # fmt: skip

    @classmethod
    def load(cls, folder: Path, bm25: BM25Encoder, **identity: Any) -> Bm25Index | None:
        """The saved postings (memory-mapped) if intact and made for `identity`, else None."""
        stamp = _read_stamp(folder)
        if stamp is None or stamp.get("kind") != cls.kind:
            return None
        if any(stamp.get(key) != value for key, value in identity.items()):
            return None
        self = cls(bm25)
        try:
            terms = json.loads((folder / "terms.json").read_text(encoding="utf-8"))
            indptr = np.load(folder / "indptr.npy", allow_pickle=False)
            postings = np.load(folder / "postings.npy", mmap_mode="r", allow_pickle=False)
            counts = np.load(folder / "counts.npy", mmap_mode="r", allow_pickle=False)
            self.rowids = np.load(folder / "rowids.npy", allow_pickle=False).astype(np.int64)
            self.alive = np.load(folder / "alive.npy", allow_pickle=False).astype(bool)
            self.lengths = np.load(folder / "lengths.npy", allow_pickle=False)
        except (OSError, ValueError):
            return None
        n, width = len(self.rowids), len(terms)
        if (
            indptr.shape != (width + 1,)
            or postings.shape != counts.shape
            or indptr[-1] != len(postings)
        ):
            return None
        if self.alive.shape != (n,) or self.lengths.shape != (n,):
            return None
        self.vocabulary = {term: i for i, term in enumerate(terms)}
        matrix = sp.csc_matrix((n, width), dtype=np.float32)
        matrix.indptr, matrix.indices, matrix.data = indptr, postings, counts  # mapped as is
        self.postings = matrix
        self.added = sp.csr_matrix((0, width), dtype=np.float32)
        self.generation = int(stamp["generation"])
        return self
