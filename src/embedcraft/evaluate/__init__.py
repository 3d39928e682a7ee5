"""Evaluation on standard benchmarks."""

from __future__ import annotations

from .retrieval import (
    BeirDataset,
    RetrievalResult,
    evaluate_retrieval,
    load_beir,
    retrieval_metrics,
)

__all__ = ["BeirDataset", "RetrievalResult", "evaluate_retrieval", "load_beir", "retrieval_metrics"]
