"""The derived search indexes of a collection: FAISS for dense vectors, a sparse matrix for BM25.

Both are caches of what the SQLite database holds. Each remembers the database generation it
reflects, is brought up to date incrementally (dense: new rows appended, removed rows masked) or
rebuilt, and is saved in a folder with a stamp (generation, counts, a digest of the files) so a
stale, truncated or corrupted copy on disk is detected and rebuilt instead of trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._files import atomic_directory
from ..encoders.base import BaseEncoder
from ..errors import missing_dependency

__all__ = ["DenseIndex", "RowPositions", "SparseIndex", "faiss_module", "top_k_into"]

STAMP = "stamp.json"


def faiss_module() -> Any:
    """The faiss module, or a clear MissingDependencyError."""
    try:
        import faiss
    except ImportError:
        raise missing_dependency("faiss-cpu", "store", "dense search in a collection") from None
    return faiss


def _digest(paths: list[Path], sampled_above: int | None = None) -> str:
    """A digest of the files; those larger than `sampled_above` bytes are sampled.

    A sampled file contributes its size and 32 spaced blocks of 64 KiB (the first and last
    included): a truncated, swapped or partly overwritten copy is caught without reading a
    gigabyte of vectors every time a collection is opened.
    """
    h = hashlib.blake2b(digest_size=16)
    for path in paths:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if sampled_above is not None and size > sampled_above:
                h.update(size.to_bytes(8, "little"))
                block = 1 << 16
                for i in range(32):
                    fh.seek((size - block) * i // 31)
                    h.update(fh.read(block))
                continue
            while chunk := fh.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def _write_stamp(folder: Path, files: list[str], **fields: Any) -> None:
    limit = fields.get("digest_limit")
    stamp = {**fields, "files": files, "digest": _digest([folder / f for f in files], limit)}
    (folder / STAMP).write_text(json.dumps(stamp), encoding="utf-8")


def _read_stamp(folder: Path) -> dict[str, Any] | None:
    """The stamp of a saved index when its files are intact, else None."""
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
        files = [folder / f for f in stamp["files"]]
        if stamp["digest"] != _digest(files, stamp.get("digest_limit")):
            return None
        return dict(stamp)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _positions(indexed: np.ndarray, rowids: np.ndarray) -> np.ndarray:
    """Boolean mask over the sorted `indexed` rowids: True for those in `rowids`."""
    mask = np.zeros(len(indexed), dtype=bool)
    mask[indexed.searchsorted(rowids)[np.isin(rowids, indexed)]] = True
    return mask


class RowPositions:
    """The rows an index holds, by position: `rowids[p]` is the database row at position p
    (ascending) and `alive[p]` False once that row is removed (it stays until a rebuild).
    Every derived index keeps this state; the questions asked of it are answered here."""

    rowids: np.ndarray
    alive: np.ndarray
    _live: tuple[np.ndarray, int] | None = None

    def __len__(self) -> int:
        return len(self.rowids)

    @property
    def live(self) -> int:
        """Rows not masked out as removed (counted once per change of `alive`)."""
        if self._live is None or self._live[0] is not self.alive:
            self._live = (self.alive, int(self.alive.sum()))
        return self._live[1]

    @property
    def max_rowid(self) -> int:
        return int(self.rowids[-1]) if len(self.rowids) else 0

    @property
    def max_live_rowid(self) -> int:
        """The highest rowid not masked out (0 when none is live)."""
        live = self.rowids[self.alive]
        return int(live[-1]) if len(live) else 0

    def mask_of(self, rowids: np.ndarray) -> np.ndarray:
        """Boolean mask over positions: True where the row is in `rowids` and alive."""
        mask: np.ndarray = _positions(self.rowids, rowids) & self.alive
        return mask

    def many_removed(self) -> bool:
        """Over 1,000 removed rows that are also over a fifth of them: time to rebuild."""
        dead = len(self.rowids) - self.live
        return bool(dead > 1000 and dead > 0.2 * len(self.rowids))


def top_k_into(
    docs: np.ndarray, values: np.ndarray, rowids: np.ndarray, k: int,
    scores: np.ndarray, rows: np.ndarray,
) -> None:  # fmt: skip
    """Write the k best (position, score) pairs, best first and ties by rowid, into one row
    of `scores` and `rows` (their other cells keep -inf and -1)."""
    if not len(docs):
        return
    top = min(k, len(docs))
    part = np.argpartition(-values, top - 1)[:top] if top < len(docs) else np.arange(top)
    order = part[np.lexsort((rowids[docs[part]], -values[part]))]
    scores[:top] = values[order]
    rows[:top] = rowids[docs[order]]


@dataclass
class HnswSettings:
    """When and how the dense index goes from exact (flat) search to an HNSW graph, and from
    the graph to an IVF index for large collections."""

    threshold: int = 10_000
    """Row count from which an HNSW graph is built; below it every search is exact."""
    m: int = 32
    ef_construction: int = 128
    ef_search: int = 128
    exact_limit: int = 20_000
    """A filter that admits at most this many rows is searched exactly (a scan of those rows)."""
    exact_fraction: float = 0.1
    """...as is one that admits less than this share of the rows."""
    ivf_threshold: int = 50_000
    """Row count from which an IVF index replaces the graph (it builds in seconds, not minutes;
    see `embedcraft.store._ivf`); a local collection only, PostgreSQL keeps pgvector's HNSW."""
    ivf_lists: int | None = None
    """Inverted lists of an IVF index (None: a power of two near 4 * sqrt(rows), <= 4096)."""
    ivf_nprobe: int | None = None
    """Lists an IVF search scans (None: an eighth of them, at least 8)."""


class DenseIndex(RowPositions):
    """Unit-length vectors of one encoder, searchable by inner product (= cosine) with FAISS.

    FAISS ids are positions 0..n-1; `rowids[p]` is the database row at position p (ascending).
    Rows removed from the database stay in the graph, masked out by `alive`, until a rebuild.
    """

    def __init__(self, dim: int, settings: HnswSettings) -> None:
        self.dim = dim
        self.settings = settings
        self.rowids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.generation = -1
        self.index: Any = None
        self.kind = "flat"
        self._last_selector: tuple[Any, int, Any, Any] | None = None
        self._params: dict[tuple[int, int], tuple[Any, Any]] = {}

    def _new_index(self, kind: str) -> Any:
        faiss = faiss_module()
        if kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        index = faiss.IndexHNSWFlat(self.dim, self.settings.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.settings.ef_construction
        return index

    def build(self, rowids: np.ndarray, vectors: np.ndarray, generation: int) -> None:
        """Replace the contents with these rows (vectors already unit length)."""
        self.kind = "hnsw" if len(rowids) >= self.settings.threshold else "flat"
        self.index = self._new_index(self.kind)
        if len(rowids):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.rowids = np.asarray(rowids, dtype=np.int64)
        self.alive = np.ones(len(rowids), dtype=bool)
        self.generation = generation

    def append(self, rowids: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows whose ids are all above `max_rowid`."""
        if not len(rowids):
            return
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.rowids = np.concatenate([self.rowids, rowids.astype(np.int64)])
        self.alive = np.concatenate([self.alive, np.ones(len(rowids), dtype=bool)])

    def needs_rebuild(self) -> bool:
        """Too many masked rows, or grown past the HNSW (flat) or IVF threshold."""
        grown = self.kind == "flat" and self.live >= self.settings.threshold
        return grown or self.live >= self.settings.ivf_threshold or self.many_removed()

    def worth_saving(self) -> bool:
        """An updated graph or flat index is saved whole (they are small enough to)."""
        return True

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rowids) of the top k per query, rowid -1 where fewer rows qualify.

        `allowed` (a mask over positions) restricts the search; masked-out rows never appear.
        A selective mask is searched exactly (filtered graph walks lose recall when the filter
        hides the query's neighbourhood); a broad one walks the HNSW graph with a wider beam,
        and a walk that comes back short is redone exactly, so lists are never cut.
        """
        faiss = faiss_module()
        m = len(queries)
        n_allowed, selector = self._selector(allowed)
        kk = min(k, n_allowed)
        if kk == 0:
            return np.full((m, k), -np.inf, np.float32), np.full((m, k), -1, np.int64)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if selector is None:  # the common case: every row admitted, no filter
            return self._padded(*self._unfiltered_search(q, kk), k)
        exact = (
            self.kind == "flat"
            or (selector is not None and n_allowed <= self.settings.exact_limit)
            or n_allowed < self.settings.exact_fraction * len(self.rowids)
        )
        if exact:
            found_scores, found_pos = self._flat_search(q, kk, selector)
        else:
            # a filter hides part of the graph: widen the walk by the share it hides
            widen = min(len(self.rowids) / n_allowed, 16.0)
            ef = int(max(self.settings.ef_search, 2 * kk) * widen)
            params = self._params.get((ef, id(selector)))
            if params is None or params[1] is not selector:
                params = (faiss.SearchParametersHNSW(efSearch=ef, sel=selector), selector)
                self._params = {(ef, id(selector)): params}
            found_scores, found_pos = self.index.search(q, kk, params=params[0])
            if (
                found_pos.size and found_pos.min() < 0
            ):  # a walk came back short: redo those queries exactly
                short = (found_pos < 0).any(axis=1)
                found_scores[short], found_pos[short] = self._flat_search(q[short], kk, selector)
        if not found_pos.size or found_pos.min() >= 0:
            return self._padded(found_scores, self.rowids[found_pos], k)
        missing = found_pos < 0
        rows = self.rowids[np.maximum(found_pos, 0)]
        rows[missing] = -1
        found_scores[missing] = -np.inf
        return self._padded(found_scores, rows, k)

    @staticmethod
    def _padded(
        found_scores: np.ndarray, rows: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pad to k columns (score -inf, row -1) when fewer rows than k were admitted."""
        kk = rows.shape[1]
        if kk < k:  # fewer admitted rows than asked for: pad
            rows = np.pad(rows, ((0, 0), (0, k - kk)), constant_values=-1)
            found_scores = np.pad(found_scores, ((0, 0), (0, k - kk)), constant_values=-np.inf)
        return found_scores, rows

    def _selector(self, allowed: np.ndarray | None) -> tuple[int, Any]:
        """(rows admitted, FAISS selector or None) for a mask, the last one's reused as is.

        Masks come from the collection's filter cache, so the same array object means the
        same filter on the same index state; packing its bitmap once saves a pass per query.
        """
        if allowed is None and self.live == len(self.rowids):
            return len(self.rowids), None
        key = (id(allowed), id(self.alive))
        if self._last_selector is not None and self._last_selector[0] == key:
            return self._last_selector[1], self._last_selector[2]
        faiss = faiss_module()
        mask = self.alive if allowed is None else allowed & self.alive
        bits = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        selector.referenced_bits = bits  # keep the bitmap alive as long as the selector
        n_allowed = int(mask.sum())
        self._last_selector = (key, n_allowed, selector, (allowed, self.alive))
        return n_allowed, selector

    def _unfiltered_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rowids) of the top k over every row, through FAISS's C entry point.

        The hot path of a collection's search: it skips the Python wrapper's argument checks
        and the per-call parameter object (the beam width is set on the index), since the
        queries are already a checked, contiguous float32 matrix here. Every row is live, so
        a position is only -1 when the index holds fewer than k rows, which `search` excludes.
        """
        faiss = faiss_module()
        if self.kind == "hnsw":
            ef = max(self.settings.ef_search, 2 * k)
            if self.index.hnsw.efSearch != ef:
                self.index.hnsw.efSearch = ef
        m = q.shape[0]
        scores = np.empty((m, k), dtype=np.float32)
        positions = np.empty((m, k), dtype=np.int64)
        self.index.search_c(
            m, faiss.swig_ptr(q), k, faiss.swig_ptr(scores), faiss.swig_ptr(positions)
        )
        if positions.min() < 0:  # a graph walk came back short: redo exactly
            short = (positions < 0).any(axis=1)
            scores[short], positions[short] = self._flat_search(q[short], k, None)
        return scores, self.rowids[positions]

    def _flat_search(self, q: np.ndarray, k: int, selector: Any) -> tuple[np.ndarray, np.ndarray]:
        faiss = faiss_module()
        flat = self.index if self.kind == "flat" else faiss.downcast_index(self.index.storage)
        params = None if selector is None else faiss.SearchParameters(sel=selector)
        return flat.search(q, k, params=params)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path, **identity: Any) -> None:
        """Write the index beside a stamp naming `identity` (encoder, dim...) and generation."""
        faiss = faiss_module()
        with atomic_directory(folder) as tmp:
            faiss.write_index(self.index, str(tmp / "index.faiss"))
            np.save(tmp / "rowids.npy", self.rowids)
            np.save(tmp / "alive.npy", self.alive)
            _write_stamp(
                tmp,
                ["index.faiss", "rowids.npy", "alive.npy"],
                generation=self.generation,
                kind=self.kind,
                dim=self.dim,
                live=self.live,
                **identity,
            )

    @classmethod
    def load(
        cls, folder: Path, settings: HnswSettings, dim: int, **identity: Any
    ) -> DenseIndex | None:
        """The saved index if intact and made for `identity`; None means rebuild it.

        The saved copy holds which rows are removed (`alive.npy`); one saved without it (an
        older version, which lost that) cannot be trusted and is rebuilt.
        """
        stamp = _read_stamp(folder)
        if stamp is None or stamp.get("dim") != dim or "alive.npy" not in stamp["files"]:
            return None
        if any(stamp.get(key) != value for key, value in identity.items()):
            return None
        faiss = faiss_module()
        try:
            index = faiss.read_index(str(folder / "index.faiss"))
            rowids = np.load(folder / "rowids.npy", allow_pickle=False)
            alive = np.load(folder / "alive.npy", allow_pickle=False)
        except (RuntimeError, OSError, ValueError):
            return None
        if index.ntotal != len(rowids) or index.d != dim or alive.shape != rowids.shape:
            return None
        self = cls(dim, settings)
        self.index, self.rowids, self.kind = index, rowids.astype(np.int64), stamp["kind"]
        self.alive = alive.astype(bool)
        self.generation = int(stamp["generation"])
        if self.kind == "hnsw":
            index.hnsw.efSearch = settings.ef_search
        return self


class SparseIndex(RowPositions):
    """A sparse encoder fitted on the whole collection and its document matrix (rows x terms).

    BM25 and TF-IDF weights depend on corpus statistics, so any change to the collection refits
    it from scratch (seconds for ~100k short documents).
    """

    def __init__(
        self, encoder: BaseEncoder, matrix: sp.csr_matrix, rowids: np.ndarray, generation: int
    ) -> None:
        self.encoder = encoder
        self.matrix = matrix.tocsr()
        self.rowids = np.asarray(rowids, dtype=np.int64)
        self.generation = generation
        self.alive = np.ones(len(self.rowids), dtype=bool)  # a refit holds live rows only
        self._names: np.ndarray | None = None

    def worth_saving(self) -> bool:
        """A refitted index is saved whole when it is made."""
        return True

    def queries(self, texts: list[str]) -> sp.csr_matrix:
        """Query vectors of the fitted encoder (none when the index is empty)."""
        if self.matrix.shape[0] == 0:
            return sp.csr_matrix((len(texts), 0), dtype=np.float32)
        return sp.csr_matrix(self.encoder.encode_queries(texts), dtype=np.float32)

    def search(
        self, queries: sp.csr_matrix, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rowids) of the top k per query among documents sharing a term with it."""
        m = queries.shape[0]
        scores = np.full((m, k), -np.inf, dtype=np.float32)
        rows = np.full((m, k), -1, dtype=np.int64)
        if k == 0 or self.matrix.shape[0] == 0:
            return scores, rows
        product = (self.matrix @ queries.T).T.tocsr()  # m x n, only matching documents
        for qi in range(m):
            start, end = product.indptr[qi], product.indptr[qi + 1]
            docs, values = product.indices[start:end], product.data[start:end]
            keep = values > 0
            if allowed is not None:
                keep &= allowed[docs]
            top_k_into(docs[keep], values[keep], self.rowids, k, scores[qi], rows[qi])
        return scores, rows

    def explain(self, query: sp.csr_matrix, rowid: int, top: int = 5) -> list[tuple[str, float]]:
        """The terms that contributed most to one document's score, with their contributions."""
        pos = int(self.rowids.searchsorted(rowid))
        if pos >= len(self.rowids) or self.rowids[pos] != rowid:
            return []
        contributions = self.matrix[pos].multiply(query).tocsr()
        if self._names is None:
            self._names = np.asarray(self.encoder.get_feature_names_out())
        order = np.argsort(-contributions.data, kind="stable")[:top]
        return [
            (str(self._names[contributions.indices[i]]), float(contributions.data[i]))
            for i in order
            if contributions.data[i] > 0
        ]

    def save(self, folder: Path, **identity: Any) -> None:
        with atomic_directory(folder) as tmp:
            self.encoder.save(tmp / "encoder")
            sp.save_npz(tmp / "matrix.npz", self.matrix, compressed=False)
            np.save(tmp / "rowids.npy", self.rowids)
            saved = (tmp / "encoder").rglob("*")
            files = ["matrix.npz", "rowids.npy"]
            files += sorted(os.path.relpath(p, tmp) for p in saved if p.is_file())
            _write_stamp(tmp, files, generation=self.generation, **identity)

    @classmethod
    def load(cls, folder: Path, **identity: Any) -> SparseIndex | None:
        stamp = _read_stamp(folder)
        if stamp is None or any(stamp.get(key) != value for key, value in identity.items()):
            return None
        try:
            encoder = BaseEncoder.load(folder / "encoder")
            matrix = sp.load_npz(folder / "matrix.npz").tocsr()
            rowids = np.load(folder / "rowids.npy", allow_pickle=False)
        except Exception:  # a damaged cache is rebuilt, whatever the reader raised
            return None
        if matrix.shape[0] != len(rowids):
            return None
        return cls(encoder, matrix, rowids, int(stamp["generation"]))
