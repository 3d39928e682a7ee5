"""POST /search over one of the collections the server was started with, in that collection's
own thread (searches of one collection never run at once)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...encoders.contract import InputKind
from ...errors import InputError
from ...store.filters import parse_filter
from ...store.images import collection_input_kind
from .._errors import ApiError
from .._responses import json_response
from .._schemas import SearchRequest
from .._state import Served, served

__all__ = ["router"]

router = APIRouter()


@router.post("/search", summary="Search one of the collections the server was started with")
async def search(body: SearchRequest, request: Request) -> Response:
    state = served(request)
    name = _collection_name(state, body.collection)
    collection = state.config.collections[name]
    kind = collection_input_kind(collection)
    if kind is not InputKind.TEXT:
        raise ApiError(
            400,
            f"collection {name!r} holds {kind.value}s: /search takes text queries; search it by "
            "image with `embedcraft search -c COLLECTION --image FILE` or the library",
            param="query",
            code="unsupported_input_kind",
        )
    if len(body.query) > state.limits.max_chars:
        raise ApiError(
            422,
            f"query has {len(body.query)} characters; the limit is {state.limits.max_chars}",
            param="query",
            code="input_too_long",
        )
    if body.k > state.limits.max_k:
        raise ApiError(422, f"k must be at most {state.limits.max_k}", param="k")
    try:
        parse_filter(body.where)  # the library checks it again; here it names the field
    except InputError as exc:
        raise ApiError(400, str(exc), param="where", code="invalid_filter") from None

    def run() -> list[Any]:
        return list(collection.search(
            body.query, k=body.k, mode=body.mode, where=body.where, encoder=body.encoder,
            fusion=body.fusion, alpha=body.alpha, explain=body.explain,
            min_score=body.min_score,
        ))  # fmt: skip

    loop = asyncio.get_running_loop()
    try:
        hits = await loop.run_in_executor(state.search_threads[name], run)
    except InputError as exc:  # e.g. a filter on a key no document has: the client's to fix
        raise ApiError(400, str(exc), param="where" if body.where else None) from None
    return json_response(
        {"object": "list", "collection": name, "data": [hit.to_dict() for hit in hits]}
    )


def _collection_name(state: Served, asked: str | None) -> str:
    """The collection a search asked for (or the only one), else 404/422 naming the served ones."""
    names = list(state.config.collections)
    if not names:
        raise ApiError(
            404,
            "this server has no collections: start it with --collection DIR",
            code="collection_not_found",
        )
    if asked is None:
        if len(names) == 1:
            return names[0]
        raise ApiError(
            422,
            f"collection is required: this server has {', '.join(names)}",
            param="collection",
        )
    if asked not in state.config.collections:
        raise ApiError(
            404,
            f"collection {asked!r} is not served here; served collections: {', '.join(names)}",
            param="collection",
            code="collection_not_found",
        )
    return asked
