"""Request bodies (pydantic). The OpenAI error shape lives in `_errors` and is re-exported here
for code that imported it from this module."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._errors import ApiError, error_body

__all__ = [
    "ApiError",
    "EmbeddingRequest",
    "SearchRequest",
    "SimilarityRequest",
    "SparseEmbeddingRequest",
    "error_body",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings, as the OpenAI API defines it (unknown fields such as `user` ignored)."""

    model_config = ConfigDict(extra="ignore")

    input: str | list[Any]
    """A text or a list of texts; token arrays are refused with a clear message."""
    model: str
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


class SparseEmbeddingRequest(_Body):
    """POST /v1/sparse/embeddings: texts for a sparse encoder (TF-IDF, BM25, hashing, ...)."""

    input: str | list[Any]
    model: str
    query: bool = False
    """Encode as search queries (differs from documents for asymmetric encoders such as BM25)."""


class SearchRequest(_Body):
    """POST /search over one of the collections the server was started with."""

    query: str
    collection: str | None = None
    """Which collection; may be left out when the server has only one."""
    k: int = Field(10, ge=1)
    mode: Literal["dense", "sparse", "hybrid"] | None = None
    where: dict[str, Any] | None = None
    """A metadata filter, e.g. {"year": {"$gte": 2020}, "lang": "en"}."""
    encoder: str | None = None
    fusion: Literal["rrf", "weighted"] = "rrf"
    alpha: float = Field(0.5, ge=0.0, le=1.0)
    explain: bool = False
    min_score: float | None = None
    """Drop hits scoring below this (hybrid scores are on 0..1)."""


class SimilarityRequest(_Body):
    """POST /similarity: scores between every text of `a` and every text of `b`."""

    model: str
    a: str | list[Any]
    b: str | list[Any]
