"""The app: OpenAI-compatible embeddings, sparse embeddings, models, search, similarity, health.

A thin shell over the library. This module only assembles it: the state built at start-up and torn
down at shutdown (`_state.Served`, in `app.state.served`), the error handlers (`_handlers`), one
router per job (`_routes`), and the auth and body-size gate (`_guard`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ._batcher import ModelWorker
from ._config import ServerConfig
from ._guard import Guard
from ._handlers import add_error_handlers
from ._routes import ROUTERS
from ._routes.embeddings import FastEmbeddings
from ._state import Served

__all__ = ["create_app"]


def create_app(config: ServerConfig) -> FastAPI:
    """The FastAPI app serving `config`'s encoders and collections (run it with uvicorn)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        served = Served(config)
        for name, encoder in config.encoders.items():
            served.workers[name] = ModelWorker(name, encoder, config.batching, config.cache)
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
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(FastEmbeddings)  # behind the guard: keys and size limits come first
    app.add_middleware(Guard, api_key=config.api_key, max_body_bytes=config.limits.max_body_bytes)
    return app
