"""Deprecation aliases for moved modules: an old module path keeps resolving its public names,
with a DeprecationWarning naming the new home, so callers can move at their own pace."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable
from typing import Any


def moved(old: str, new: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `old`: each of `names` comes from `new`, with a warning.

    The warning fires when a name is looked up (not when `old` is imported) and points at the
    caller's line; any other name is an AttributeError that says where the module went.
    """
    known = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in known:
            raise AttributeError(f"module {old!r} has no attribute {name!r} (it moved to {new})")
        warnings.warn(
            f"{old} is deprecated: import {name} from {new}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(new), name)

    return __getattr__
