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
from .._inputs import read_inputs
from .._responses import json_response, json_rows, usage
from .._schemas import EmbeddingRequest, SparseEmbeddingRequest
from .._state import served

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/embeddings", summary="Dense embeddings, OpenAI-compatible")
async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
    state = served(request)
    worker = state.worker(body.model)
    encoder = worker.encoder
    if encoder.sparse:
        raise ApiError(
            400,
            f"model {body.model!r} is sparse (one weight per vocabulary term); the OpenAI "
            "format is dense only: use POST /v1/sparse/embeddings",
            param="model",
            code="sparse_model",
        )
    inputs = read_inputs(encoder, body.input, state.limits, "input")
    dims = body.dimensions
    if dims is not None and not 1 <= dims <= encoder.dim:
        raise ApiError(
            422,
            f"dimensions must be between 1 and {encoder.dim} for {body.model!r}, got {dims}",
            param="dimensions",
        )
    result = await worker.documents.submit(inputs)
    vectors = np.asarray(result.vectors, dtype=np.float32)
    if dims is not None and dims < encoder.dim:
        vectors = truncate_dim(vectors, dims)
    if body.encoding_format == "base64":
        little = vectors.astype("<f4", copy=False)
        rows: list[Any] = [base64.b64encode(row.tobytes()).decode("ascii") for row in little]
    else:
        rows = json_rows(vectors)
    data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]
    return json_response(
        {"object": "list", "data": data, "model": body.model, "usage": usage(result.tokens)}
    )


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
