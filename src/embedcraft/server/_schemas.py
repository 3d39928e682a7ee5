"""Request bodies (pydantic) and the error shape of the OpenAI API.

Every error the server sends is ``{"error": {"message", "type", "param", "code"}}``, so OpenAI
clients raise their usual exceptions with our message.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApiError",
    "EmbeddingRequest",
    "SearchRequest",
    "SimilarityRequest",
    "SparseEmbeddingRequest",
    "error_body",
]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    500: "server_error",
    503: "server_error",
}


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error shape for an HTTP status."""
    kind = _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class ApiError(Exception):
    """An error to send as-is: HTTP status, a message for the user, and which field it concerns."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """This error in the OpenAI shape."""
        return error_body(self.status, self.message, param=self.param, code=self.code)


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


class SimilarityRequest(_Body):
    """POST /similarity: scores between every text of `a` and every text of `b`."""

    model: str
    a: str | list[Any]
    b: str | list[Any]
