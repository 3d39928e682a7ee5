"""Encoder families: each module is one family under the contract in `base`."""

from __future__ import annotations

from .base import BaseEncoder, Encoder, as_texts
from .pooling import MeanPoolingEncoder, SIFEncoder, TfidfPoolingEncoder
from .sparse import BagOfWordsEncoder, BM25Encoder, HashingEncoder, OneHotEncoder, TfidfEncoder

__all__ = [
    "BM25Encoder",
    "BagOfWordsEncoder",
    "BaseEncoder",
    "Encoder",
    "HashingEncoder",
    "MeanPoolingEncoder",
    "OneHotEncoder",
    "SIFEncoder",
    "TfidfEncoder",
    "TfidfPoolingEncoder",
    "as_texts",
]


def _register_all() -> None:
    """Import every encoder module so saved encoders of any family can be loaded."""
    from . import distill, pooling, sparse, transformer  # noqa: F401
