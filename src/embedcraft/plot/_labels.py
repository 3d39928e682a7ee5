"""Label values turned into small integer codes and colours, shared by the PNG and the page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["MISSING", "OTHER", "PALETTE", "Labels", "as_labels", "encode_labels"]

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d",
    "#31a354", "#756bb1", "#636363", "#fd8d3c",
)  # fmt: skip
"""Colours of the first 20 labels (most frequent first); the rest share OTHER's grey."""
OTHER = "(other)"
MISSING = "(none)"
_GREY = "#b0b0b0"


@dataclass(frozen=True)
class Labels:
    """Each point's label code (uint16) and, per code, its name, count and colour."""

    codes: np.ndarray
    names: list[str]
    counts: list[int]
    colours: list[str]


def _text(value: Any) -> str:
    if value is None or value == "":
        return MISSING
    return str(value)


def encode_labels(values: Sequence[Any] | None, n: int) -> Labels:
    """Codes for `values` (one per point; None means one unlabelled group), most frequent first.

    The 20 most frequent labels get their own colour; rarer ones are grouped as OTHER.
    """
    if values is None:
        return Labels(np.zeros(n, dtype=np.uint16), ["all"], [n], [PALETTE[0]])
    texts = [_text(v) for v in values]
    counted = Counter(texts).most_common()
    if len(counted) > len(PALETTE):
        kept = counted[: len(PALETTE) - 1]
        rest = sum(c for _, c in counted[len(PALETTE) - 1 :])
        counted = [*kept, (OTHER, rest)]
    names = [name for name, _ in counted]
    code_of = {name: i for i, name in enumerate(names)}
    other = code_of.get(OTHER, 0)
    codes = np.fromiter((code_of.get(t, other) for t in texts), dtype=np.uint16, count=len(texts))
    colours = [_GREY if name in (OTHER, MISSING) else PALETTE[i] for i, name in enumerate(names)]
    return Labels(codes, names, [c for _, c in counted], colours)


def as_labels(labels: Labels | Sequence[Any] | None, n: int) -> Labels:
    """`labels` as a `Labels` for n points: coded here when given as one value per point."""
    if isinstance(labels, Labels):
        found = labels
    else:
        if labels is not None and len(labels) != n:
            raise InputError(f"{n} points but {len(labels)} labels")
        found = encode_labels(labels, n)
    if found.codes.shape != (n,):
        raise InputError(f"{n} points but {found.codes.shape[0]} label codes")
    return found
