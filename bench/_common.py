"""Shared helpers of the benchmarks: machine facts, timing, and the shared data path."""

from __future__ import annotations

import gzip
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def machine_report() -> str:
    """Cores, Python, numpy and the BLAS in use: printed at the top of every benchmark."""
    import numpy as np

    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            i = infos[0]
            blas = f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
    except ImportError:
        pass
    return (
        f"machine: {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, BLAS {blas}"
    )


def best_of(repeat: int, func: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of `repeat` runs of `func` (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


def imdb_texts(limit: int | None = None) -> list[str]:
    """IMDB review texts from ../shared/data (the <br /> tags replaced by spaces)."""
    path = SHARED_DATA / "imdb_reviews" / "imdb.jsonl.gz"
    if not path.is_file():
        raise SystemExit(f"this benchmark needs {path}")
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            texts.append(json.loads(line)["text"].replace("<br />", " "))
            if limit and len(texts) >= limit:
                break
    return texts
