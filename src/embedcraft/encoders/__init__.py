"""Encoder families under one contract (`contract`), with their shared machinery (`base`)."""

from __future__ import annotations

from .base import BaseEncoder
from .contract import (
    CatalogEntry,
    Encoded,
    Encoder,
    EncodeReport,
    EncoderKind,
    InputKind,
    as_texts,
)
from .pooling import MeanPoolingEncoder, SIFEncoder, TfidfPoolingEncoder
from .sparse import BagOfWordsEncoder, BM25Encoder, HashingEncoder, OneHotEncoder, TfidfEncoder

__all__ = [
    "BM25Encoder",
    "BagOfWordsEncoder",
    "BaseEncoder",
    "CatalogEntry",
    "EncodeReport",
    "Encoded",
    "Encoder",
    "EncoderKind",
    "HashingEncoder",
    "InputKind",
    "MeanPoolingEncoder",
    "OneHotEncoder",
    "SIFEncoder",
    "TfidfEncoder",
    "TfidfPoolingEncoder",
    "as_texts",
]
