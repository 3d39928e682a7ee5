"""Near duplicates: groups of items whose vectors lie within a cosine threshold of each other.

Two items are near duplicates when the cosine of their vectors is at least `threshold`; a group
is a connected set of such pairs (an image, its resized copy and its recompressed copy form one
group even if the two copies fall just under the threshold between themselves). Similarities
are computed block by block, so memory stays at `block` x n floats whatever the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ._interface import VectorCollection

__all__ = ["DuplicateGroup", "collection_near_duplicates", "near_duplicates"]

_BLOCK = 1024


@dataclass(frozen=True)
class DuplicateGroup:
    """One group of near duplicates: the ids (the first in input order leads) and each one's
    cosine similarity to the first (1.0 for the first itself)."""

    ids: list[str]
    similarities: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ids": self.ids,
            "similarities": [round(s, 6) for s in self.similarities],
        }


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def near_duplicates(
    vectors: Any, ids: Sequence[str], threshold: float = 0.95, *, block: int = _BLOCK
) -> list[DuplicateGroup]:
    """Groups (two or more items) whose vectors are linked by cosine >= `threshold`.

    `vectors` is a dense (n, dim) array (rows need not be unit length; all-zero rows, such as
    those of unreadable inputs, are never anyone's duplicate). Groups come in the order of their
    first item; inside a group, items keep the input order.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise InputError(f"threshold must be a number, got {threshold!r}")
    if not -1.0 <= float(threshold) <= 1.0:
        raise InputError(f"threshold must be between -1 and 1 (a cosine), got {threshold}")
    matrix = np.array(vectors, dtype=np.float32, ndmin=2)
    if matrix.ndim != 2:
        raise InputError(f"vectors must be a 2-D array, got shape {matrix.shape}")
    if matrix.shape[0] != len(ids):
        raise InputError(f"{matrix.shape[0]} vectors but {len(ids)} ids")
    if not np.isfinite(matrix).all():
        raise InputError("vectors hold NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1)
    live = norms > 0
    matrix[live] /= norms[live, None]
    n = matrix.shape[0]
    parent = list(range(n))
    for start in range(0, n, block):
        stop = min(start + block, n)
        scores = matrix[start:stop] @ matrix.T
        rows, cols = np.nonzero(scores >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if c <= i or not (live[i] and live[c]):
                continue  # each pair once; a zero vector is nobody's duplicate
            a, b = _find(parent, i), _find(parent, c)
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(_find(parent, i), []).append(i)
    groups = []
    for root in sorted(members):
        items = members[root]
        if len(items) < 2:
            continue
        lead = matrix[items[0]]
        sims = [1.0] + [float(matrix[j] @ lead) for j in items[1:]]
        groups.append(DuplicateGroup([ids[j] for j in items], sims))
    return groups


def collection_near_duplicates(
    collection: VectorCollection, threshold: float = 0.95, *, encoder: str | None = None
) -> list[DuplicateGroup]:
    """Groups of near duplicates among a collection's documents, by the stored vectors of
    `encoder` (default: its first dense encoder)."""
    stored = collection.export(encoder)
    if not isinstance(stored.vectors, np.ndarray):
        raise InputError(
            f"encoder {stored.encoder!r} is sparse: near duplicates need dense vectors"
        )
    return near_duplicates(stored.vectors, stored.ids, threshold)
