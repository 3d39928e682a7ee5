"""embedcraft: turn raw data into meaningful vectors, and put them to work.

The public API is what `__all__` lists; modules whose names start with an underscore are private.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .cache import EmbeddingCache, MemoryCache, caching
from .catalog import CatalogEntry, list_encoders, load_encoder
from .encoders import (
    BagOfWordsEncoder,
    BaseEncoder,
    BM25Encoder,
    Encoded,
    Encoder,
    EncodeReport,
    EncoderKind,
    HashingEncoder,
    InputKind,
    MeanPoolingEncoder,
    OneHotEncoder,
    SIFEncoder,
    TfidfEncoder,
    TfidfPoolingEncoder,
)
from .encoders.distill import StaticTransformerEncoder
from .encoders.image import ImageEncoder, PixelsEncoder
from .encoders.postprocess import PostProcessedEncoder
from .encoders.transformer import TransformerEncoder
from .errors import (
    CorruptFileError,
    DimensionMismatchError,
    EmbedcraftError,
    InputError,
    MissingDependencyError,
    NotFittedError,
    UnknownEncoderError,
)
from .evaluate import evaluate_retrieval, load_beir
from .evaluate.sts import evaluate_sts
from .evaluate.words import evaluate_analogies, evaluate_word_pairs
from .io import TextTable, read_texts, write_vectors
from .search import Hit, MemoryIndex, reciprocal_rank_fusion, weighted_fusion
from .store import Collection, Document, HnswSettings, VectorCollection, open_collection
from .text import TextAnalyzer
from .vectors import TopK, normalize, similarity, top_k
from .words import OutOfVocabularyError, WordVectors
from .words.sources import load_word_vectors

try:
    __version__ = version("embedcraft")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "BM25Encoder",
    "BagOfWordsEncoder",
    "BaseEncoder",
    "CatalogEntry",
    "Collection",
    "CorruptFileError",
    "DimensionMismatchError",
    "Document",
    "EmbedcraftError",
    "EmbeddingCache",
    "EncodeReport",
    "Encoded",
    "Encoder",
    "EncoderKind",
    "HashingEncoder",
    "Hit",
    "HnswSettings",
    "ImageEncoder",
    "InputError",
    "InputKind",
    "MeanPoolingEncoder",
    "MemoryCache",
    "MemoryIndex",
    "MissingDependencyError",
    "NotFittedError",
    "OneHotEncoder",
    "OutOfVocabularyError",
    "PixelsEncoder",
    "PostProcessedEncoder",
    "SIFEncoder",
    "StaticTransformerEncoder",
    "TextAnalyzer",
    "TextTable",
    "TfidfEncoder",
    "TfidfPoolingEncoder",
    "TopK",
    "TransformerEncoder",
    "UnknownEncoderError",
    "VectorCollection",
    "WordVectors",
    "__version__",
    "caching",
    "evaluate_analogies",
    "evaluate_retrieval",
    "evaluate_sts",
    "evaluate_word_pairs",
    "list_encoders",
    "load_beir",
    "load_encoder",
    "load_word_vectors",
    "normalize",
    "open_collection",
    "read_texts",
    "reciprocal_rank_fusion",
    "similarity",
    "top_k",
    "weighted_fusion",
    "write_vectors",
]
