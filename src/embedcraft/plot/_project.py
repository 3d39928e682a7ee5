"""2-D projections of vectors (PCA, t-SNE, UMAP), made cosine-aware and seeded."""

from __future__ import annotations

import inspect
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import InputError, missing_dependency

__all__ = ["METHODS", "Projection", "project"]

METHODS = ("pca", "tsne", "umap")
_MIN_POINTS = {"pca": 2, "tsne": 5, "umap": 10}
_REDUCE_TO = 50
"""t-SNE and UMAP first reduce wider vectors to this many dimensions (PCA, or TruncatedSVD for
sparse input): faster, and it removes noise directions."""


@dataclass(frozen=True)
class Projection:
    """Points in 2-D (float32, shape (n, 2)) with how they were made and how long it took."""

    coords: np.ndarray
    method: str
    seconds: float

    def __len__(self) -> int:
        return int(self.coords.shape[0])


def _unit_rows(vectors: Any, purpose: str = "project it") -> Any:
    """Rows scaled to unit length (zero rows stay zero), so distances follow cosine.

    Sparse input stays sparse (CSR); dense becomes a C-ordered float32 copy. A row holding NaN
    or infinity is an InputError that says what could not be done (`purpose`).
    """
    if sp.issparse(vectors):
        matrix = sp.csr_matrix(vectors, dtype=np.float32)
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix)
    matrix = np.array(vectors, dtype=np.float32, ndmin=2, order="C")
    if matrix.ndim != 2:
        raise InputError(f"expected a 2-D array of vectors, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        bad = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise InputError(f"vector {bad} holds NaN or infinity; cannot {purpose}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


def _reduce(matrix: Any, width: int, seed: int) -> np.ndarray:
    """At most `width` dense dimensions: TruncatedSVD for sparse input, PCA for wide dense."""
    if sp.issparse(matrix):
        from sklearn.decomposition import TruncatedSVD

        keep = max(1, min(width, matrix.shape[1] - 1, matrix.shape[0] - 1))
        svd: np.ndarray = TruncatedSVD(keep, random_state=seed).fit_transform(matrix)
        return svd.astype(np.float32)
    if matrix.shape[1] <= width:
        return np.asarray(matrix)  # already a dense array: no copy
    from sklearn.decomposition import PCA

    keep = min(width, matrix.shape[0])
    reduced: np.ndarray = PCA(keep, random_state=seed).fit_transform(matrix)
    return reduced.astype(np.float32)


def _pca(matrix: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    keep = min(2, matrix.shape[0], matrix.shape[1])
    solver = "full" if matrix.shape[0] * matrix.shape[1] < 2_000_000 else "randomized"
    coords: np.ndarray = PCA(keep, svd_solver=solver, random_state=seed).fit_transform(matrix)
    # a component's sign is arbitrary; fix it so the same data always gives the same picture
    for j in range(coords.shape[1]):
        if coords[np.argmax(np.abs(coords[:, j])), j] < 0:
            coords[:, j] = -coords[:, j]
    return coords


def _tsne(matrix: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (matrix.shape[0] - 1) / 3))
    tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed, metric="euclidean")
    coords: np.ndarray = tsne.fit_transform(matrix)
    return coords


def _umap(matrix: np.ndarray, seed: int, progress: bool = False) -> np.ndarray:
    try:
        import umap
    except ImportError:
        raise missing_dependency("umap-learn", "plot", "UMAP projections") from None
    options: dict[str, Any] = {}
    if "tqdm_kwds" in inspect.signature(umap.UMAP).parameters:  # umap-learn 0.5.2 and later
        options["tqdm_kwds"] = {"disable": not progress, "desc": "umap epochs"}
    reducer = umap.UMAP(
        n_components=2, n_neighbors=min(15, matrix.shape[0] - 1), random_state=seed,
        init="spectral", **options,
    )  # fmt: skip
    with warnings.catch_warnings():  # a seed makes UMAP single-threaded; it says so each time
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        coords: np.ndarray = reducer.fit_transform(matrix)
    return coords


def _say(progress: bool, message: str) -> None:
    """A stage of the projection, on stderr, when progress is asked for."""
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)


def project(
    vectors: Any, method: str = "pca", *, seed: int = 0, progress: bool = False
) -> Projection:
    """Project dense (numpy) or sparse (scipy) vectors to 2-D with PCA, t-SNE or UMAP.

    Rows are scaled to unit length first, so nearness in the picture follows cosine
    similarity; the same `seed` gives the same coordinates. `progress` says on stderr what
    t-SNE and UMAP (which take minutes on large inputs) are doing, and UMAP's epochs as a bar.
    """
    if method not in METHODS:
        raise InputError(
            f"unknown projection method {method!r}; choose one of {', '.join(METHODS)}"
        )
    n = vectors.shape[0] if hasattr(vectors, "shape") else len(vectors)
    if n == 0:
        raise InputError("no vectors to project (the input is empty)")
    if n < _MIN_POINTS[method]:
        raise InputError(
            f"{method} needs at least {_MIN_POINTS[method]} points, got {n}; "
            + ("use --method pca for so few" if method != "pca" else "add more texts")
        )
    start = time.perf_counter()
    matrix = _unit_rows(vectors)
    if matrix.shape[1] == 0:
        raise InputError("the vectors have no dimensions; nothing to project")
    if method == "pca":
        dense = _reduce(matrix, _REDUCE_TO, seed) if sp.issparse(matrix) else matrix
        coords = _pca(dense, seed)
    else:
        name = "t-SNE" if method == "tsne" else "UMAP"
        wide = matrix.shape[1] > _REDUCE_TO or sp.issparse(matrix)
        reduced = f" (first reduced to {_REDUCE_TO} dimensions)" if wide else ""
        _say(progress, f"{name}: projecting {n:,} points{reduced}...")
        dense = _reduce(matrix, _REDUCE_TO, seed)
        coords = _tsne(dense, seed) if method == "tsne" else _umap(dense, seed, progress)
        _say(progress, f"{name}: {n:,} points projected in {time.perf_counter() - start:.1f} s")
    coords = np.asarray(coords, dtype=np.float32)
    if coords.shape[1] < 2:  # one-dimensional data: a flat line
        coords = np.hstack([coords, np.zeros((n, 2 - coords.shape[1]), dtype=np.float32)])
    return Projection(coords, method, time.perf_counter() - start)
