"""Search results, exact in-memory search, and the fusion of several rankings into one.

`MemoryIndex` encodes documents once and searches them exactly; persisted collections
(`embedcraft.store`) return the same `Hit`s and fuse dense and sparse rankings with
`reciprocal_rank_fusion` or `weighted_fusion`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .encoders.base import Encoder, Vectors, as_texts, fit_if_needed
from .errors import InputError
from .vectors import check_finite, top_k

__all__ = [
    "Hit",
    "MemoryIndex",
    "readable_fusion_score",
    "reciprocal_rank_fusion",
    "weighted_fusion",
]


@dataclass(frozen=True)
class Hit:
    """One search result: document id, score (higher is better), text, rank (1-based).

    Collections add the document's metadata, why it matched when asked (`explanation`), and
    each side's own score: `dense_score` (cosine) and `sparse_score` (BM25/TF-IDF), None where
    that side did not return the document or did not run. A hybrid hit's `score` is the fused
    score on a 0..1 scale, 1 for the best possible (see `readable_fusion_score`).
    """

    id: str
    score: float
    text: str
    rank: int
    metadata: dict[str, Any] = field(default_factory=dict)
    explanation: dict[str, Any] | None = None
    dense_score: float | None = None
    sparse_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class MemoryIndex:
    """Documents encoded once by one encoder, searched exactly with the encoder's own metric."""

    def __init__(self, encoder: Encoder, ids: list[str], texts: list[str], vectors: Vectors):
        if len(ids) != len(texts) or vectors.shape[0] != len(texts):
            raise InputError(f"{len(ids)} ids, {len(texts)} texts, {vectors.shape[0]} vectors")
        check_finite(vectors, "document vectors")  # once here, not on every search
        self.encoder = encoder
        self.ids = ids
        self.texts = texts
        self.vectors = vectors
        self.fitted_here = False
        """True when building the index fitted the encoder on these documents."""

    @classmethod
    def from_texts(
        cls,
        encoder: Encoder,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        *,
        progress: bool = False,
    ) -> MemoryIndex:
        """Encode `texts` (fitting the encoder on them first when it needs it and is not fitted)."""
        docs = as_texts(texts)
        doc_ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(docs))]
        fitted = fit_if_needed(encoder, docs)
        index = cls(encoder, doc_ids, docs, encoder.encode(docs, progress=progress))
        index.fitted_here = fitted
        return index

    def __len__(self) -> int:
        return len(self.texts)

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The k best documents for one query."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        """The k best documents for each query, in query order."""
        items = as_texts(queries)
        encode_queries = self.encoder.encode_queries
        query_vectors = encode_queries(items)
        metric = self.encoder.metric
        best = top_k(query_vectors, self.vectors, k, metric, corpus_checked=True)
        return [
            [
                Hit(self.ids[i], float(s), self.texts[i], rank)
                for rank, (i, s) in enumerate(zip(row_i, row_s, strict=True), start=1)
            ]
            for row_i, row_s in zip(best.indices, best.scores, strict=True)
        ]


RRF_K = 60
"""The constant of reciprocal rank fusion (Cormack et al., 2009): score = sum 1 / (RRF_K + rank)."""


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Any]], k: int | None = None, constant: int = RRF_K
) -> list[tuple[Any, float]]:
    """Fuse ranked lists of keys (best first) by summing 1 / (constant + rank) per key.

    Returns (key, fused score) best first, ties broken by first appearance; the top `k` if given.
    """
    fused: dict[Any, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (constant + rank)
    order = sorted(fused.items(), key=lambda item: -item[1])
    return order if k is None else order[:k]


def readable_fusion_score(score: float, lists: int, fusion: str, constant: int = RRF_K) -> float:
    """A fused score on a 0..1 scale, 1 for the best possible: the raw reciprocal rank score
    (0.0328 for a document first in two lists) means nothing to a reader.

    Reciprocal rank fusion is divided by its maximum, `lists / (constant + 1)` (first in every
    list), so 0.5 means first in one list of two; a weighted blend already lies in 0..1 when the
    weights sum to 1. Dividing by a constant keeps the order of the results.
    """
    if fusion == "rrf":
        return score * (constant + 1) / lists
    return score


def weighted_fusion(
    scored: Sequence[Sequence[tuple[Any, float]]],
    weights: Sequence[float],
    k: int | None = None,
) -> list[tuple[Any, float]]:
    """Blend scored lists: each list's scores min-max scaled to [0, 1], then summed by weight.

    A key missing from a list gets 0 from it. Returns (key, blended score) best first.
    """
    if len(weights) != len(scored):
        raise InputError(f"{len(weights)} weights for {len(scored)} result lists")
    fused: dict[Any, float] = {}
    for items, weight in zip(scored, weights, strict=True):
        if not items:
            continue
        values = [score for _, score in items]
        low, high = min(values), max(values)
        span = high - low
        for key, score in items:
            scaled = (score - low) / span if span > 0 else 1.0
            fused[key] = fused.get(key, 0.0) + weight * scaled
    for items in scored:
        for key, _ in items:
            fused.setdefault(key, 0.0)
    order = sorted(fused.items(), key=lambda item: -item[1])
    return order if k is None else order[:k]
