"""An HTTP server for every embedcraft encoder: OpenAI-compatible ``/v1/embeddings``, sparse
embeddings, search over collections and similarity, with dynamic micro-batching.

``create_app(ServerConfig(encoders={"minilm-l6": load_encoder("minilm-l6")}))`` gives a FastAPI
app; `serve` runs it with uvicorn, `BackgroundServer` runs it in a thread. FastAPI and uvicorn
are the optional extra ``serve``: ``pip install 'embedcraft[serve]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import missing_dependency
from ._config import Batching, Limits, ServerConfig, count_tokens
from ._inputs import warm_up_inputs

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ._run import BackgroundServer

__all__ = [
    "BackgroundServer",
    "Batching",
    "Limits",
    "ServerConfig",
    "count_tokens",
    "create_app",
    "serve",
    "warm_up_inputs",
]


def _require() -> None:
    """Raise MissingDependencyError naming the extra when FastAPI or uvicorn is missing."""
    for package in ("fastapi", "uvicorn"):
        try:
            __import__(package)
        except ImportError:
            raise missing_dependency(package, "serve", "the HTTP server") from None


def create_app(config: ServerConfig) -> FastAPI:
    """The FastAPI app serving `config` (see `embedcraft.server._app.create_app`)."""
    _require()
    from ._app import create_app as build

    return build(config)


def serve(
    config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000, **kwargs: Any
) -> None:
    """Serve `config` with uvicorn until interrupted; binds loopback unless told otherwise."""
    _require()
    from ._run import serve as run

    run(config, host=host, port=port, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "BackgroundServer":
        _require()
        from ._run import BackgroundServer

        return BackgroundServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
