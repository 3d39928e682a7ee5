"""Deprecated location of `embedcraft.encoders.postprocess` (kept so old imports work)."""

from __future__ import annotations

import warnings
from typing import Any

from .encoders import postprocess as _moved

__all__ = list(_moved.__all__)


def __getattr__(name: str) -> Any:
    if name in _moved.__all__:
        warnings.warn(
            f"embedcraft.postprocess.{name} moved to embedcraft.encoders.postprocess.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_moved, name)
    raise AttributeError(f"module 'embedcraft.postprocess' has no attribute {name!r}")
