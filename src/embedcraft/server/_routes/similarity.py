"""POST /similarity: scores between every input of `a` and every input of `b`, compared with the
model's declared metric (for a "dot" model such as BM25, `a` is read as queries)."""

from __future__ import annotations

import asyncio

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...vectors import similarity
from .._inputs import read_inputs
from .._responses import json_response, usage
from .._schemas import SimilarityRequest
from .._state import served

__all__ = ["router"]

router = APIRouter()


@router.post("/similarity", summary="Scores between every text of a and every text of b")
async def similarity_route(body: SimilarityRequest, request: Request) -> Response:
    state = served(request)
    worker = state.worker(body.model)
    a = read_inputs(worker.encoder, body.a, state.limits, "a")
    b = read_inputs(worker.encoder, body.b, state.limits, "b")
    metric = worker.encoder.metric
    if metric == "dot":  # asymmetric (BM25): the a side is read as queries
        left, right = await asyncio.gather(worker.queries.submit(a), worker.documents.submit(b))
        va, vb, tokens = left.vectors, right.vectors, left.tokens + right.tokens
    else:
        both = await worker.documents.submit(a + b)
        va, vb, tokens = both.vectors[: len(a)], both.vectors[len(a) :], both.tokens
    scores = np.atleast_2d(np.asarray(similarity(va, vb, metric), dtype=np.float32))
    return json_response(
        {
            "object": "similarity",
            "model": body.model,
            "metric": metric,
            "scores": scores.tolist(),
            "usage": usage(tokens),
        }
    )
