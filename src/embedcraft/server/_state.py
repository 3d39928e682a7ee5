"""What a running app serves: the model workers, the collections' search threads, the start time.

Built when the app starts (see `_app`), kept in `app.state.served`, read by every route.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fastapi import Request

from ._batcher import ModelWorker
from ._config import Limits, ServerConfig
from ._errors import ApiError

__all__ = ["Served", "served"]


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


def served(request: Request) -> Served:
    """The `Served` of the app answering `request`."""
    state: Served = request.app.state.served
    return state
