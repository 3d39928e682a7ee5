"""What a server serves and under which rules: the encoders and collections, limits, batching,
the API key. Plain library objects only, so the app stays a thin shell over them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..encoders.base import Encoder
from ..errors import InputError
from ..text import TextAnalyzer

__all__ = ["Batching", "Limits", "ServerConfig", "count_tokens", "token_unit"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
_WORDS = TextAnalyzer()


@dataclass(frozen=True)
class Limits:
    """Request limits: larger requests get 413 (body) or 422 (inputs, characters) with a message."""

    max_inputs: int = 2048
    """Texts in one request (the OpenAI API allows 2048)."""
    max_chars: int = 100_000
    """Characters in one text."""
    max_body_bytes: int = 16 * 1024 * 1024
    """Bytes in one request body."""
    max_k: int = 1000
    """Results one /search may ask for."""

    def __post_init__(self) -> None:
        for name in ("max_inputs", "max_chars", "max_body_bytes", "max_k"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Batching:
    """Dynamic micro-batching: requests for one model that arrive close together share an encode.

    A batch closes at `max_batch` texts or `max_wait_ms` after its first request, whichever comes
    first; requests that arrive while an encode runs join the next batch without waiting.
    """

    max_batch: int = 256
    max_wait_ms: float = 2.0
    transformer_batch_size: int = 32
    """Rows per model run when a transformer encodes a micro-batch. A micro-batch mixes texts of
    many lengths; padded runs of 32 waste less on padding than the library's 64 (measured on
    STS-B: 240-text micro-batches within 5% of one sorted encode at 32, 16% slower at 64)."""

    def __post_init__(self) -> None:
        if int(self.max_batch) < 1:
            raise InputError(f"max_batch must be at least 1, got {self.max_batch}")
        if int(self.transformer_batch_size) < 1:
            raise InputError(
                f"transformer_batch_size must be at least 1, got {self.transformer_batch_size}"
            )
        if not 0 <= float(self.max_wait_ms) <= 1000:
            raise InputError(f"max_wait_ms must be between 0 and 1000, got {self.max_wait_ms}")


@dataclass
class ServerConfig:
    """Everything a server needs: encoders by served name, collections by name, and the rules.

    Encoders must be fitted already (load a saved one, or fit before serving). Collections are
    open `Collection` / `PostgresCollection` objects; the caller closes them after the server stops.
    """

    encoders: Mapping[str, Encoder] = field(default_factory=dict)
    collections: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = None
    """When set, every route but /health needs the header `Authorization: Bearer <api_key>`."""
    limits: Limits = field(default_factory=Limits)
    batching: Batching = field(default_factory=Batching)

    def __post_init__(self) -> None:
        if not self.encoders and not self.collections:
            raise InputError("nothing to serve: give at least one encoder or collection")
        for kind, names in (("model", self.encoders), ("collection", self.collections)):
            for name in names:
                if not isinstance(name, str) or not _NAME.match(name):
                    raise InputError(
                        f"{kind} name {name!r}: use letters, digits, '_', '-', '.' or ':' "
                        "(up to 128 characters)"
                    )
        for name, encoder in self.encoders.items():
            if not getattr(encoder, "_is_fitted", lambda: True)():
                raise InputError(
                    f"encoder {name!r} needs fitting before it can be served: fit it (CLI: "
                    "--fit-on FILE) or serve a saved fitted encoder folder"
                )
        if self.api_key is not None and not self.api_key.strip():
            raise InputError("api_key is empty: give a key or none")


def _unwrapped(encoder: Encoder) -> Any:
    """The encoder that reads the text (a post-processing wrapper passes through)."""
    inner = getattr(encoder, "encoder", None)
    return inner if isinstance(inner, Encoder) else encoder


def token_unit(encoder: Encoder) -> str:
    """What `count_tokens` counts for `encoder`, as shown by /v1/models."""
    encoder = _unwrapped(encoder)
    if hasattr(encoder, "count_tokens"):
        return "model tokenizer tokens, special tokens included"
    if hasattr(encoder, "tokenizer_"):
        return "model tokenizer tokens"
    return "analyzer word tokens"


def count_tokens(encoder: Encoder, texts: Sequence[str]) -> list[int]:
    """Tokens per text as `encoder` sees them, for the `usage` block of a response.

    Transformers count their tokenizer's word pieces (special tokens included, before truncation);
    static transformer models count their tokenizer's pieces; word and sparse encoders count the
    word tokens of their text analyzer (stop words removed where the analyzer removes them).
    """
    if not texts:
        return []
    encoder = _unwrapped(encoder)
    counter = getattr(encoder, "count_tokens", None)
    if counter is not None:
        return [int(n) for n in counter(list(texts))]
    tokenizer = getattr(encoder, "tokenizer_", None)
    if tokenizer is not None:
        return [len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
    analyzer = getattr(encoder, "analyzer_in_use", None)
    if not isinstance(analyzer, TextAnalyzer):
        analyzer = _WORDS
    tokenize = analyzer.tokenize
    return [len(tokenize(t)) for t in texts]
