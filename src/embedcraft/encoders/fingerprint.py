"""An encoder's fingerprint: one digest of everything that decides its vectors.

Two encoders with the same fingerprint give the same vectors for the same input: the class, the
parameters that shape vectors (not `threads`), the learned state and arrays, the bytes of the
model files it runs (an ONNX graph, a tokenizer) and, for ONNX models, the graph rewrites
onnxruntime is told to leave off (they change the rounding), so a rebuilt or replaced model file
under the same name gets another fingerprint. The embedding cache keys its entries on it, and a
distributed run decides by it whether shards written earlier may be reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .base import BaseEncoder

__all__ = ["NOT_VECTORS", "described", "encoder_fingerprint", "file_digest"]

NOT_VECTORS = ("threads",)
"""Parameters that change how fast an encoder runs, never its vectors: left out of the digest."""

_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}
_FILE_LOCK = threading.Lock()


def file_digest(path: str | os.PathLike[str]) -> str:
    """The BLAKE2b digest of a file's bytes, computed once per process for each (path, size,
    modification time)."""
    file = Path(path)
    stat = file.stat()
    key = (os.fspath(file.resolve()), stat.st_size, stat.st_mtime_ns)
    with _FILE_LOCK:
        known = _FILE_DIGESTS.get(key)
    if known is not None:
        return known
    digest = hashlib.blake2b(digest_size=16)
    with open(file, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    value = digest.hexdigest()
    with _FILE_LOCK:
        _FILE_DIGESTS[key] = value
    return value


def encoder_fingerprint(encoder: BaseEncoder) -> str:
    """The hex digest of what decides `encoder`'s vectors (see the module docstring)."""
    digest = hashlib.sha256()
    _feed(encoder, digest)
    return digest.hexdigest()[:32]


def described(encoder: BaseEncoder) -> dict[str, Any]:
    """The class, name and vector-shaping parameters of `encoder` (wrapped encoders described
    the same way), JSON-ready."""
    full, _ = encoder.to_spec()
    return _description(encoder, full)


def _description(encoder: BaseEncoder, full: dict[str, Any]) -> dict[str, Any]:
    from .base import BaseEncoder

    params: dict[str, Any] = {}
    for key, value in full["params"].items():
        if key in NOT_VECTORS:
            continue
        params[key] = described(value) if isinstance(value, BaseEncoder) else value
    return {"type": full["type"], "name": full["name"], "params": params}


def _feed(encoder: BaseEncoder, digest: Any) -> None:
    from .base import BaseEncoder

    full, arrays = encoder.to_spec()
    digest.update(json.dumps(_description(encoder, full), sort_keys=True, default=str).encode())
    digest.update(json.dumps(full["state"], sort_keys=True, default=str).encode())
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype}:{array.shape}".encode())
        digest.update(array.view(np.uint8).ravel() if array.dtype != object else b"")
    files = encoder.model_files()
    for file in files:
        digest.update(f"file:{file_digest(file)}".encode())
    if any(Path(f).suffix == ".onnx" for f in files):  # how onnxruntime runs it: its rounding
        from ._onnx import UNUSED_FUSIONS

        digest.update(f"onnxruntime without {','.join(UNUSED_FUSIONS)}".encode())
    for value in encoder.get_params(deep=False).values():
        if isinstance(value, BaseEncoder):
            _feed(value, digest)
