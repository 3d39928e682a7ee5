"""The standalone HTML explorer: one file, opened from disk with no server and nothing fetched.

The page template, script and style (explorer.html/.js/.css beside this module) are inlined,
and the data is embedded as base64 typed arrays (float32 x/y, uint16 label codes, int32
neighbour lists) plus the texts as JSON, cut to `max_text` characters for hovering. For
images, `thumbnails` (small JPEG data URLs, see `make_thumbnails`) are embedded too: hovering
a point shows its picture, and the neighbour list shows each neighbour's.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_file
from ..errors import InputError
from ._labels import Labels, as_labels

__all__ = ["write_explorer"]

_SLOT = re.compile(r"__(CSS|JS|TITLE|DATA)__")


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _asset(name: str) -> str:
    return resources.files("embedcraft.plot").joinpath(name).read_text(encoding="utf-8")


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def write_explorer(
    path: str | os.PathLike[str],
    coords: np.ndarray,
    texts: Sequence[str],
    labels: Labels | Sequence[Any] | None,
    neighbours: np.ndarray,
    *,
    ids: Sequence[str] | None = None,
    title: str = "embedcraft explorer",
    label_column: str | None = None,
    max_text: int = 280,
    thumbnails: Sequence[str | None] | None = None,
) -> Path:
    """Write the explorer page for these points to `path` (atomically) and return the path.

    `labels` is a `Labels`, one value per point, or None; `neighbours` is (n, k) indices;
    `thumbnails` is one `data:image/...;base64,` URL (or None) per point.
    """
    coords = np.asarray(coords, dtype=np.float32)
    n = len(texts)
    if coords.shape != (n, 2):
        raise InputError(f"{n} texts but points of shape {coords.shape}; expected ({n}, 2)")
    if n == 0:
        raise InputError("no points to show (the input is empty)")
    neighbours = np.asarray(neighbours, dtype=np.int32).reshape(n, -1)
    labels = as_labels(labels, n)
    if neighbours.size and (neighbours.min() < 0 or neighbours.max() >= n):
        raise InputError("neighbour indices must lie in 0..n-1")
    if ids is not None and len(ids) != n:
        raise InputError(f"{n} texts but {len(ids)} ids")
    if thumbnails is not None:
        if len(thumbnails) != n:
            raise InputError(f"{n} texts but {len(thumbnails)} thumbnails")
        if any(t is not None and not str(t).startswith("data:image/") for t in thumbnails):
            raise InputError("thumbnails must be data:image/... URLs (or None)")
    data: dict[str, Any] = {
        "n": n,
        "k": int(neighbours.shape[1]),
        "xy": _b64(coords, "<f4"),
        "codes": _b64(labels.codes, "<u2"),
        "neighbours": _b64(neighbours, "<i4"),
        "labels": {"names": labels.names, "counts": labels.counts, "colours": labels.colours},
        "labelColumn": label_column,
        "ids": [str(i) for i in ids] if ids is not None else [str(i + 1) for i in range(n)],
        "texts": [_cut(t, max_text) for t in texts],
    }
    if thumbnails is not None:
        data["images"] = list(thumbnails)
    # "<" escaped everywhere, so no text can close the script element that holds the data
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    parts = {
        "CSS": _asset("explorer.css"),
        "JS": _asset("explorer.js"),
        "TITLE": html.escape(title),
        "DATA": payload,
    }
    page = _SLOT.sub(lambda m: parts[m.group(1)], _asset("explorer.html"))
    target = Path(path)
    with atomic_file(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target
