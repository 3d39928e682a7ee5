"""The encoder of a distributed encode: checked on the driver, described, and rebuilt per worker.

A catalog name travels to the workers as the name (each loads its own copy from the installed
model packages); anything else (a saved folder, an encoder object) is loaded on the driver and
shipped once through Ray's object store. The description (class, name, parameters) and the
encoder's fingerprint (`BaseEncoder.fingerprint`: parameters, learned arrays, model file bytes)
decide whether shards written earlier may be reused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..encoders.base import BaseEncoder
from ..encoders.contract import Encoder
from ..encoders.fingerprint import described
from ..errors import InputError, NotFittedError

__all__ = ["EncoderRecipe", "prepare_encoder", "set_threads"]


@dataclass
class EncoderRecipe:
    """How a worker gets the encoder: a catalog name, or the object itself (pickled by Ray)."""

    name: str | None
    obj: BaseEncoder | None
    spec: dict[str, Any]
    fingerprint: str
    sparse: bool

    def build(self) -> BaseEncoder:
        """The encoder, built where this runs (on a worker: once per actor)."""
        if self.name is not None:
            from ..catalog import load_encoder

            return load_encoder(self.name)
        if self.obj is None:
            raise InputError("an encoder recipe holds neither a catalog name nor an encoder")
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
    elif isinstance(encoder, BaseEncoder):
        obj = encoder
    else:
        raise InputError(
            f"not an encoder: {type(encoder).__name__} is not an embedcraft encoder (give a "
            "catalog name, a saved encoder folder or a BaseEncoder)"
        )
    if obj.needs_fit and not obj.is_fitted():
        raise NotFittedError(
            f"{obj.name} learns from a corpus and is not fitted: fit it once "
            f"(`embedcraft fit --encoder {obj.name} --input CORPUS --output DIR`) and pass the "
            "saved folder, so every worker encodes with the same fitted model"
        )
    return EncoderRecipe(name, None if name else obj, described(obj), obj.fingerprint(), obj.sparse)


def set_threads(encoder: BaseEncoder, threads: int) -> None:
    """Cap the compute threads of an encoder that has a `threads` setting (ONNX models)."""
    keys = [k for k in encoder.get_params(deep=True) if k == "threads" or k.endswith("__threads")]
    if keys:
        encoder.set_params(**dict.fromkeys(keys, threads))
