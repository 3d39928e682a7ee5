"""GET /v1/models and /v1/models/{model}: the served models in the OpenAI format, plus what each
encoder declares (width, sparse or dense, kind, metric, what its token counts count)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .._responses import json_response
from .._state import Served, served

__all__ = ["model_card", "router"]

router = APIRouter()


@router.get("/v1/models", summary="The models served (OpenAI format, plus dim and kind)")
async def models(request: Request) -> Response:
    state = served(request)
    data = [model_card(state, name) for name in state.workers]
    return json_response({"object": "list", "data": data})


@router.get("/v1/models/{model}", summary="One served model")
async def model(model: str, request: Request) -> Response:
    state = served(request)
    state.worker(model)
    return json_response(model_card(state, model))


def model_card(state: Served, name: str) -> dict[str, Any]:
    """The OpenAI model object of served model `name`, with the encoder's declared facts."""
    encoder = state.workers[name].encoder
    return {
        "id": name,
        "object": "model",
        "created": state.created,
        "owned_by": "embedcraft",
        "dim": int(encoder.dim),
        "sparse": bool(encoder.sparse),
        "kind": str(encoder.kind),
        "metric": str(encoder.metric),
        "tokens_counted": encoder.token_unit,
        "endpoint": "/v1/sparse/embeddings" if encoder.sparse else "/v1/embeddings",
    }
