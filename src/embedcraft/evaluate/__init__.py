"""Evaluation on standard benchmarks."""

from __future__ import annotations

from .images import (
    ImageClassificationResult,
    LabelledImages,
    evaluate_image_classification,
    load_labelled_images,
)
from .retrieval import (
    BeirDataset,
    RetrievalResult,
    evaluate_retrieval,
    load_beir,
    retrieval_metrics,
)

__all__ = [
    "BeirDataset",
    "ImageClassificationResult",
    "LabelledImages",
    "RetrievalResult",
    "evaluate_image_classification",
    "evaluate_retrieval",
    "load_beir",
    "load_labelled_images",
    "retrieval_metrics",
]
