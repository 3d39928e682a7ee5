"""Sentence vectors pooled from word vectors: mean, TF-IDF-weighted mean, and SIF.

SIF (Arora, Liang and Ma, 2017) weights each word by a / (a + p(w)), with p(w) its frequency in
the fitted corpus, then removes the projection on the first principal component of the fitted
corpus's sentence vectors. Words outside the vocabulary are skipped (or get FastText subword
vectors with `oov="subword"`); every `encode` reports how many (`encode_with_report`,
`last_report`), counted over the whole call.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..text import TextAnalyzer
from ..words import WordVectors
from .base import BaseEncoder, as_texts
from .contract import CatalogEntry, EncodeReport, EncoderKind

__all__ = [
    "MeanPoolingEncoder",
    "OOVReport",
    "SIFEncoder",
    "TfidfPoolingEncoder",
    "WordPoolingEncoder",
]

WORD_TOKENS = TextAnalyzer(token_pattern=r"(?u)\b\w+\b")
"""Lowercased runs of word characters, single letters included: how word vectors are keyed."""


OOVReport = EncodeReport
"""The report pooled encoders gave before every encoder reported (kept as an alias)."""


class WordPoolingEncoder(BaseEncoder):
    """Shared machinery: tokenize, map to vocabulary rows, weighted mean as one sparse product."""

    kind: ClassVar[EncoderKind] = EncoderKind.STATIC
    sparse: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 4096
    token_unit: ClassVar[str] = "analyzer word tokens"
    _divide_by_weights: ClassVar[bool] = True
    """Weighted mean (divide by the weights' sum), or weighted sum over the word count."""

    vectors: str | WordVectors
    analyzer: TextAnalyzer | None
    oov: Literal["skip", "subword"]

    @property
    def word_vectors(self) -> WordVectors:
        """The word vectors pooled (loaded on first use from a name or path)."""
        if isinstance(self.vectors, WordVectors):
            return self.vectors
        cached = self.__dict__.get("_word_vectors_cache")
        if cached is None or cached[0] != self.vectors:
            from ..words.sources import load_word_vectors

            cached = (self.vectors, load_word_vectors(self.vectors))
            self.__dict__["_word_vectors_cache"] = cached
        return cached[1]

    @property
    def analyzer_in_use(self) -> TextAnalyzer:
        """The analyzer applied: the `analyzer` parameter, or lowercased word tokens."""
        return self.analyzer if self.analyzer is not None else WORD_TOKENS

    @property
    def dim(self) -> int:
        return self.word_vectors.dim

    def _weights(self) -> np.ndarray | None:
        """Per-vocabulary-row weights (None: every word weighs 1)."""
        return None

    def count_tokens(self, inputs: Any) -> list[int]:
        """Word tokens per text as the analyzer splits them."""
        tokenize = self.analyzer_in_use.tokenize
        return [len(tokenize(text)) for text in as_texts(inputs)]

    def _encode_reported(self, texts: list[str]) -> tuple[np.ndarray, EncodeReport]:
        wv = self.word_vectors
        if self.oov not in ("skip", "subword"):
            raise InputError(f"oov must be 'skip' or 'subword', got {self.oov!r}")
        if self.oov == "subword" and wv.subwords is None:
            raise InputError(f"{wv.name} has no subword vectors: oov='subword' needs FastText")
        index, analyze = wv.index, self.analyzer_in_use.tokenize
        rows, cols, oov_rows, oov_words = [], [], [], []
        tokens = oov = 0
        for r, text in enumerate(texts):
            for token in analyze(text):
                tokens += 1
                col = index.get(token)
                if col is None:
                    oov += 1
                    if self.oov == "subword":
                        oov_rows.append(r)
                        oov_words.append(token)
                else:
                    rows.append(r)
                    cols.append(col)
        n = len(texts)
        weights = self._weights()
        data = (
            np.ones(len(cols), np.float32) if weights is None else weights[cols].astype(np.float32)
        )
        m = sp.csr_matrix((data, (rows, cols)), shape=(n, len(wv)), dtype=np.float32)
        total = m @ wv.vectors if m.nnz else np.zeros((n, self.dim), np.float32)
        mass = np.asarray(m.sum(axis=1)).ravel()
        if oov_words:
            unique = sorted(set(oov_words))
            position = {w: i for i, w in enumerate(unique)}
            table = np.vstack([wv.vector(w) for w in unique]).astype(np.float32)
            w_oov = np.full(len(oov_words), self._oov_weight(), np.float32)
            m_oov = sp.csr_matrix(
                (w_oov, (oov_rows, [position[w] for w in oov_words])), shape=(n, len(unique))
            )
            total = total + m_oov @ table
            mass = mass + np.asarray(m_oov.sum(axis=1)).ravel()
        if not self._divide_by_weights:
            mass = np.bincount(rows, minlength=n) + np.bincount(oov_rows, minlength=n)
        out = np.zeros((n, self.dim), np.float32)
        nonempty = mass > 0
        out[nonempty] = total[nonempty] / mass[nonempty, None]
        report = EncodeReport(
            inputs=n, tokens=tokens, oov_tokens=oov, empty_inputs=int(n - nonempty.sum())
        )
        return self._post(out), report

    def _oov_weight(self) -> float:
        return 1.0

    def _post(self, pooled: np.ndarray) -> np.ndarray:
        return pooled

    def _vectors_param_json(self) -> str:
        if isinstance(self.vectors, WordVectors):
            raise InputError(
                "cannot save an encoder built on an in-memory WordVectors: save the vectors "
                "with WordVectors.save(folder) and pass the folder path as `vectors`"
            )
        return os.fspath(self.vectors)


class MeanPoolingEncoder(WordPoolingEncoder):
    """The plain mean of a text's word vectors: no fitting needed."""

    name = "mean-pooling"
    needs_fit: ClassVar[bool] = False

    def __init__(
        self,
        vectors: str | WordVectors = "glove-6b-50d",
        analyzer: TextAnalyzer | None = None,
        oov: Literal["skip", "subword"] = "skip",
        name: str = "mean-pooling",
    ) -> None:
        self.name = name
        self.vectors = vectors
        self.analyzer = analyzer
        self.oov = oov

    def save(self, path: str | os.PathLike[str]) -> None:
        self._vectors_param_json()
        super().save(path)


class TfidfPoolingEncoder(WordPoolingEncoder):
    """A mean weighted by each word's IDF in the fitted corpus (smooth IDF, as scikit-learn)."""

    name = "tfidf-pooling"
    _fitted_attribute: ClassVar[str] = "idf_"

    def __init__(
        self,
        vectors: str | WordVectors = "glove-6b-50d",
        analyzer: TextAnalyzer | None = None,
        oov: Literal["skip", "subword"] = "skip",
        name: str = "tfidf-pooling",
    ) -> None:
        self.name = name
        self.vectors = vectors
        self.analyzer = analyzer
        self.oov = oov

    def fit(self, corpus: Iterable[str], y: Any = None) -> Self:
        """Learn each vocabulary word's document frequency from `corpus`."""
        texts = _non_empty_corpus(corpus, self.name)
        wv, analyze = self.word_vectors, self.analyzer_in_use.tokenize
        df = np.zeros(len(wv), np.float64)
        rows = [r for text in texts for r in {wv.index.get(t, -1) for t in analyze(text)}]
        np.add.at(df, [r for r in rows if r >= 0], 1.0)
        n = len(texts)
        self.idf_ = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        return self

    def _weights(self) -> np.ndarray:
        return self.idf_

    def _oov_weight(self) -> float:
        return float(self.idf_.max())  # an unseen word is as rare as the rarest word

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._vectors_param_json()
        return {}, {"idf": self.idf_}

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.idf_ = arrays["idf"]


class SIFEncoder(WordPoolingEncoder):
    """Smooth inverse frequency: the mean over words of a / (a + p(w)) * v(w), minus the first
    principal component of the fitted corpus's vectors (Arora et al., 2017)."""

    name = "sif"
    _fitted_attribute: ClassVar[str] = "word_weights_"
    _divide_by_weights: ClassVar[bool] = False  # Arora et al. average over the words

    def __init__(
        self,
        vectors: str | WordVectors = "glove-6b-50d",
        analyzer: TextAnalyzer | None = None,
        oov: Literal["skip", "subword"] = "skip",
        a: float = 1e-3,
        remove_components: int = 1,
        name: str = "sif",
    ) -> None:
        self.name = name
        self.vectors = vectors
        self.analyzer = analyzer
        self.oov = oov
        self.a = a
        self.remove_components = remove_components

    def fit(self, corpus: Iterable[str], y: Any = None) -> Self:
        """Word frequencies from `corpus`, then the principal components of its SIF vectors."""
        if self.a <= 0 or self.remove_components < 0:
            raise InputError("SIF needs a > 0 and remove_components >= 0")
        texts = _non_empty_corpus(corpus, self.name)
        wv, analyze = self.word_vectors, self.analyzer_in_use.tokenize
        counts = Counter(t for text in texts for t in analyze(text))
        total = sum(counts.values())
        if not total:
            raise InputError(f"cannot fit {self.name}: the corpus has no words")
        freq = np.zeros(len(wv), np.float64)
        for word, count in counts.items():
            row = wv.index.get(word)
            if row is not None:
                freq[row] = count / total
        self.word_weights_ = (self.a / (self.a + freq)).astype(np.float32)
        self.components_ = np.zeros((0, self.dim), np.float32)
        if self.remove_components:
            pooled = self._run_batches(self._encode_reported, texts, None, False).vectors
            pooled = pooled[np.linalg.norm(pooled, axis=1) > 0]
            if len(pooled):
                _, _, vt = np.linalg.svd(pooled.astype(np.float64), full_matrices=False)
                self.components_ = vt[: self.remove_components].astype(np.float32)
        return self

    def _weights(self) -> np.ndarray:
        return self.word_weights_

    def _post(self, pooled: np.ndarray) -> np.ndarray:
        pcs = getattr(self, "components_", None)
        if pcs is None or not len(pcs):
            return pooled
        out: np.ndarray = (pooled - (pooled @ pcs.T) @ pcs).astype(np.float32)
        return out

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._vectors_param_json()
        return {}, {"word_weights": self.word_weights_, "components": self.components_}

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.word_weights_ = arrays["word_weights"]
        self.components_ = arrays["components"]


def _non_empty_corpus(corpus: Iterable[str], name: str) -> list[str]:
    texts = as_texts(corpus)
    if not texts:
        raise InputError(f"cannot fit {name} on an empty corpus")
    return texts


WORD_VECTOR_SUFFIXES = (".bin", ".vec", ".txt", ".gz")
"""Files `open_path` takes for word vectors (word2vec binary, text formats, gzipped)."""


def catalog_entries() -> list[CatalogEntry]:
    """Each installed pretrained word-vector set, pooled four ways (plain name = mean)."""
    from ..words.sources import pretrained_word_vectors

    variants: list[tuple[str, type[WordPoolingEncoder], bool, str]] = [
        ("", MeanPoolingEncoder, False, "mean of the word vectors"),
        ("-mean", MeanPoolingEncoder, False, "mean of the word vectors"),
        ("-tfidf", TfidfPoolingEncoder, True, "IDF-weighted mean of the word vectors"),
        ("-sif", SIFEncoder, True, "SIF: frequency-weighted mean minus 1st component"),
    ]
    entries = []
    for pretrained in pretrained_word_vectors():
        for suffix, cls, needs_fit, what in variants:
            name = pretrained.name + suffix

            def build(
                cls: type[WordPoolingEncoder] = cls,
                name: str = name,
                vectors: str = pretrained.name,
            ) -> BaseEncoder:
                return cls(vectors=vectors, name=name)

            entries.append(
                CatalogEntry(
                    name,
                    EncoderKind.STATIC,
                    str(pretrained.dim),
                    needs_fit,
                    f"package {pretrained.package}",
                    f"{what}; {pretrained.description}",
                    build,
                )
            )
    return entries


def open_path(path: Path) -> BaseEncoder | None:
    """Word vectors given by path (a saved word-vectors folder, or a .bin/.vec/.txt file,
    optionally gzipped) pooled by their mean; None for anything else."""
    is_folder = path.is_dir() and (path / "wordvectors.json").is_file()
    is_file = path.is_file() and path.suffix.lower() in WORD_VECTOR_SUFFIXES
    if not (is_folder or is_file):
        return None
    return MeanPoolingEncoder(vectors=str(path), name=f"{path.name}-mean")
