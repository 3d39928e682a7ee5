"""Dimension truncation and int8/binary quantization, checked by hand on small matrices, and the
PostProcessedEncoder wrapper around a tiny in-memory word-vector encoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from embedcraft.encoders.base import fit_if_needed
from embedcraft.encoders.pooling import MeanPoolingEncoder, SIFEncoder
from embedcraft.encoders.postprocess import (
    Int8Vectors,
    PostProcessedEncoder,
    dequantize_int8,
    quantize_binary,
    quantize_int8,
    truncate_dim,
    unpack_binary,
)
from embedcraft.encoders.sparse import TfidfEncoder
from embedcraft.errors import InputError, NotFittedError
from embedcraft.words import WordVectors

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "in", "park", "sun", "is", "hot"]
CORPUS = [
    "the cat sat on the mat",
    "the dog ran in the park",
    "the sun is hot",
    "a cat ran in the park",
    "the dog sat on the mat",
]


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(6, 13)).astype(np.float32)


@pytest.fixture
def wv() -> WordVectors:
    vectors = np.random.default_rng(1).normal(size=(len(WORDS), 8))
    return WordVectors(WORDS, vectors, name="tiny")


# ------------------------------------------------------------------------- truncate_dim
def test_truncate_keeps_the_first_dims_and_renormalizes(x: np.ndarray) -> None:
    out = truncate_dim(x, 5)
    assert out.shape == (6, 5) and out.dtype == np.float32
    want = x[:, :5] / np.linalg.norm(x[:, :5], axis=1, keepdims=True)
    np.testing.assert_allclose(out, want, rtol=1e-5)
    np.testing.assert_allclose(truncate_dim(x, 5, renormalize=False), x[:, :5])
    np.testing.assert_allclose(truncate_dim(x, 13), x / np.linalg.norm(x, axis=1, keepdims=True))


def test_truncate_leaves_a_zero_prefix_zero() -> None:
    m = np.array([[0.0, 0.0, 3.0], [1.0, 1.0, 0.0]], np.float32)
    np.testing.assert_allclose(truncate_dim(m, 2), [[0, 0], [2**-0.5, 2**-0.5]], rtol=1e-6)


@pytest.mark.parametrize("dim", [0, -1, 14])
def test_truncate_to_an_impossible_width(x: np.ndarray, dim: int) -> None:
    with pytest.raises(InputError) as info:
        truncate_dim(x, dim)
    words = str(info.value).split()
    assert "13-dimensional" in words and str(dim) in words


# ------------------------------------------------------------------------- int8
def test_int8_round_trip_error_is_at_most_half_a_step(x: np.ndarray) -> None:
    q = quantize_int8(x)
    assert isinstance(q, Int8Vectors)
    assert q.codes.dtype == np.int8 and q.codes.shape == x.shape
    assert q.scales.dtype == np.float32 and q.scales.shape == (6,)
    assert q.codes.min() >= -127 and q.codes.max() <= 127
    # Each row's largest magnitude uses the full range.
    np.testing.assert_array_equal(np.abs(q.codes.astype(int)).max(axis=1), 127)
    np.testing.assert_allclose(q.scales, np.abs(x).max(axis=1) / 127, rtol=1e-6)
    back = dequantize_int8(q)
    assert back.dtype == np.float32
    assert (np.abs(back - x) <= q.scales[:, None] / 2 * (1 + 1e-5)).all()
    assert q.nbytes == x.size + 4 * len(x)


def test_int8_zero_vector_stays_zero(x: np.ndarray) -> None:
    m = np.vstack([x[:2], np.zeros((1, 13), np.float32)])
    back = dequantize_int8(quantize_int8(m))
    np.testing.assert_array_equal(back[2], 0.0)
    assert np.isfinite(back).all()


# ------------------------------------------------------------------------- binary
def _popcount(a: np.ndarray) -> np.ndarray:
    return np.unpackbits(a.astype(np.uint8), axis=-1).sum(axis=-1)


def test_binary_packs_one_bit_per_dimension(x: np.ndarray) -> None:
    m = np.vstack([x, np.zeros((1, 13), np.float32)])
    packed = quantize_binary(m)
    assert packed.dtype == np.uint8 and packed.shape == (7, 2)  # ceil(13 / 8)
    positive = m > 0
    np.testing.assert_array_equal(_popcount(packed), positive.sum(axis=1))
    signs = unpack_binary(packed, 13)
    assert signs.dtype == np.float32 and signs.shape == (7, 13)
    np.testing.assert_array_equal(signs, np.where(positive, 1.0, -1.0))
    assert (signs[-1] == -1).all()  # zero is not > 0


def test_binary_cosine_is_one_minus_twice_the_hamming_share(x: np.ndarray) -> None:
    d = x.shape[1]
    packed = quantize_binary(x)
    signs = unpack_binary(packed, d)
    cosine = (signs @ signs.T) / d
    hamming = ((x[:, None, :] > 0) != (x[None, :, :] > 0)).sum(axis=2)
    np.testing.assert_allclose(cosine, 1 - 2 * hamming / d, atol=1e-6)
    # What an index does with the packed bytes: XOR, then count the bits.
    xor_count = _popcount(np.bitwise_xor(packed[:, None, :], packed[None, :, :]))
    np.testing.assert_array_equal(xor_count, hamming)


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("step", [lambda m: truncate_dim(m, 2), quantize_int8, quantize_binary])
def test_sparse_input_is_refused(x: np.ndarray, step) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="dense"):
        step(sp.csr_matrix(x))


@pytest.mark.parametrize("step", [lambda m: truncate_dim(m, 2), quantize_int8, quantize_binary])
def test_nan_is_refused_naming_the_row(x: np.ndarray, step) -> None:  # type: ignore[no-untyped-def]
    bad = x.copy()
    bad[4, 7] = np.nan
    with pytest.raises(InputError, match="row 4"):
        step(bad)


# ------------------------------------------------------------------------- the wrapper
def test_wrapper_truncates_a_dense_encoder(wv: WordVectors) -> None:
    inner = MeanPoolingEncoder(wv)
    wrapped = PostProcessedEncoder(inner, truncate_dim=3)
    assert wrapped.dim == 3 and not wrapped.needs_fit and not wrapped.sparse
    raw = inner.encode(CORPUS)
    want = raw[:, :3] / np.linalg.norm(raw[:, :3], axis=1, keepdims=True)
    np.testing.assert_allclose(wrapped.encode(CORPUS), want, rtol=1e-5)
    np.testing.assert_allclose(wrapped.transform(CORPUS), want, rtol=1e-5)
    np.testing.assert_allclose(wrapped.encode_queries(CORPUS), want, rtol=1e-5)
    assert PostProcessedEncoder(inner, quantize="int8").dim == inner.dim == 8


def test_wrapper_quantizes(wv: WordVectors) -> None:
    inner = MeanPoolingEncoder(wv)
    raw = inner.encode(CORPUS)
    signs = PostProcessedEncoder(inner, quantize="binary").encode(CORPUS)
    np.testing.assert_array_equal(signs, np.where(raw > 0, 1.0, -1.0))
    int8 = PostProcessedEncoder(inner, quantize="int8").encode(CORPUS)
    step = np.abs(raw).max(axis=1, keepdims=True) / 127
    assert (np.abs(int8 - raw) <= step / 2 * (1 + 1e-5)).all()
    both = PostProcessedEncoder(inner, truncate_dim=4, quantize="binary").encode(CORPUS)
    np.testing.assert_array_equal(both, np.where(raw[:, :4] > 0, 1.0, -1.0))
    with pytest.raises(InputError, match="quantize"):
        PostProcessedEncoder(inner, quantize="int4").encode(CORPUS)  # type: ignore[arg-type]


def test_wrapper_fits_the_wrapped_encoder(wv: WordVectors) -> None:
    wrapped = PostProcessedEncoder(SIFEncoder(wv), truncate_dim=4)
    assert wrapped.needs_fit and not wrapped.is_fitted()
    with pytest.raises(NotFittedError):
        wrapped.encode(CORPUS)
    assert fit_if_needed(wrapped, CORPUS)  # what the eval commands do
    assert wrapped.is_fitted() and not fit_if_needed(wrapped, CORPUS)
    raw = SIFEncoder(wv).fit(CORPUS).encode(CORPUS)
    want = raw[:, :4] / np.linalg.norm(raw[:, :4], axis=1, keepdims=True)
    np.testing.assert_allclose(wrapped.encode(CORPUS), want, rtol=1e-4, atol=1e-6)
    again = PostProcessedEncoder(SIFEncoder(wv), truncate_dim=4)
    assert again.fit(CORPUS) is again
    np.testing.assert_allclose(again.encode(CORPUS), want, rtol=1e-4, atol=1e-6)


def test_wrapper_refuses_sparse_encoders(corpus: list[str]) -> None:
    with pytest.raises(InputError, match="sparse"):
        PostProcessedEncoder(TfidfEncoder().fit(corpus), truncate_dim=2).encode(corpus)


def test_wrapper_cannot_be_saved(wv: WordVectors, tmp_path: Path) -> None:
    wrapped = PostProcessedEncoder(MeanPoolingEncoder(wv), truncate_dim=3)
    with pytest.raises(InputError, match="wrapped encoder"):
        wrapped.save(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()
