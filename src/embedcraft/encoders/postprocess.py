"""Post-processing for any dense encoder: dimension truncation, int8 and binary quantization.

Smaller vectors trade quality for memory; `PostProcessedEncoder` applies the same steps inside
`encode`, so every eval command measures what a setting costs (`--truncate-dim`, `--quantize`).
Truncation keeps the first dimensions and renormalizes (what Matryoshka-trained models expect);
int8 stores each vector as 8-bit codes with one float scale; binary keeps one sign bit per
dimension (cosine of the ±1 vectors = 1 - 2 * Hamming distance / dim).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..vectors import check_finite, normalize
from .base import BaseEncoder
from .contract import CacheSetting, Encoded, Encoder, EncoderKind, InputKind

__all__ = [
    "Int8Vectors",
    "PostProcessedEncoder",
    "dequantize_int8",
    "quantize_binary",
    "quantize_int8",
    "truncate_dim",
    "unpack_binary",
]

Quantization = Literal["int8", "binary"]


def _dense(x: Any, what: str = "vectors") -> np.ndarray:
    if sp.issparse(x):
        raise InputError(f"{what}: truncation and quantization apply to dense vectors only")
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise InputError(f"{what}: expected a 2-D matrix, got {arr.ndim} dimensions")
    check_finite(arr, what)
    return arr


def truncate_dim(x: Any, dim: int, *, renormalize: bool = True) -> np.ndarray:
    """The first `dim` dimensions of each vector, rescaled to unit length by default."""
    arr = _dense(x)
    if not 1 <= dim <= arr.shape[1]:
        raise InputError(f"cannot truncate {arr.shape[1]}-dimensional vectors to {dim}")
    out = np.ascontiguousarray(arr[:, :dim])
    return normalize(out) if renormalize else out


@dataclass(frozen=True)
class Int8Vectors:
    """int8 codes (n, dim) and one float32 scale per vector: vector ≈ codes * scale."""

    codes: np.ndarray
    scales: np.ndarray

    @property
    def nbytes(self) -> int:
        """Storage used, in bytes."""
        return int(self.codes.nbytes + self.scales.nbytes)


def quantize_int8(x: Any) -> Int8Vectors:
    """Symmetric per-vector int8: codes = round(127 * v / max|v|); no calibration needed."""
    arr = _dense(x)
    peak = np.abs(arr).max(axis=1) if arr.size else np.zeros(len(arr), np.float32)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(arr / scales[:, None]), -127, 127).astype(np.int8)
    return Int8Vectors(codes, scales)


def dequantize_int8(q: Int8Vectors) -> np.ndarray:
    """Float32 vectors back from int8 codes."""
    out: np.ndarray = q.codes.astype(np.float32) * q.scales[:, None]
    return out


def quantize_binary(x: Any) -> np.ndarray:
    """One bit per dimension (1 where the value is > 0), packed 8 to a byte: (n, ceil(dim/8))."""
    return np.packbits(_dense(x) > 0, axis=1)


def unpack_binary(packed: np.ndarray, dim: int) -> np.ndarray:
    """±1 float32 vectors from packed bits, for cosine or dot products."""
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=dim)
    return bits.astype(np.float32) * 2.0 - 1.0


class PostProcessedEncoder(BaseEncoder):
    """Another dense encoder's vectors, truncated and/or quantized (returned as float32).

    The output simulates what an index storing the smaller form would compare: int8 vectors are
    dequantized, binary vectors are ±1. `fit` passes through to the wrapped encoder, and so do
    what it reads, counts and reports.
    """

    name = "postprocessed"

    def __init__(
        self,
        encoder: Encoder,
        truncate_dim: int | None = None,
        quantize: Quantization | None = None,
        name: str = "postprocessed",
    ) -> None:
        self.encoder = encoder
        self.truncate_dim = truncate_dim
        self.quantize = quantize
        self.name = name

    @property
    def needs_fit(self) -> bool:  # type: ignore[override]
        return self.encoder.needs_fit

    @property
    def kind(self) -> EncoderKind:  # type: ignore[override]
        return self.encoder.kind

    @property
    def input_kind(self) -> InputKind:  # type: ignore[override]
        return self.encoder.input_kind

    @property
    def token_unit(self) -> str:  # type: ignore[override]
        return self.encoder.token_unit

    @property
    def metric(self) -> Literal["cosine"]:  # type: ignore[override]
        return "cosine"

    def is_fitted(self) -> bool:
        return self.encoder.is_fitted()

    @property
    def dim(self) -> int:
        return int(self.truncate_dim or self.encoder.dim)

    def fit(self, corpus: Any, y: Any = None) -> Self:
        """Fit the wrapped encoder."""
        self.encoder.fit(corpus)
        return self

    def count_tokens(self, inputs: Any) -> list[int]:
        return self.encoder.count_tokens(inputs)

    def _process(self, vectors: Any) -> np.ndarray:
        if self.encoder.sparse:
            raise InputError(f"{self.encoder.name} is sparse: post-processing is for dense vectors")
        out = _dense(vectors)
        if self.truncate_dim:
            out = truncate_dim(out, int(self.truncate_dim))
        if self.quantize == "int8":
            out = dequantize_int8(quantize_int8(out))
        elif self.quantize == "binary":
            out = unpack_binary(quantize_binary(out), out.shape[1])
        elif self.quantize is not None:
            raise InputError(f"quantize must be 'int8' or 'binary', got {self.quantize!r}")
        return out

    def encode_with_report(
        self,
        inputs: Any,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        cache: CacheSetting = None,
    ) -> Encoded:
        """The wrapped encoder's vectors (cached as it caches them), then post-processed."""
        inner = self.encoder.encode_with_report(
            inputs, batch_size=batch_size, progress=progress, cache=cache
        )
        encoded = Encoded(self._process(inner.vectors), inner.report)
        self.last_report = encoded.report
        return encoded

    def _query_rows(
        self, inputs: Any, batch_size: int | None, progress: bool, cache: CacheSetting
    ) -> np.ndarray:
        """The wrapped encoder's query vectors, post-processed (one row per input)."""
        inner = self.encoder.encode_queries(
            inputs, batch_size=batch_size, progress=progress, cache=cache
        )
        return self._process(inner if sp.issparse(inner) else np.atleast_2d(inner))

    def save(self, path: Any) -> None:
        raise InputError("save the wrapped encoder; truncation and quantization are settings")
