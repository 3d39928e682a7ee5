"""GET/HEAD /health: liveness, what is served, how well requests were batched, and what the
embedding cache saved (hits, misses, hit rate, seconds saved) (no key)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .._responses import json_response
from .._state import served

__all__ = ["router"]

router = APIRouter()


@router.api_route(
    "/health",
    methods=["GET", "HEAD"],
    summary="Liveness, what is served, and how well requests were batched",
)
async def health(request: Request) -> Response:
    state = served(request)
    batching = {
        name: {
            "requests": w.documents.requests + w.queries.requests,
            "batches": w.documents.batches + w.queries.batches,
            "texts": w.documents.texts + w.queries.texts,
            "encode_seconds": round(w.documents.busy_seconds + w.queries.busy_seconds, 6),
        }
        for name, w in state.workers.items()
    }
    return json_response(
        {
            "status": "ok",
            "models": list(state.workers),
            "collections": list(state.config.collections),
            "batching": batching,
            "cache": None if state.config.cache is None else state.config.cache.info(),
        }
    )
