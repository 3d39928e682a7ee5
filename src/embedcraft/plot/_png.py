"""A projection drawn as a PNG with matplotlib (Agg, no display): colours by label, a legend."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_file
from ..errors import InputError, missing_dependency
from ._labels import Labels, as_labels

__all__ = ["write_png"]


def _marker(n: int) -> tuple[float, float]:
    """Point area (pt^2) and opacity that keep both 100 and 1M points readable."""
    size = float(np.clip(20000.0 / max(n, 1), 0.5, 40.0))
    alpha = float(np.clip(2.0 / np.log10(max(n, 10)), 0.25, 0.9))
    return size, alpha


def write_png(
    path: str | os.PathLike[str],
    coords: np.ndarray,
    labels: Labels | Sequence[Any] | None = None,
    *,
    title: str = "",
    size_inches: float = 7.0,
    dpi: int = 110,
) -> Path:
    """Draw the 2-D points as a PNG, coloured by `labels` (a `Labels` or one value per point),
    with a legend when there is more than one label. Written atomically."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError:
        raise missing_dependency("matplotlib", "plot", "PNG plots") from None
    coords = np.asarray(coords, dtype=np.float32)
    if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] == 0:
        raise InputError(f"expected 2-D points of shape (n, 2), got {coords.shape}")
    n = coords.shape[0]
    labels = as_labels(labels, n)
    fig = Figure(figsize=(size_inches, size_inches), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    size, alpha = _marker(n)
    # shuffled drawing order, so no label sits on top of the others just by coming last
    order = np.random.default_rng(0).permutation(n)
    colours = np.array(labels.colours)[labels.codes[order]]
    ax.scatter(coords[order, 0], coords[order, 1], s=size, c=colours, alpha=alpha, linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title, fontsize=11)
    if len(labels.names) > 1:
        handles = [
            Line2D([], [], marker="o", linestyle="", color=colour, label=f"{name} ({count:,})")
            for name, count, colour in zip(labels.names, labels.counts, labels.colours, strict=True)
        ]
        ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85, markerscale=1.2)
    fig.tight_layout()
    target = Path(path)
    with atomic_file(target) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return target
