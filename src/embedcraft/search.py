"""Search over texts held in memory: encode the documents once, then exact top-k per query.

Persisted collections with ANN indexes build on the same `Hit` results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .encoders.base import Encoder, Vectors, as_texts, fit_if_needed
from .errors import InputError
from .vectors import _top_k, check_finite

__all__ = ["Hit", "MemoryIndex"]


@dataclass(frozen=True)
class Hit:
    """One search result: document id, score (higher is better), text, rank (1-based)."""

    id: str
    score: float
    text: str
    rank: int

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
        encode_queries = getattr(self.encoder, "encode_queries", self.encoder.encode)
        query_vectors = encode_queries(items)
        metric = getattr(self.encoder, "metric", "cosine")
        best = _top_k(query_vectors, self.vectors, k, metric, corpus_checked=True)
        return [
            [
                Hit(self.ids[i], float(s), self.texts[i], rank)
                for rank, (i, s) in enumerate(zip(row_i, row_s, strict=True), start=1)
            ]
            for row_i, row_s in zip(best.indices, best.scores, strict=True)
        ]
