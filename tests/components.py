"""Real components some tests need: PostgreSQL, Chromium, Ray.

Where one is missing or cannot start, its tests skip with the reason; under ``CI=true`` they
fail instead, so a green CI run means the real parts ran. Tests that need a component stop
through `require_component` / `import_component`, never a bare ``pytest.skip`` or
``pytest.importorskip`` (tests/test_house_rules.py checks it).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

__all__ = ["import_component", "in_ci", "require_component"]


def in_ci() -> bool:
    """True when the environment says this is a CI run (CI=true, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def require_component(name: str, reason: str) -> NoReturn:
    """Stop a test (or a module) whose component `name` is unavailable: skip, or fail in CI."""
    message = f"needs {name}: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing component fails the run)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def import_component(module: str, name: str) -> ModuleType:
    """`pytest.importorskip` for a package a component needs, failing under CI=true."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        require_component(name, f"cannot import {module} ({exc})")
