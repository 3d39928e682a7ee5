"""Post-processing for any dense encoder: dimension truncation, int8 and binary quantization.

Smaller vectors trade quality for memory; `PostProcessedEncoder` applies the same steps inside
`encode`, so every eval command measures what a setting costs (`--truncate-dim`, `--quantize`).
Truncation keeps the first dimensions and renormalizes (what Matryoshka-trained models expect);
int8 stores each vector as 8-bit codes with one float scale; binary keeps one sign bit per
dimension (cosine of the ±1 vectors = 1 - 2 * Hamming distance / dim).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from .encoders.base import BaseEncoder, Encoder
from .errors import InputError
from .vectors import check_finite, normalize

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
    return q.codes.astype(np.float32) * q.scales[:, None]


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
    dequantized, binary vectors are ±1. `fit` passes through to the wrapped encoder.
    """

    name = "postprocessed"
    kind: ClassVar[str] = "dense"

    def __init__(
        self,
        encoder: Encoder,
        truncate_dim: int | None = None,
        quantize: Quantization | None = None,
    ) -> None:
        self.encoder = encoder
        self.truncate_dim = truncate_dim
        self.quantize = quantize

    @property
    def needs_fit(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.encoder, "needs_fit", False))

    def _is_fitted(self) -> bool:
        inner = getattr(self.encoder, "_is_fitted", None)
        return inner() if callable(inner) else True

    @property
    def metric(self) -> str:  # type: ignore[override]
        return "cosine"

    @property
    def dim(self) -> int:
        return int(self.truncate_dim or self.encoder.dim)

    def fit(self, corpus: Any, y: Any = None) -> Self:
        """Fit the wrapped encoder."""
        self.encoder.fit(corpus)
        return self

    def _process(self, vectors: Any) -> np.ndarray:
        if getattr(self.encoder, "sparse", False):
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

    def encode(
        self, texts: Any, *, batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        return self._process(self.encoder.encode(texts, batch_size=batch_size, progress=progress))

    def encode_queries(
        self, texts: Any, *, batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        inner = getattr(self.encoder, "encode_queries", self.encoder.encode)
        return self._process(inner(texts, batch_size=batch_size, progress=progress))

    def save(self, path: Any) -> None:
        raise InputError("save the wrapped encoder; truncation and quantization are settings")
