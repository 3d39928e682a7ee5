"""The error shape of the OpenAI API, and the error a route raises to send one.

Every error the server sends is ``{"error": {"message", "type", "param", "code"}}``, so OpenAI
clients raise their usual exceptions with our message. Plain Python (no FastAPI), so the input
checks that raise these errors need no web framework.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "error_body"]

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
