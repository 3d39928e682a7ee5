"""Model files built once and cached: a lock between builders, and a manifest that proves a
cached file is whole (its size and SHA-256, recorded after the build).

Used by the int8-compute MiniLM build, the efficientnet-lite0 ONNX export and the distilled
static models, so every cached model is built by one process and never read half written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .._files import atomic_file

__all__ = ["build_lock", "build_once", "file_sha256", "is_built"]

_verified: dict[tuple[str, int, int], bool] = {}
"""Files whose digest was checked in this process: (path, size, mtime_ns) -> True."""
_verified_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def is_built(model: Path, manifest: Path) -> bool:
    """True when `model` exists and its SHA-256 is the one its manifest recorded at build time
    (checked once per process and file version)."""
    try:
        recorded = json.loads(manifest.read_text("utf-8"))
        stat = model.stat()
    except (OSError, ValueError):
        return False
    seen = (str(model), stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        if _verified.get(seen):
            return True
    if not isinstance(recorded, dict) or recorded.get("bytes") != stat.st_size:
        return False
    if recorded.get("sha256") != file_sha256(model):
        return False
    with _verified_lock:
        _verified[seen] = True
    return True


@contextlib.contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the file `path` between processes (fcntl), or nothing where there
    is none (Windows: atomic renames alone keep every file whole)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def build_once(
    model: Path,
    manifest: Path,
    build: Callable[[Path], dict[str, Any]],
    *,
    prune: Callable[[], None] | None = None,
) -> dict[str, Any] | None:
    """Build `model` under the folder's lock unless a whole copy is there; None when it was.

    `build(model)` writes the file atomically (a file already there is a damaged copy: say so)
    and returns the facts to record; the manifest gets
    them plus the file's size and SHA-256, and is what `is_built` checks later. `prune` runs
    under the lock after a build (to delete builds of older versions). Returns the record.
    """
    with build_lock(model.parent / ".build.lock"):
        if is_built(model, manifest):  # another process built it while we waited
            return None
        record = build(model)
        record = {**record, "bytes": model.stat().st_size, "sha256": file_sha256(model)}
        with atomic_file(manifest) as tmp:
            tmp.write_text(json.dumps(record, indent=2), "utf-8")
        if prune is not None:
            prune()
    return record
