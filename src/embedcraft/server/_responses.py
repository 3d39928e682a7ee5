"""JSON responses: fast serialization (orjson when installed), error responses, the usage block."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np
from fastapi.responses import Response

try:
    import orjson as _orjson

    orjson: ModuleType | None = _orjson
except ImportError:  # pragma: no cover - orjson is optional, json is the fallback
    orjson = None

__all__ = ["dumps", "error_response", "json_response", "json_rows", "loads", "usage"]


def dumps(value: Any) -> bytes:
    """`value` as JSON bytes; numpy arrays and scalars are written as lists and numbers."""
    if orjson is not None:
        data: bytes = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
        return data
    return json.dumps(value, default=_plain).encode("utf-8")


def loads(data: bytes) -> Any:
    """JSON bytes as Python values (orjson when installed); ValueError when not valid JSON."""
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_rows(vectors: np.ndarray) -> list[Any]:
    """The rows of a float32 matrix in the form `dumps` writes fastest (arrays for orjson)."""
    return list(np.ascontiguousarray(vectors)) if orjson else vectors.tolist()


def json_response(value: Any) -> Response:
    """A 200 application/json response."""
    return Response(dumps(value), media_type="application/json")


def error_response(
    status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    """An error response with `status` and an OpenAI-shaped `body`."""
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


def usage(tokens: list[int]) -> dict[str, int]:
    """The OpenAI `usage` block of a response whose inputs counted `tokens`."""
    total = int(sum(tokens))
    return {"prompt_tokens": total, "total_tokens": total}
