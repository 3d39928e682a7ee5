"""The encoder of a distributed encode: checked on the driver, described, and rebuilt per worker.

A catalog name travels to the workers as the name (each loads its own copy from the installed
model packages); anything else (a saved folder, an encoder object) is loaded on the driver and
shipped once through Ray's object store. The spec (class, name, parameters) and a fingerprint of
the learned state decide whether shards written earlier may be reused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..encoders.base import Encoder, _param_to_json
from ..errors import InputError, NotFittedError

__all__ = ["EncoderRecipe", "prepare_encoder", "set_threads"]


@dataclass
class EncoderRecipe:
    """How a worker gets the encoder: a catalog name, or the object itself (pickled by Ray)."""

    name: str | None
    obj: Any
    spec: dict[str, Any]
    fingerprint: str
    sparse: bool

    def build(self) -> Any:
        """The encoder, built where this runs (on a worker: once per actor)."""
        if self.name is not None:
            from ..catalog import load_encoder

            return load_encoder(self.name)
        return self.obj


def prepare_encoder(encoder: str | os.PathLike[str] | Encoder) -> EncoderRecipe:
    """Resolve, check and describe `encoder`; refuse one that still needs fitting."""
    from ..catalog import list_encoders, load_encoder

    name: str | None = None
    if isinstance(encoder, str | os.PathLike):
        text = os.fspath(encoder)
        obj = load_encoder(text)
        if text in {e.name for e in list_encoders()} and not os.path.isdir(text):
            name = text
    else:
        obj = encoder
        if not hasattr(obj, "encode"):
            raise InputError(f"not an encoder: {type(obj).__name__} has no encode method")
    needs_fit = bool(getattr(obj, "needs_fit", False))
    fitted = getattr(obj, "_is_fitted", lambda: True)()
    if needs_fit and not fitted:
        raise NotFittedError(
            f"{obj.name} learns from a corpus and is not fitted: fit it once "
            f"(`embedcraft fit --encoder {obj.name} --input CORPUS --output DIR`) and pass the "
            "saved folder, so every worker encodes with the same fitted model"
        )
    spec = describe(obj)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
    _hash_state(obj, digest)
    return EncoderRecipe(name, None if name else obj, spec, digest.hexdigest()[:32],
                         bool(getattr(obj, "sparse", False)))  # fmt: skip


def describe(encoder: Any) -> dict[str, Any]:
    """Class, name and parameters (wrapped encoders described in turn), JSON-ready."""
    spec: dict[str, Any] = {"type": type(encoder).__name__, "name": getattr(encoder, "name", "")}
    if hasattr(encoder, "get_params"):
        params = {}
        for key, value in encoder.get_params(deep=False).items():
            params[key] = describe(value) if hasattr(value, "encode") else _param_to_json(value)
        spec["params"] = {k: v for k, v in params.items() if k != "threads"}
    return spec


def _hash_state(encoder: Any, digest: Any) -> None:
    """Feed the learned state (arrays and values) of `encoder` and wrapped ones into `digest`."""
    if hasattr(encoder, "get_params"):
        for value in encoder.get_params(deep=False).values():
            if hasattr(value, "encode"):
                _hash_state(value, digest)
    get_state = getattr(encoder, "_get_state", None)
    if get_state is None:
        return
    try:
        state, arrays = get_state()
    except (AttributeError, NotFittedError):
        return  # nothing learned
    digest.update(json.dumps(state, sort_keys=True, default=str).encode())
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype}:{array.shape}".encode())
        digest.update(array.view(np.uint8).ravel() if array.dtype != object else b"")


def set_threads(encoder: Any, threads: int) -> None:
    """Cap the compute threads of an encoder that has a `threads` setting (ONNX models)."""
    if not hasattr(encoder, "get_params"):
        return
    keys = [k for k in encoder.get_params(deep=True) if k == "threads" or k.endswith("__threads")]
    if keys:
        encoder.set_params(**dict.fromkeys(keys, threads))
