"""The user cache folder, for models built on first use (int8 builds, distilled static models).

`EMBEDCRAFT_CACHE` wins; else `$XDG_CACHE_HOME/embedcraft`; else `~/.cache/embedcraft`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(*parts: str) -> Path:
    """The cache folder (created), or a sub-folder of it."""
    root = os.environ.get("EMBEDCRAFT_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "embedcraft"
    folder = base.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
