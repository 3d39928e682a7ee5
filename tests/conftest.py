"""Shared fixtures: small corpora made here, and the path to ../shared/data when it exists."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Models built on first use (int8 MiniLM, distilled static) go to a cache private to this run,
# never into the user's ~/.cache.
os.environ.setdefault("EMBEDCRAFT_CACHE", tempfile.mkdtemp(prefix="embedcraft-test-cache-"))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CORPUS = [
    "The cat sat on the mat.",
    "Dogs and cats are popular pets.",
    "The stock market fell sharply on Monday.",
    "Investors sold shares as the market dropped.",
    "A recipe for tomato soup with fresh basil.",
    "Cook the pasta in salted boiling water.",
    "The telescope revealed rings around the planet.",
    "Astronomers discovered a new planet orbiting a distant star.",
]


@pytest.fixture
def corpus() -> list[str]:
    """Eight short documents on four topics, two each."""
    return list(CORPUS)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a skip with the reason when this machine does not have it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared benchmark data at {SHARED_DATA} (absent on this machine)")
    return SHARED_DATA
