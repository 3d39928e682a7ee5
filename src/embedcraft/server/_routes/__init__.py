"""The server's routes, one router per job; `_app` includes them in `ROUTERS`' order."""

from __future__ import annotations

from fastapi import APIRouter

from . import embeddings, health, models, search, similarity

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    models.router,
    embeddings.router,
    similarity.router,
    search.router,
)
