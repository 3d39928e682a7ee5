from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from embedcraft import DimensionMismatchError, InputError, normalize, similarity, top_k
from embedcraft.vectors import euclidean_distances


def _reference(q: np.ndarray, c: np.ndarray, metric: str) -> np.ndarray:
    q64, c64 = q.astype(np.float64), c.astype(np.float64)
    if metric == "dot":
        return q64 @ c64.T
    if metric == "cosine":
        qn = q64 / np.maximum(np.linalg.norm(q64, axis=1, keepdims=True), 1e-300)
        cn = c64 / np.maximum(np.linalg.norm(c64, axis=1, keepdims=True), 1e-300)
        return qn @ cn.T
    return -np.linalg.norm(q64[:, None, :] - c64[None, :, :], axis=2)


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
@pytest.mark.parametrize("sparse", [False, True])
def test_similarity_dense_and_sparse(metric: str, sparse: bool) -> None:
    rng = np.random.default_rng(1)
    q = rng.normal(size=(4, 12)).astype(np.float32) * (rng.random((4, 12)) < 0.5)
    c = rng.normal(size=(9, 12)).astype(np.float32) * (rng.random((9, 12)) < 0.5)
    got = similarity(sp.csr_matrix(q) if sparse else q, sp.csr_matrix(c) if sparse else c, metric)
    assert got.shape == (4, 9) and got.dtype == np.float32
    np.testing.assert_allclose(got, _reference(q, c, metric), rtol=1e-4, atol=1e-5)


def test_similarity_of_two_vectors_is_a_float_and_zero_vectors_score_zero() -> None:
    assert similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(2**-0.5)
    assert similarity(np.zeros(3), np.ones(3)) == 0.0
    np.testing.assert_allclose(euclidean_distances([[0, 0]], [[3, 4], [0, 1]]), [[5.0, 1.0]])


def test_normalize_dense_sparse_and_zero_rows() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(normalize(x), [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(normalize(sp.csr_matrix(x)).toarray(), [[0.6, 0.8], [0.0, 0.0]])
    assert normalize(x).dtype == np.float32 and normalize(np.array([0.0, 2.0])).shape == (2,)


def test_bad_vectors_get_clear_errors() -> None:
    with pytest.raises(DimensionMismatchError, match="queries have 3 dimensions, the corpus has 4"):
        similarity(np.ones((1, 3)), np.ones((2, 4)))
    bad = np.ones((5, 3))
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="corpus: row 3 contains NaN"):
        top_k(np.ones((1, 3)), bad, 2)
    with pytest.raises(InputError, match="queries: row 0 contains NaN"):
        similarity(sp.csr_matrix([[np.inf, 1.0]]), np.ones((1, 2)))
    with pytest.raises(InputError, match="unknown metric"):
        similarity(np.ones(2), np.ones(2), "manhattan")
    with pytest.raises(InputError, match="numeric"):
        normalize(np.array(["a", "b"]))
    with pytest.raises(InputError, match="k must be"):
        top_k(np.ones((1, 2)), np.ones((3, 2)), 0)


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_top_k_equals_full_sort_for_any_chunking(metric: str) -> None:
    rng = np.random.default_rng(2)
    c = rng.normal(size=(1000, 16)).astype(np.float32)
    q = rng.normal(size=(7, 16)).astype(np.float32)
    ref = _reference(q, c, metric)
    want = np.argsort(-ref, axis=1, kind="stable")[:, :10]
    for chunk in (None, 1, 37, 999, 5000):
        got = top_k(q, c, 10, metric, chunk_size=chunk)
        np.testing.assert_array_equal(got.indices, want)
        np.testing.assert_allclose(
            got.scores, np.take_along_axis(ref, want, 1), rtol=1e-4, atol=1e-4
        )


def test_top_k_ties_sparse_and_small_corpus() -> None:
    c = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    result = top_k(np.array([1.0, 0.0]), c, 10, "dot", chunk_size=1)
    assert result.indices.tolist() == [[0, 1, 2]]  # k capped at corpus size, ties by row
    sparse = top_k(sp.csr_matrix([[0.0, 1.0]]), sp.csr_matrix(c), 1, "cosine")
    assert sparse.indices.tolist() == [[2]] and sparse.scores[0, 0] == pytest.approx(1.0)
    assert top_k(np.zeros((0, 2)), c, 3).indices.shape == (0, 3)


def test_top_k_memory_stays_bounded_on_a_large_scan() -> None:
    rng = np.random.default_rng(3)
    corpus = rng.normal(size=(1_000_000, 8)).astype(np.float32)  # 32 MB of vectors
    queries = rng.normal(size=(200, 8)).astype(np.float32)
    # a full score matrix would be 200 x 1M x 4 bytes = 800 MB; chunks keep it near 200 x 20k
    for chunk_size in (20_000, None):
        tracemalloc.start()
        result = top_k(queries, corpus, 10, "dot", chunk_size=chunk_size)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MiB with chunk_size={chunk_size}"
    exact = np.argsort(-(corpus @ queries[0]), kind="stable")[:10]
    np.testing.assert_array_equal(result.indices[0], exact)
