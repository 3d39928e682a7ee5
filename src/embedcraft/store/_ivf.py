"""The dense index of a large collection: an inverted-file (IVF) index, built in seconds.

A graph (HNSW) gives the best latency but takes minutes to build past a few hundred thousand
rows on a small machine; an IVF index clusters the vectors once (k-means on a sample) and files
each vector under its nearest centroid, so building is a pass over the data and adding rows is
cheap. Codes are 8-bit (a quarter of the memory: 256 MB for a million 256-dim rows, read in a
fraction of a second when a collection is opened; scanning lists mapped from disk instead was
twice as slow). The best candidates of a scan are re-ranked with the exact float32 vectors,
kept beside the index in `vectors.npy` and memory-mapped, so scores are exact cosines. Rows
added after the saved build go into the lists at once (no clustering again); their float32
vectors are held in memory (the "delta") until there are enough of them to be worth saving.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._files import atomic_directory
from ._indexes import RowPositions, _read_stamp, _write_stamp, faiss_module

if TYPE_CHECKING:
    from ._indexes import HnswSettings

__all__ = ["IvfIndex"]

_FILES = ["index.faiss", "rowids.npy", "alive.npy", "vectors.npy"]
_TRAIN_POINTS = 40
"""Sampled vectors per centroid for the k-means (FAISS asks for at least 39)."""
_MIN_CANDIDATES = 40
"""Candidates re-ranked exactly per query, at least (more for a large k)."""


def list_count(n: int) -> int:
    """Inverted lists for n rows: a power of two near 4 * sqrt(n), from 16 to 4096."""
    return int(min(4096, max(16, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))))


class IvfIndex(RowPositions):
    """Unit-length vectors of one encoder in an IVF index with exact re-ranking.

    Positions 0..n-1 name rows as in `DenseIndex` (`rowids[p]` ascending, `alive[p]` False for
    removed rows); every row is in the IVF lists, and the float32 vectors of positions below
    `base` are in the saved `vectors.npy`, the rest in the delta.
    """

    kind = "ivf"

    def __init__(self, dim: int, settings: HnswSettings) -> None:
        self.dim = dim
        self.settings = settings
        self.rowids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.generation = -1
        self.index: Any = None
        self.base = 0
        self.trained_rows = 0
        self.vectors: np.ndarray = np.zeros((0, dim), dtype=np.float32)
        self.delta: np.ndarray = np.zeros((0, dim), dtype=np.float32)
        self._subset: tuple[Any, np.ndarray, np.ndarray] | None = None
        self._selector: tuple[Any, Any, Any] | None = None
        self._combined: tuple[np.ndarray, np.ndarray, np.ndarray, int] | None = None

    # ------------------------------------------------------------------ state
    @property
    def nprobe(self) -> int:
        lists = int(self.index.nlist)
        wanted = self.settings.ivf_nprobe or max(8, lists // 8)
        return int(min(lists, wanted))

    def needs_rebuild(self) -> bool:
        """Many removed rows, or four times the rows the clustering was made for."""
        return self.many_removed() or len(self.rowids) > 4 * max(self.trained_rows, 1)

    def worth_saving(self) -> bool:
        """Whether the delta has grown enough to merge and save (smaller ones are caught up
        from the database when the collection is opened: cheaper than rewriting the files)."""
        return len(self.delta) > 0.1 * max(self.base, 1)

    # ------------------------------------------------------------------ building
    def build(self, rowids: np.ndarray, vectors: np.ndarray, generation: int) -> None:
        """Cluster a sample of `vectors` (unit length, one per rowid) and file them all."""
        faiss = faiss_module()
        n = len(rowids)
        lists = self.settings.ivf_lists or list_count(n)
        index = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(self.dim), self.dim, lists, faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )  # fmt: skip
        index.cp.niter = 10
        index.cp.min_points_per_centroid = 1  # a small collection: no warning, fewer points
        index.cp.seed = 1234
        sample = min(n, _TRAIN_POINTS * lists)
        rng = np.random.default_rng(1234)
        chosen = np.sort(rng.choice(n, sample, replace=False)) if sample < n else slice(None)
        index.train(np.ascontiguousarray(vectors[chosen], dtype=np.float32))
        for start in range(0, n, 100_000):
            index.add(np.ascontiguousarray(vectors[start : start + 100_000], dtype=np.float32))
        index.parallel_mode = 1  # one query scans its lists on every core
        self.index = index
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.delta = np.zeros((0, self.dim), dtype=np.float32)
        self.rowids = np.asarray(rowids, dtype=np.int64)
        self.alive = np.ones(n, dtype=bool)
        self.base = self.trained_rows = n
        self.generation = generation

    def append(self, rowids: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows whose ids are all above `max_rowid`."""
        if not len(rowids):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index.add(vectors)
        self.delta = np.concatenate([self.delta, vectors])
        self.rowids = np.concatenate([self.rowids, rowids.astype(np.int64)])
        self.alive = np.concatenate([self.alive, np.ones(len(rowids), dtype=bool)])

    def _merge(self) -> None:
        """Move the delta's vectors beside the saved ones (they are in the lists already)."""
        if not len(self.delta):
            return
        self.vectors = np.concatenate([np.asarray(self.vectors), self.delta])
        self.delta = np.zeros((0, self.dim), dtype=np.float32)
        self.base = len(self.rowids)
        self._subset = None

    # ------------------------------------------------------------------ search
    def _gather(self, positions: np.ndarray) -> np.ndarray:
        """The float32 vectors at these positions (base ones from the mapped file)."""
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        in_base = positions < self.base
        out[in_base] = self.vectors[positions[in_base]]
        out[~in_base] = self.delta[positions[~in_base] - self.base]
        return out

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rowids) of the top k per query, rowid -1 where fewer rows qualify."""
        m = len(queries)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        mask, n_allowed = self._admitted(allowed)
        scores = np.full((m, k), -np.inf, dtype=np.float32)
        rows = np.full((m, k), -1, dtype=np.int64)
        if n_allowed == 0:
            return scores, rows
        small = n_allowed <= self.settings.exact_limit
        if allowed is not None and (small or n_allowed < self.settings.exact_fraction * len(mask)):
            positions, matrix = self._subset_of(mask)
            return self._ranked(q @ matrix.T, positions, k, scores, rows)
        candidates = self._candidates(q, max(4 * k, _MIN_CANDIDATES), mask, n_allowed)
        for i in range(m):
            found = candidates[i][candidates[i] >= 0]
            exact = self._gather(found) @ q[i]
            self._ranked(exact[None, :], found, k, scores[i : i + 1], rows[i : i + 1])
        return scores, rows

    def _admitted(self, allowed: np.ndarray | None) -> tuple[np.ndarray, int]:
        """The live rows a filter's mask admits, and how many: one object per (filter mask,
        `alive`) pair, so the caches keyed on it hold across a run of queries."""
        if allowed is None:
            return self.alive, self.live
        last = self._combined
        if last is None or last[0] is not allowed or last[1] is not self.alive:
            mask = allowed & self.alive
            last = self._combined = (allowed, self.alive, mask, int(mask.sum()))
        return last[2], last[3]

    def _candidates(self, q: np.ndarray, kk: int, mask: np.ndarray, n_allowed: int) -> np.ndarray:
        """Positions of each query's best candidates, from a scan of the nearest lists."""
        faiss = faiss_module()
        # a filter hides part of every list: scan more of them, by the square root of the
        # share hidden (at 1M rows, a filter keeping 30% then finds 0.99 of the exact top 10)
        widen = min(math.sqrt(len(mask) / n_allowed), 4.0)
        nprobe = int(min(self.index.nlist, self.nprobe * widen))
        selector = self._selector_of(mask)
        params = faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
        kk = min(kk, n_allowed)
        _, found = self.index.search(q, kk, params=params)
        short = (found < 0).any(axis=1)
        if short.any():  # the lists scanned held too few admitted rows: scan them all
            every = faiss.SearchParametersIVF(nprobe=int(self.index.nlist), sel=selector)
            _, found[short] = self.index.search(q[short], kk, params=every)
        return found  # type: ignore[no-any-return]

    def _selector_of(self, mask: np.ndarray) -> Any:
        """A FAISS bitmap selector of the admitted positions (None: all of them), kept
        while the same mask object (a filter's, or `alive`) is asked for."""
        if self._selector is not None and self._selector[0] is mask:
            return self._selector[1]
        selector, bits = None, None
        if not mask.all():
            faiss = faiss_module()
            bits = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        self._selector = (mask, selector, bits)
        return selector

    def _subset_of(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and vectors of a filter's rows, kept while the same mask is asked for."""
        if self._subset is None or self._subset[0] is not mask:
            positions = np.flatnonzero(mask)
            self._subset = (mask, positions, self._gather(positions))
        return self._subset[1], self._subset[2]

    def _ranked(
        self, exact: np.ndarray, positions: np.ndarray, k: int, scores: np.ndarray,
        rows: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Fill `scores`/`rows` with the top k of exact scores over `positions`, per query."""
        top = min(k, exact.shape[1])
        if top == 0:
            return scores, rows
        part = np.argpartition(-exact, top - 1, axis=1)[:, :top]
        best = np.take_along_axis(exact, part, 1)
        order = np.argsort(-best, axis=1, kind="stable")
        chosen = np.take_along_axis(part, order, 1)
        scores[:, :top] = np.take_along_axis(best, order, 1)
        rows[:, :top] = self.rowids[positions[chosen]]
        return scores, rows

    # ------------------------------------------------------------------ persistence
    def save(self, folder: Path, **identity: Any) -> None:
        """Merge the delta and write index, rowids, removed rows and vectors beside a stamp."""
        faiss = faiss_module()
        self._merge()
        with atomic_directory(folder) as tmp:
            faiss.write_index(self.index, str(tmp / "index.faiss"))
            np.save(tmp / "rowids.npy", self.rowids)
            np.save(tmp / "alive.npy", self.alive)
            np.save(tmp / "vectors.npy", np.asarray(self.vectors))
            _write_stamp(
                tmp, _FILES, generation=self.generation, kind=self.kind, dim=self.dim,
                live=self.live, trained_rows=self.trained_rows, digest_limit=1 << 20,
                **identity,
            )  # fmt: skip
        self.vectors = np.load(folder / "vectors.npy", mmap_mode="r")  # the in-memory copy goes

    def _open_files(self, folder: Path) -> None:
        """Read the saved index and map the saved vectors (the in-memory copy is dropped)."""
        faiss = faiss_module()
        self.index = faiss.read_index(str(folder / "index.faiss"))
        self.index.parallel_mode = 1
        self.vectors = np.load(folder / "vectors.npy", mmap_mode="r")

    @classmethod
    def load(
        cls, folder: Path, settings: HnswSettings, dim: int, **identity: Any
    ) -> IvfIndex | None:
        """The saved index if intact and made for `identity`; None means rebuild it."""
        stamp = _read_stamp(folder)
        if stamp is None or stamp.get("kind") != cls.kind or stamp.get("dim") != dim:
            return None
        if any(stamp.get(key) != value for key, value in identity.items()):
            return None
        self = cls(dim, settings)
        try:
            self._open_files(folder)
            self.rowids = np.load(folder / "rowids.npy", allow_pickle=False).astype(np.int64)
            self.alive = np.load(folder / "alive.npy", allow_pickle=False).astype(bool)
        except (RuntimeError, OSError, ValueError):
            return None
        n = len(self.rowids)
        if self.index.ntotal != n or self.vectors.shape != (n, dim) or self.alive.shape != (n,):
            return None
        self.base = n
        self.trained_rows = int(stamp.get("trained_rows", n))
        self.generation = int(stamp["generation"])
        return self
