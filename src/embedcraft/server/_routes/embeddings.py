"""POST /v1/embeddings (dense, OpenAI-compatible) and POST /v1/sparse/embeddings (indices and
values per input): each reads the inputs its model's input kind needs and submits them to the
model's micro-batcher."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import scipy.sparse as sp
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...encoders.postprocess import truncate_dim
from .._errors import ApiError
from .._guard import ASGIApp, Receive, Scope, Send, read_body
from .._handlers import error_for
from .._inputs import read_inputs
from .._responses import json_response, json_rows, loads, usage
from .._schemas import EmbeddingRequest, SparseEmbeddingRequest
from .._state import Served, served

__all__ = ["FastEmbeddings", "embed", "plain_fields", "router"]

router = APIRouter()


@router.post("/v1/embeddings", summary="Dense embeddings, OpenAI-compatible")
async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
    return await embed(
        served(request), body.model, body.input, body.encoding_format, body.dimensions
    )


async def embed(
    state: Served, model: str, given: Any, encoding_format: str, dims: int | None
) -> Response:
    """The response to a /v1/embeddings request whose fields have been checked (ApiError for
    what the schema cannot check: an unknown or sparse model, bad inputs, bad dimensions)."""
    worker = state.worker(model)
    encoder = worker.encoder
    if encoder.sparse:
        raise ApiError(
            400,
            f"model {model!r} is sparse (one weight per vocabulary term); the OpenAI "
            "format is dense only: use POST /v1/sparse/embeddings",
            param="model",
            code="sparse_model",
        )
    inputs = read_inputs(encoder, given, state.limits, "input")
    if dims is not None and not 1 <= dims <= encoder.dim:
        raise ApiError(
            422,
            f"dimensions must be between 1 and {encoder.dim} for {model!r}, got {dims}",
            param="dimensions",
        )
    result = await worker.documents.submit(inputs)
    vectors = np.asarray(result.vectors, dtype=np.float32)
    if dims is not None and dims < encoder.dim:
        vectors = truncate_dim(vectors, dims)
    if encoding_format == "base64":
        little = vectors.astype("<f4", copy=False)
        rows: list[Any] = [base64.b64encode(row.tobytes()).decode("ascii") for row in little]
    else:
        rows = json_rows(vectors)
    data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]
    return json_response(
        {"object": "list", "data": data, "model": model, "usage": usage(result.tokens)}
    )


_FORMATS = ("float", "base64")


def plain_fields(body: bytes) -> tuple[str, Any, str, int | None] | None:
    """(model, input, encoding_format, dimensions) of a /v1/embeddings body that `EmbeddingRequest`
    would take as it is: a JSON object whose fields have exactly the types it asks for. None for
    anything else, which the route validates (and answers with the same errors as ever)."""
    try:
        fields = loads(body)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    model, given = fields.get("model"), fields.get("input")
    encoding_format = fields.get("encoding_format", "float")
    dims = fields.get("dimensions")
    if (
        type(model) is not str
        or not isinstance(given, str | list)
        or encoding_format not in _FORMATS
        or not (dims is None or type(dims) is int)
    ):
        return None
    return model, given, encoding_format, dims


class FastEmbeddings:
    """POST /v1/embeddings without FastAPI's routing, dependency solving and validation layers:
    a plain JSON body goes straight to `embed` (~0.3 ms of event-loop CPU less per request, on
    cores the model needs); anything else goes on to the route as before. Answers and errors are
    the route's own (`embed`, `error_for`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != "/v1/embeddings"
            or not _json_content(scope)
        ):
            await self.app(scope, receive, send)
            return
        body, receive = await read_body(receive)
        if body is None:  # the client went away
            return
        fields = plain_fields(body)
        if fields is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await embed(scope["app"].state.served, *fields)
        except Exception as exc:
            response = error_for(exc, "POST", scope["path"])
        await response(scope, receive, send)


def _json_content(scope: Scope) -> bool:
    """Whether the request says its body is JSON (or says nothing), as FastAPI reads bodies."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return bool(
                kind == b"application/json"
                or (kind.startswith(b"application/") and kind.endswith(b"+json"))
            )
    return True


@router.post("/v1/sparse/embeddings", summary="Sparse embeddings: indices and values per text")
async def sparse_embeddings(body: SparseEmbeddingRequest, request: Request) -> Response:
    state = served(request)
    worker = state.worker(body.model)
    if not worker.encoder.sparse:
        raise ApiError(
            400,
            f"model {body.model!r} is dense: use POST /v1/embeddings",
            param="model",
            code="dense_model",
        )
    inputs = read_inputs(worker.encoder, body.input, state.limits, "input")
    batcher = worker.queries if body.query else worker.documents
    result = await batcher.submit(inputs)
    matrix = sp.csr_matrix(result.vectors, dtype=np.float32)
    matrix.sort_indices()
    data = []
    for i in range(matrix.shape[0]):
        lo, hi = matrix.indptr[i], matrix.indptr[i + 1]
        data.append(
            {
                "object": "sparse_embedding",
                "index": i,
                "indices": matrix.indices[lo:hi].astype(np.int64).tolist(),
                "values": matrix.data[lo:hi].tolist(),
            }
        )
    return json_response(
        {
            "object": "list",
            "data": data,
            "model": body.model,
            "dim": int(matrix.shape[1]),
            "usage": usage(result.tokens),
        }
    )
