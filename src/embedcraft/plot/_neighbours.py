"""Every point's nearest neighbours in the ORIGINAL vector space (cosine), not in the picture.

Dense vectors: exact, with FAISS's flat inner-product index when faiss is installed (BLAS plus
a fast top-k), else with numpy in row blocks. Above `exact_limit` points (default 100,000) the
quadratic exact search gets slow, so a FAISS HNSW graph gives approximate neighbours instead.
Sparse vectors (scipy CSR): exact, sparse dot products in row blocks.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ._project import _unit_rows

__all__ = ["nearest_neighbours"]

_BLOCK_CELLS = 32_000_000
"""Score cells per block (rows x points): bounds the memory of one block to ~128 MB."""


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k highest scores, best first (ties: lower index first)."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    chosen = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -chosen), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _blocks(
    n: int, k: int, scores_of: Any, block_rows: int
) -> np.ndarray:  # scores_of(start, stop) -> dense (rows, n) scores
    out = np.empty((n, k), dtype=np.int32)
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        scores = np.asarray(scores_of(start, stop), dtype=np.float32)
        scores[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never itself
        out[start:stop] = _top_k(scores, k)
    return out


def _faiss_exact(matrix: np.ndarray, k: int, faiss: Any) -> np.ndarray:
    index = faiss.IndexFlatIP(matrix.shape[1])
    index.add(matrix)
    _, found = index.search(matrix, k + 1)
    return _drop_self(found, k)


def _faiss_hnsw(matrix: np.ndarray, k: int, faiss: Any) -> np.ndarray:
    index = faiss.IndexHNSWFlat(matrix.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(matrix)
    index.hnsw.efSearch = max(64, 2 * (k + 1))
    _, found = index.search(matrix, k + 1)
    return _drop_self(found, k)


def _drop_self(found: np.ndarray, k: int) -> np.ndarray:
    """Each row's first k results other than the point itself (usually, not always, first)."""
    n = found.shape[0]
    good = (found != np.arange(n)[:, None]) & (found >= 0)
    order = np.argsort(~good, axis=1, kind="stable")[:, :k]
    out = np.take_along_axis(found, order, axis=1).astype(np.int32)
    for i in np.flatnonzero(good.sum(axis=1) < k):  # an approximate search came up short
        row = found[i][good[i]]
        extra = np.setdiff1d(np.arange(n), np.append(row, i))[: k - len(row)]
        out[i] = np.concatenate([row, extra])
    return out


def nearest_neighbours(vectors: Any, k: int = 10, *, exact_limit: int = 100_000) -> np.ndarray:
    """The `k` nearest neighbours (cosine) of every row among the other rows: int32 (n, k).

    Best first. Exact up to `exact_limit` dense points, approximate (FAISS HNSW) above it;
    sparse input is always exact. `k` is capped at n - 1.
    """
    if k < 0:
        raise InputError(f"the number of neighbours must be 0 or more, got {k}")
    n = vectors.shape[0] if hasattr(vectors, "shape") else len(vectors)
    k = min(k, max(0, n - 1))
    if n == 0 or k == 0:
        return np.zeros((n, 0), dtype=np.int32)
    matrix = _unit_rows(vectors, "find its neighbours")
    if sp.issparse(matrix):
        transposed = sp.csr_matrix(matrix.T)
        rows = max(1, _BLOCK_CELLS // n)
        return _blocks(n, k, lambda a, b: (matrix[a:b] @ transposed).toarray(), rows)
    faiss: ModuleType | None
    try:
        faiss = importlib.import_module("faiss")
    except ImportError:
        faiss = None
    if faiss is not None and n > exact_limit:
        return _faiss_hnsw(matrix, k, faiss)
    if faiss is not None:
        return _faiss_exact(matrix, k, faiss)
    rows = max(1, _BLOCK_CELLS // n)
    return _blocks(n, k, lambda a, b: matrix[a:b] @ matrix.T, rows)
