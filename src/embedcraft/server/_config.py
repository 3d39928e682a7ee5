"""What a server serves and under which rules: the encoders and collections, limits, batching,
the API key. Plain library objects only, so the app stays a thin shell over them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..cache import MemoryCache, VectorCache
from ..encoders.contract import Encoder
from ..errors import InputError
from ._inputs import reader_for

__all__ = ["Batching", "Limits", "ServerConfig", "count_tokens"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")


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
    """Dynamic micro-batching: requests for one model that arrive close together share encodes.

    An idle model waits `max_wait_ms` for the requests arriving with the first one; requests that
    arrive while it encodes join the next encode without waiting. Most models encode the queued
    requests whole, up to `max_batch` inputs at a time. Text transformers encode one model run at
    a time, of up to `transformer_batch_size` texts of about one length, taken from the pending
    texts of the oldest queued requests (up to `max_batch` texts): see `_batcher`.
    """

    max_batch: int = 256
    max_wait_ms: float = 2.0
    transformer_batch_size: int = 64
    """Texts per model run of a text transformer at most (and 1024 padded tokens, as in the
    library). Runs hold texts of about one length, so they can be as long as a direct encode's
    (64) without padding much (measured serving STS-B to 32 clients: ~3.5% more padded tokens
    than one sorted encode of all the texts, in 127 runs against its 85; whole micro-batches of
    256 in runs of 32, the earlier way, padded ~10% more in 158 runs)."""

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
    cache: VectorCache | None = field(default_factory=MemoryCache)
    """Where served vectors are kept so a repeated input is not encoded again (one cache for
    every served model; entries are keyed by each encoder's fingerprint): in memory (256 MiB,
    the default), an `EmbeddingCache` on disk shared with other processes, or None."""

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
            reader_for(name, encoder)  # refuses an input kind the server cannot read
            if not encoder.is_fitted():
                raise InputError(
                    f"encoder {name!r} needs fitting before it can be served: fit it (CLI: "
                    "--fit-on FILE) or serve a saved fitted encoder folder"
                )
        if self.api_key is not None and not self.api_key.strip():
            raise InputError("api_key is empty: give a key or none")


def count_tokens(encoder: Encoder, texts: Sequence[Any]) -> list[int]:
    """Tokens per input as `encoder` counts them (its `count_tokens`), for a response's `usage`.

    What is counted is the encoder's `token_unit`: transformers count their tokenizer's pieces
    (special tokens included, before truncation), static transformer models their tokenizer's
    pieces, word and sparse encoders the word tokens of their text analyzer.
    """
    if not texts:
        return []
    return [int(n) for n in encoder.count_tokens(list(texts))]
