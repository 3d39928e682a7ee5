"""Vector maths for any encoder's output: normalize, similarity, and exact top-k in bounded memory.

Inputs may be dense (numpy) or sparse (scipy); a 1-D array is one vector. Scores follow one rule:
higher means closer. "cosine" and "dot" are similarities; "euclidean" scores are negative distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .errors import DimensionMismatchError, InputError

__all__ = [
    "Metric",
    "TopK",
    "check_finite",
    "euclidean_distances",
    "normalize",
    "similarity",
    "top_k",
]

Metric = Literal["cosine", "dot", "euclidean"]
_METRICS = ("cosine", "dot", "euclidean")
_DEFAULT_SCORE_BUDGET = 16 * 2**20  # bytes of scores per chunk; top_k's peak is ~5x this


@dataclass(frozen=True)
class TopK:
    """The k best corpus rows per query: `indices` and `scores`, each (n_queries, k), best first."""

    indices: np.ndarray
    scores: np.ndarray


def _as_matrix(x: Any, what: str) -> np.ndarray | sp.csr_matrix:
    if sp.issparse(x):
        m = sp.csr_matrix(x)
        return m if m.dtype in (np.float32, np.float64) else m.astype(np.float32)
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{what} must be numeric vectors, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InputError(f"{what} must be a vector or a 2-D matrix, got {arr.ndim} dimensions")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    return arr


def check_finite(x: Any, what: str = "vectors") -> None:
    """Raise InputError naming the first row that holds NaN or infinity."""
    m = _as_matrix(x, what)
    data = m.data if sp.issparse(m) else m
    if np.isfinite(data).all():
        return
    if sp.issparse(m):
        csr: sp.csr_matrix = m  # the sparse side of the union (scipy is untyped)
        bad_entry = int(np.flatnonzero(~np.isfinite(csr.data))[0])
        row = int(np.searchsorted(csr.indptr, bad_entry, side="right") - 1)
    else:
        row = int(np.flatnonzero(~np.isfinite(m).all(axis=1))[0])
    raise InputError(f"{what}: row {row} contains NaN or infinity")


def _check_pair(a: Any, b: Any, metric: str, corpus_checked: bool = False) -> tuple[Any, Any]:
    if metric not in _METRICS:
        raise InputError(f"unknown metric {metric!r}: use one of {', '.join(_METRICS)}")
    a, b = _as_matrix(a, "queries"), _as_matrix(b, "corpus")
    if a.shape[1] != b.shape[1]:
        raise DimensionMismatchError(
            f"dimension mismatch: the queries have {a.shape[1]} dimensions, "
            f"the corpus has {b.shape[1]}"
        )
    check_finite(a, "queries")
    if not corpus_checked:
        check_finite(b, "corpus")
    return a, b


def _row_norms(m: Any) -> np.ndarray:
    norms: np.ndarray
    if sp.issparse(m):
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    else:
        norms = np.linalg.norm(m, axis=1)
    return norms


def normalize(x: Any) -> Any:
    """Rows scaled to unit L2 length, as float32 (dense or sparse as given); zero rows stay zero."""
    m = _as_matrix(x, "vectors")
    check_finite(m)
    norms = _row_norms(m).astype(np.float32)
    norms[norms == 0] = 1.0
    if sp.issparse(m):
        out = sp.csr_matrix(m, dtype=np.float32, copy=True)
        out.data /= np.repeat(norms, np.diff(out.indptr))
        return out
    out = (m / norms[:, None]).astype(np.float32, copy=False)
    return out[0] if np.ndim(x) == 1 else out


def _dense(m: Any) -> np.ndarray:
    return np.asarray(m.toarray() if sp.issparse(m) else m)


def _product(a: Any, b: Any) -> np.ndarray:
    """Dense a @ b.T; with a sparse corpus chunk `b`, transpose the small side, not the big one."""
    if sp.issparse(b):
        other = a.T.tocsr() if sp.issparse(a) else np.ascontiguousarray(a.T)
        return _dense(b @ other).T
    return _dense(a @ b.T)


def _scores(a: Any, b: Any, metric: str, a_norm2: np.ndarray | None = None) -> np.ndarray:
    """Raw (n_a, n_b) scores of already checked matrices; `a` pre-normalized for cosine."""
    if metric == "cosine":
        b_norms = _row_norms(b)
        b_norms[b_norms == 0] = 1.0
        product = _product(a, b)
        cosine: np.ndarray = (product / b_norms[None, :]).astype(np.float32, copy=False)
        return cosine
    product = _product(a, b).astype(np.float32, copy=False)
    if metric == "dot":
        return product
    b_norm2 = _row_norms(b) ** 2
    assert a_norm2 is not None
    d2 = a_norm2[:, None] + b_norm2[None, :] - 2.0 * product
    negative_distance: np.ndarray = -np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)
    return negative_distance


def _prepare_queries(a: Any, metric: str) -> tuple[Any, np.ndarray | None]:
    if metric == "cosine":
        return normalize(a), None
    if metric == "euclidean":
        return a, _row_norms(a) ** 2
    return a, None


def similarity(a: Any, b: Any, metric: Metric = "cosine") -> Any:
    """Pairwise scores between the rows of `a` and `b` as a dense (n_a, n_b) float32 array.

    Two 1-D vectors give a single float. Zero vectors have cosine 0 with everything.
    """
    a_m, b_m = _check_pair(a, b, metric)
    q, q_norm2 = _prepare_queries(a_m, metric)
    out = _scores(q, b_m, metric, q_norm2)
    if np.ndim(a) == 1 and np.ndim(b) == 1 and not sp.issparse(a) and not sp.issparse(b):
        return float(out[0, 0])
    return out


def euclidean_distances(a: Any, b: Any) -> np.ndarray:
    """Pairwise Euclidean distances (n_a, n_b), float32."""
    return -np.atleast_2d(np.asarray(similarity(a, b, "euclidean"), dtype=np.float32))


def top_k(
    queries: Any,
    corpus: Any,
    k: int = 10,
    metric: Metric = "cosine",
    *,
    chunk_size: int | None = None,
    corpus_checked: bool = False,
) -> TopK:
    """Exact k nearest corpus rows for each query, scanning the corpus in chunks.

    Memory beyond the inputs stays bounded whatever the corpus size: about 80 MiB with the
    default chunks (`chunk_size` sets the corpus rows per chunk). Ties go to the lower row
    index. When k exceeds the corpus size, every row is returned. Indexes that validated their
    corpus once pass `corpus_checked=True`, so a search does not rescan every vector for NaN.
    """
    return _top_k(queries, corpus, k, metric, chunk_size=chunk_size, corpus_checked=corpus_checked)


def _top_k(
    queries: Any,
    corpus: Any,
    k: int,
    metric: str,
    *,
    chunk_size: int | None = None,
    corpus_checked: bool = False,
) -> TopK:
    """`top_k`; indexes that validated their corpus once pass `corpus_checked=True` so a search
    does not rescan every stored vector for NaN."""
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    q_all, c = _check_pair(queries, corpus, metric, corpus_checked)
    n_q, n_c = q_all.shape[0], c.shape[0]
    k_eff = min(k, n_c)
    indices = np.zeros((n_q, k_eff), dtype=np.int64)
    scores = np.zeros((n_q, k_eff), dtype=np.float32)
    if n_q == 0 or k_eff == 0:
        return TopK(indices, scores)
    q_block = min(n_q, 1024)
    rows = chunk_size or max(k_eff, _DEFAULT_SCORE_BUDGET // (4 * q_block))
    if rows < 1:
        raise InputError(f"chunk_size must be >= 1, got {rows}")
    for q_start in range(0, n_q, q_block):
        q, q_norm2 = _prepare_queries(q_all[q_start : q_start + q_block], metric)
        best_s = np.full((q.shape[0], 0), -np.inf, dtype=np.float32)
        best_i = np.zeros((q.shape[0], 0), dtype=np.int64)
        for c_start in range(0, n_c, rows):
            chunk = c[c_start : c_start + rows]
            s = _scores(q, chunk, metric, q_norm2)
            if s.shape[1] > k_eff:  # keep only this chunk's k best before merging
                keep = np.argpartition(s, s.shape[1] - k_eff, axis=1)[:, -k_eff:]
                s = np.take_along_axis(s, keep, axis=1)
                idx = keep + c_start
            else:
                idx = np.broadcast_to(np.arange(c_start, c_start + s.shape[1]), s.shape)
            best_s = np.concatenate([best_s, s], axis=1)
            best_i = np.concatenate([best_i, idx], axis=1)
            if best_s.shape[1] > k_eff:
                keep = np.argpartition(best_s, best_s.shape[1] - k_eff, axis=1)[:, -k_eff:]
                best_s = np.take_along_axis(best_s, keep, axis=1)
                best_i = np.take_along_axis(best_i, keep, axis=1)
        order = np.lexsort((best_i, -best_s), axis=1)
        sl = slice(q_start, q_start + q.shape[0])
        scores[sl] = np.take_along_axis(best_s, order, axis=1)
        indices[sl] = np.take_along_axis(best_i, order, axis=1)
    return TopK(indices, scores)
