"""The routes: OpenAI-compatible embeddings, sparse embeddings, models, search, similarity, health.

A thin shell over the library: each route checks its input, hands texts to the model's
micro-batcher (or a search to the collection's thread) and shapes the answer. All state lives in
`app.state.served`, built when the app starts and torn down when it stops.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..encoders.postprocess import truncate_dim
from ..errors import EmbedcraftError, InputError
from ..store.filters import parse_filter
from ..vectors import similarity
from ._batcher import ModelWorker, ServerClosingError
from ._config import Limits, ServerConfig, token_unit
from ._guard import Guard
from ._schemas import (
    ApiError,
    EmbeddingRequest,
    SearchRequest,
    SimilarityRequest,
    SparseEmbeddingRequest,
    error_body,
)

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is optional, json is the fallback
    orjson = None

__all__ = ["create_app"]

log = logging.getLogger("embedcraft.server")


@dataclass
class Served:
    """What a running app serves: model workers, collections and their threads, start time."""

    config: ServerConfig
    workers: dict[str, ModelWorker] = field(default_factory=dict)
    search_threads: dict[str, ThreadPoolExecutor] = field(default_factory=dict)
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def limits(self) -> Limits:
        return self.config.limits

    def worker(self, name: str) -> ModelWorker:
        """The worker of model `name`, or 404 naming the served models."""
        worker = self.workers.get(name)
        if worker is None:
            served = ", ".join(self.workers) or "none (this server only searches collections)"
            raise ApiError(
                404,
                f"model {name!r} is not served here; served models: {served}",
                param="model",
                code="model_not_found",
            )
        return worker


def create_app(config: ServerConfig) -> FastAPI:
    """The FastAPI app serving `config`'s encoders and collections (run it with uvicorn)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        served = Served(config)
        for name, encoder in config.encoders.items():
            served.workers[name] = ModelWorker(name, encoder, config.batching)
        for name in config.collections:
            served.search_threads[name] = ThreadPoolExecutor(1, thread_name_prefix=f"search-{name}")
        app.state.served = served
        try:
            for worker in served.workers.values():
                worker.start()
            for worker in served.workers.values():
                await worker.warm_up()
            yield
        finally:
            for worker in served.workers.values():
                await worker.stop()
            for pool in served.search_threads.values():
                pool.shutdown(wait=True)

    app = FastAPI(
        title="embedcraft",
        version=__version__,
        summary="OpenAI-compatible embeddings for every embedcraft encoder, plus search.",
        lifespan=lifespan,
    )
    _add_error_handlers(app)
    _add_routes(app)
    app.add_middleware(Guard, api_key=config.api_key, max_body_bytes=config.limits.max_body_bytes)
    return app


# ---------------------------------------------------------------------- errors
def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        _dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _error(exc.status, exc.body())

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(where) or None
        if first.get("type") == "json_invalid":
            message = f"the request body is not valid JSON: {first.get('msg', '')}"
            param = None
        elif first.get("type") == "missing":
            message = f"{param}: this field is required"
        elif param is None:
            message = (
                "the request body must be a JSON object (with Content-Type: application/json): "
                f"{first.get('msg', 'invalid body')}"
            )
        else:
            message = f"{param or 'body'}: {first.get('msg', 'invalid value')}"
        more = len(errors) - 1
        if more > 0:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        return _error(422, error_body(422, message, param=param, code="invalid_value"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}: see GET /docs for the API"
        return _error(exc.status_code, error_body(exc.status_code, message), exc.headers)

    @app.exception_handler(EmbedcraftError)
    async def library_error(request: Request, exc: EmbedcraftError) -> Response:
        return _error(400, error_body(400, str(exc) or type(exc).__name__))

    @app.exception_handler(ServerClosingError)
    async def closing(request: Request, exc: ServerClosingError) -> Response:
        return _error(503, error_body(503, str(exc)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        message = f"internal server error ({type(exc).__name__}); see the server log"
        return _error(500, error_body(500, message))


# ---------------------------------------------------------------------- input checks
def _texts(value: Any, limits: Limits, param: str) -> list[str]:
    """The texts of a request field (a string or a list of strings), within the limits."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ApiError(422, f"{param} must be a string or a list of strings", param=param)
    if not items:
        raise ApiError(422, f"{param} is empty: give at least one text", param=param)
    if len(items) > limits.max_inputs:
        raise ApiError(
            422,
            f"{param} has {len(items)} texts; the limit is {limits.max_inputs} per request",
            param=param,
            code="too_many_inputs",
        )
    for i, item in enumerate(items):
        if isinstance(item, str):
            if len(item) > limits.max_chars:
                raise ApiError(
                    422,
                    f"{param}[{i}] has {len(item)} characters; the limit is {limits.max_chars}",
                    param=param,
                    code="input_too_long",
                )
            continue
        if isinstance(item, int | list) and not isinstance(item, bool):
            raise ApiError(
                422,
                f"{param}: token arrays are not supported (token ids differ between models); "
                "send the texts as strings",
                param=param,
                code="token_arrays_unsupported",
            )
        raise ApiError(
            422, f"{param}[{i}] must be a string, got {type(item).__name__}", param=param
        )
    return items


def _usage(tokens: list[int]) -> dict[str, int]:
    total = int(sum(tokens))
    return {"prompt_tokens": total, "total_tokens": total}


def _dumps(value: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(value, default=_plain).encode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json(value: Any) -> Response:
    return Response(_dumps(value), media_type="application/json")


def _served(request: Request) -> Served:
    served: Served = request.app.state.served
    return served


# ---------------------------------------------------------------------- routes
def _add_routes(app: FastAPI) -> None:
    @app.api_route(
        "/health",
        methods=["GET", "HEAD"],
        summary="Liveness, what is served, and how well requests were batched",
    )
    async def health(request: Request) -> Response:
        served = _served(request)
        batching = {
            name: {
                "requests": w.documents.requests + w.queries.requests,
                "batches": w.documents.batches + w.queries.batches,
                "texts": w.documents.texts + w.queries.texts,
                "encode_seconds": round(w.documents.busy_seconds + w.queries.busy_seconds, 6),
            }
            for name, w in served.workers.items()
        }
        return _json(
            {
                "status": "ok",
                "models": list(served.workers),
                "collections": list(served.config.collections),
                "batching": batching,
            }
        )

    @app.get("/v1/models", summary="The models served (OpenAI format, plus dim and kind)")
    async def models(request: Request) -> Response:
        served = _served(request)
        data = [_model_card(served, name) for name in served.workers]
        return _json({"object": "list", "data": data})

    @app.get("/v1/models/{model}", summary="One served model")
    async def model(model: str, request: Request) -> Response:
        served = _served(request)
        served.worker(model)
        return _json(_model_card(served, model))

    @app.post("/v1/embeddings", summary="Dense embeddings, OpenAI-compatible")
    async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
        served = _served(request)
        worker = served.worker(body.model)
        encoder = worker.encoder
        if encoder.sparse:
            raise ApiError(
                400,
                f"model {body.model!r} is sparse (one weight per vocabulary term); the OpenAI "
                "format is dense only: use POST /v1/sparse/embeddings",
                param="model",
                code="sparse_model",
            )
        texts = _texts(body.input, served.limits, "input")
        dims = body.dimensions
        if dims is not None and not 1 <= dims <= encoder.dim:
            raise ApiError(
                422,
                f"dimensions must be between 1 and {encoder.dim} for {body.model!r}, got {dims}",
                param="dimensions",
            )
        result = await worker.documents.submit(texts)
        vectors = np.asarray(result.vectors, dtype=np.float32)
        if dims is not None and dims < encoder.dim:
            vectors = truncate_dim(vectors, dims)
        if body.encoding_format == "base64":
            little = vectors.astype("<f4", copy=False)
            rows: list[Any] = [base64.b64encode(row.tobytes()).decode("ascii") for row in little]
        else:
            rows = list(np.ascontiguousarray(vectors)) if orjson else vectors.tolist()
        data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]
        return _json(
            {"object": "list", "data": data, "model": body.model, "usage": _usage(result.tokens)}
        )

    @app.post("/v1/sparse/embeddings", summary="Sparse embeddings: indices and values per text")
    async def sparse_embeddings(body: SparseEmbeddingRequest, request: Request) -> Response:
        served = _served(request)
        worker = served.worker(body.model)
        if not worker.encoder.sparse:
            raise ApiError(
                400,
                f"model {body.model!r} is dense: use POST /v1/embeddings",
                param="model",
                code="dense_model",
            )
        texts = _texts(body.input, served.limits, "input")
        batcher = worker.queries if body.query else worker.documents
        result = await batcher.submit(texts)
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
        return _json(
            {
                "object": "list",
                "data": data,
                "model": body.model,
                "dim": int(matrix.shape[1]),
                "usage": _usage(result.tokens),
            }
        )

    @app.post("/similarity", summary="Scores between every text of a and every text of b")
    async def similarity_route(body: SimilarityRequest, request: Request) -> Response:
        served = _served(request)
        worker = served.worker(body.model)
        a = _texts(body.a, served.limits, "a")
        b = _texts(body.b, served.limits, "b")
        metric = getattr(worker.encoder, "metric", "cosine")
        if metric == "dot":  # asymmetric (BM25): the a side is read as queries
            left, right = await asyncio.gather(worker.queries.submit(a), worker.documents.submit(b))
            va, vb, tokens = left.vectors, right.vectors, left.tokens + right.tokens
        else:
            both = await worker.documents.submit(a + b)
            va, vb, tokens = both.vectors[: len(a)], both.vectors[len(a) :], both.tokens
        scores = np.atleast_2d(np.asarray(similarity(va, vb, metric), dtype=np.float32))
        return _json(
            {
                "object": "similarity",
                "model": body.model,
                "metric": metric,
                "scores": scores.tolist(),
                "usage": _usage(tokens),
            }
        )

    @app.post("/search", summary="Search one of the collections the server was started with")
    async def search(body: SearchRequest, request: Request) -> Response:
        served = _served(request)
        name = _collection_name(served, body.collection)
        collection = served.config.collections[name]
        if len(body.query) > served.limits.max_chars:
            raise ApiError(
                422,
                f"query has {len(body.query)} characters; the limit is {served.limits.max_chars}",
                param="query",
                code="input_too_long",
            )
        if body.k > served.limits.max_k:
            raise ApiError(422, f"k must be at most {served.limits.max_k}", param="k")
        try:
            parse_filter(body.where)  # the library checks it again; here it names the field
        except InputError as exc:
            raise ApiError(400, str(exc), param="where", code="invalid_filter") from None

        def run() -> list[Any]:
            return collection.search(
                body.query, k=body.k, mode=body.mode, where=body.where, encoder=body.encoder,
                fusion=body.fusion, alpha=body.alpha, explain=body.explain,
            )  # fmt: skip

        loop = asyncio.get_running_loop()
        hits = await loop.run_in_executor(served.search_threads[name], run)
        return _json(
            {"object": "list", "collection": name, "data": [hit.to_dict() for hit in hits]}
        )


def _model_card(served: Served, name: str) -> dict[str, Any]:
    encoder = served.workers[name].encoder
    return {
        "id": name,
        "object": "model",
        "created": served.created,
        "owned_by": "embedcraft",
        "dim": int(encoder.dim),
        "sparse": bool(encoder.sparse),
        "kind": str(getattr(encoder, "kind", "dense")),
        "metric": str(getattr(encoder, "metric", "cosine")),
        "tokens_counted": token_unit(encoder),
        "endpoint": "/v1/sparse/embeddings" if encoder.sparse else "/v1/embeddings",
    }


def _collection_name(served: Served, asked: str | None) -> str:
    names = list(served.config.collections)
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
    if asked not in served.config.collections:
        raise ApiError(
            404,
            f"collection {asked!r} is not served here; served collections: {', '.join(names)}",
            param="collection",
            code="collection_not_found",
        )
    return asked
