"""The encoder contract: what every encoder promises, whatever its family and its input.

Callers (collections, search, evaluation, the CLI, the server, the Ray engine) rely on this and
nothing else: they never probe an encoder's attributes or reach into a family's internals. An
encoder declares what it reads (`input_kind`), what it is (`kind`), how its vectors compare
(`metric`), whether it learns from a corpus (`needs_fit`, `is_fitted()`), and how it saves
(`to_spec()` / `BaseEncoder.from_spec()`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, TypeAlias, runtime_checkable

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from ..cache import VectorCache
    from .base import BaseEncoder

__all__ = [
    "CacheSetting",
    "CatalogEntry",
    "EncodeReport",
    "Encoded",
    "Encoder",
    "EncoderKind",
    "EncoderSpec",
    "InputKind",
    "Metric",
    "Vectors",
    "as_texts",
    "is_single_input",
]

Vectors: TypeAlias = np.ndarray | sp.csr_matrix
"""What `encode` returns: a (n, dim) float32 array, or a float32 CSR matrix for sparse encoders;
a single input (not in a list) gives a (dim,) array, or a 1-row CSR matrix (see `encode`)."""

CacheSetting: TypeAlias = "bool | VectorCache | None"
"""What `encode(..., cache=)` takes: True (the disk embedding cache), False (none), a cache
object, or None (an enclosing `embedcraft.caching(...)` block's choice; none outside one)."""

Metric = Literal["cosine", "dot"]
"""How an encoder's vectors are compared: cosine similarity, or the raw dot product (BM25)."""


class InputKind(StrEnum):
    """What an encoder reads: readers, collections, the CLI and the server route inputs by it."""

    TEXT = "text"
    IMAGE = "image"


class EncoderKind(StrEnum):
    """What an encoder is, in one word (the only meaning of "kind" in embedcraft)."""

    SPARSE = "sparse"
    """One weight per vocabulary term or hashed feature (bag-of-words, TF-IDF, BM25...)."""
    STATIC = "static"
    """A fixed vector per word or token, pooled over the input (GloVe mean, SIF, distilled)."""
    CONTEXTUAL = "contextual"
    """A neural network reads the whole input (transformers, image CNNs)."""


@dataclass(frozen=True)
class EncodeReport:
    """What one `encode` call met, over all its batches: token counts, unknown tokens, cut inputs.

    Families fill what applies to them (word-vector pooling counts out-of-vocabulary tokens,
    transformers report truncation); the rest stay zero.
    """

    inputs: int = 0
    tokens: int = 0
    oov_tokens: int = 0
    """Tokens with no vector (skipped, or given subword vectors)."""
    empty_inputs: int = 0
    """Inputs with no known token: they get a zero vector."""
    truncated: list[int] = field(default_factory=list)
    """Indices (in the call's input order) of inputs cut at `max_tokens` (or windowed)."""
    max_tokens: int = 0
    """The token limit in force (0: the encoder has none)."""
    chunked: bool = False
    """Long inputs were split into overlapping windows whose vectors were averaged."""
    failed: dict[int, str] = field(default_factory=dict)
    """Inputs that could not be read (index in the call -> why), e.g. an undecodable image:
    they get a zero vector, and the rest of the call goes on."""
    cached: int = 0
    """Inputs served from the embedding cache (or repeated within the call): not encoded, so
    not in `tokens` / `oov_tokens`."""

    @property
    def texts(self) -> int:
        """Inputs encoded (the name text encoders' reports used before images)."""
        return self.inputs

    @property
    def empty_texts(self) -> int:
        """`empty_inputs`, under the name text encoders' reports used before images."""
        return self.empty_inputs

    @property
    def oov_rate(self) -> float:
        """Share of tokens outside the vocabulary."""
        return self.oov_tokens / self.tokens if self.tokens else 0.0

    def merged(self, batch: EncodeReport, positions: Sequence[int]) -> EncodeReport:
        """This report plus `batch`'s, whose inputs sit at `positions` of the whole call."""
        truncated = self.truncated + [int(positions[i]) for i in batch.truncated]
        return EncodeReport(
            inputs=self.inputs + batch.inputs,
            tokens=self.tokens + batch.tokens,
            oov_tokens=self.oov_tokens + batch.oov_tokens,
            empty_inputs=self.empty_inputs + batch.empty_inputs,
            truncated=sorted(truncated),
            max_tokens=max(self.max_tokens, batch.max_tokens),
            chunked=self.chunked or batch.chunked,
            failed={**self.failed, **{int(positions[i]): why for i, why in batch.failed.items()}},
            cached=self.cached + batch.cached,
        )


@dataclass(frozen=True)
class Encoded:
    """Vectors of one `encode_with_report` call and the report of that call."""

    vectors: Vectors
    report: EncodeReport = field(default_factory=EncodeReport)


EncoderSpec = dict[str, Any]
"""An encoder's saved description, JSON-ready: {"type", "name", "params", "state", "arrays"}.

`type` is the class, `params` its constructor arguments, `state` learned values; the learned
arrays travel beside it (see `BaseEncoder.to_spec`)."""


@runtime_checkable
class Encoder(Protocol):
    """What every caller relies on, whichever family made the vectors."""

    name: str
    sparse: bool
    """Vectors come as a scipy CSR matrix (else a dense numpy array)."""
    needs_fit: bool
    """The encoder learns from a corpus before it can encode."""
    token_unit: str
    """What `count_tokens` counts ("analyzer word tokens", "model tokenizer tokens"...)."""

    @property
    def kind(self) -> EncoderKind: ...

    @property
    def input_kind(self) -> InputKind: ...

    @property
    def metric(self) -> Metric: ...

    @property
    def dim(self) -> int: ...

    def is_fitted(self) -> bool: ...

    def fit(self, corpus: Iterable[Any], y: Any = None) -> Self: ...

    def encode(
        self,
        inputs: Any,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        cache: CacheSetting = None,
        normalize_embeddings: bool = False,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool | None = None,
        **unsupported: Any,
    ) -> Vectors: ...

    def encode_queries(
        self,
        inputs: Any,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        cache: CacheSetting = None,
        normalize_embeddings: bool = False,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool | None = None,
        **unsupported: Any,
    ) -> Vectors: ...

    def encode_with_report(
        self,
        inputs: Any,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        cache: CacheSetting = None,
    ) -> Encoded: ...

    def count_tokens(self, inputs: Any) -> list[int]: ...

    def to_spec(self) -> tuple[EncoderSpec, dict[str, np.ndarray]]: ...

    def save(self, path: str | os.PathLike[str]) -> None: ...


def as_texts(texts: Any) -> list[str]:
    """Check and return the input as a list of str; a single string becomes a list of one.

    None, bytes or any other non-string item raises TypeError naming the index of the bad item.
    """
    if isinstance(texts, str):
        return [texts]
    if texts is None:
        raise TypeError("expected a string or a list of strings, got None")
    if isinstance(texts, bytes | bytearray):
        raise TypeError(
            "expected str, got bytes: decode the bytes first (e.g. data.decode('utf-8'))"
        )
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(
            f"expected a string or a list of strings, got {type(texts).__name__}"
        ) from None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            shown = repr(item)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise TypeError(f"item {i} is {type(item).__name__}, not str: {shown}")
    return items


def is_single_input(inputs: Any, input_kind: InputKind) -> bool:
    """Whether `inputs` is one input rather than a collection of them (`encode` then gives one
    vector): a str for text encoders; for image encoders also a path, encoded bytes, a PIL
    image, or one (H, W) / (H, W, C) array (an (N, H, W, C) array is N images)."""
    if isinstance(inputs, str):
        return True
    if input_kind is not InputKind.IMAGE:
        return False
    if isinstance(inputs, np.ndarray):
        return inputs.ndim < 4
    pil = sys.modules.get("PIL.Image")  # a caller holding a PIL image has Pillow imported
    return isinstance(inputs, bytes | bytearray | os.PathLike) or (
        pil is not None and isinstance(inputs, pil.Image)
    )


@dataclass(frozen=True)
class CatalogEntry:
    """One named encoder a family offers: what it is, where its model comes from, how to build it.

    A family module lists its entries in `catalog_entries()`; `embedcraft.catalog` gathers them.
    """

    name: str
    kind: EncoderKind
    width: str
    """The vector width, or what decides it (e.g. "vocabulary size")."""
    needs_fit: bool
    source: str
    description: str
    build: Callable[[], BaseEncoder]
    input_kind: InputKind = InputKind.TEXT
