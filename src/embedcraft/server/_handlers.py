"""The exception handlers: every failure leaves the server as one OpenAI-shaped JSON error.

Validation errors become 422 naming the field, unknown routes 404, library errors 400, a stopping
server 503, and anything unexpected a 500 whose traceback goes to the log, not the client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import EmbedcraftError
from ._batcher import ServerClosingError
from ._errors import ApiError, error_body
from ._responses import error_response

__all__ = ["add_error_handlers", "error_for"]

log = logging.getLogger("embedcraft.server")


def add_error_handlers(app: FastAPI) -> None:
    """Install the handlers on `app`."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return error_for(exc, request.method, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(422, _validation_body(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}: see GET /docs for the API"
        return error_response(exc.status_code, error_body(exc.status_code, message), exc.headers)

    @app.exception_handler(EmbedcraftError)
    async def library_error(request: Request, exc: EmbedcraftError) -> Response:
        return error_for(exc, request.method, request.url.path)

    @app.exception_handler(ServerClosingError)
    async def closing(request: Request, exc: ServerClosingError) -> Response:
        return error_for(exc, request.method, request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return error_for(exc, request.method, request.url.path)


def error_for(exc: Exception, method: str, path: str) -> Response:
    """The response to an exception a route raised (not a validation or routing error): its
    ApiError, 400 for a library error, 503 when stopping, else 500 (the traceback logged)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.body())
    if isinstance(exc, EmbedcraftError):
        return error_response(400, error_body(400, str(exc) or type(exc).__name__))
    if isinstance(exc, ServerClosingError):
        return error_response(503, error_body(503, str(exc)))
    log.error("unexpected error on %s %s", method, path, exc_info=exc)
    message = f"internal server error ({type(exc).__name__}); see the server log"
    return error_response(500, error_body(500, message))


def _validation_body(exc: RequestValidationError) -> dict[str, Any]:
    """The 422 body of a request pydantic refused: its first problem, and how many more."""
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
    return error_body(422, message, param=param, code="invalid_value")
