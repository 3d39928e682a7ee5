"""The arguments of a search, checked, and the fusion of each side's ranked list into one:
shared by `Collection` and `PostgresCollection`."""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError
from ..search import readable_fusion_score, reciprocal_rank_fusion, weighted_fusion
from ._encoders import EncoderSlot

__all__ = ["MAX_K", "check_k", "check_search", "fetch_size", "fuse_query"]

_FETCH_FOR_FUSION = 100
"""Candidates taken from each side before a hybrid fusion (at least k)."""

MAX_K = 1 << 24
"""The largest k a search takes: results are (queries, k) arrays, so k sizes memory."""


def check_k(k: Any) -> None:
    """Refuse a k that is not a positive integer, or one too large to hold a result of."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if k > MAX_K:
        raise InputError(f"k must be at most {MAX_K:,}, got {k:,}")


def check_search(k: Any, fusion: str, alpha: float, min_score: Any = None) -> None:
    """Refuse a bad k, fusion, alpha or min_score argument of a search."""
    check_k(k)
    if fusion not in ("rrf", "weighted"):
        raise InputError(f"fusion must be 'rrf' or 'weighted', got {fusion!r}")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be between 0 and 1, got {alpha}")
    if min_score is not None and (
        isinstance(min_score, bool)
        or not isinstance(min_score, int | float)
        or not math.isfinite(min_score)
    ):
        raise InputError(f"min_score must be a finite number, got {min_score!r}")


def fetch_size(k: int, sides: list[EncoderSlot]) -> int:
    """Candidates to take from each side: k alone, more when several sides are fused."""
    return k if len(sides) == 1 else max(k, _FETCH_FOR_FUSION)


def fuse_query(
    lists: list[list[tuple[int, float]]],
    sides: list[EncoderSlot],
    k: int,
    fusion: str,
    alpha: float,
) -> list[tuple[int, float, dict[str, float]]]:
    """One query's (rowid, score, score on each side) best first, its sides' lists fused; a
    fused score is put on a 0..1 scale (`readable_fusion_score`)."""
    if len(sides) == 1:
        fused = lists[0][:k]
    else:
        if fusion == "rrf":
            fused = reciprocal_rank_fusion([[r for r, _ in lst] for lst in lists], k)
        else:
            fused = weighted_fusion(lists, [alpha, 1.0 - alpha], k)
        fused = [(r, readable_fusion_score(v, len(lists), fusion)) for r, v in fused]
    per_side = [dict(lst) for lst in lists]
    return [(r, score, _side_scores(r, sides, per_side)) for r, score in fused]


def _side_scores(
    rowid: int, sides: list[EncoderSlot], per_side: list[dict[int, float]]
) -> dict[str, float]:
    """The scores of one document on each side that ranked it."""
    return {s.name: d[rowid] for s, d in zip(sides, per_side, strict=True) if rowid in d}
