"""Sparse encoders: one-hot, bag-of-words, TF-IDF, BM25 and hashing, on scikit-learn's counting.

Each returns float32 CSR rows, one per text, over a vocabulary learned by `fit` (hashing needs no
vocabulary: a fixed width of hashed features). All share one `TextAnalyzer` for splitting text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer

from ..errors import InputError
from ..text import TextAnalyzer
from .base import BaseEncoder, as_texts
from .contract import CacheSetting, CatalogEntry, EncodeReport, EncoderKind

__all__ = [
    "BM25Encoder",
    "BagOfWordsEncoder",
    "HashingEncoder",
    "OneHotEncoder",
    "TfidfEncoder",
    "TokenVectors",
]


def _tokens_as_is(tokens: list[str]) -> list[str]:
    """The analyzer handed to scikit-learn: our `TextAnalyzer` has already done the work."""
    return tokens


@dataclass(frozen=True)
class TokenVectors:
    """Word-level one-hot vectors: one row per token of a text (a zero row for an unknown word)."""

    tokens: list[str]
    vectors: sp.csr_matrix


class _VocabularyEncoder(BaseEncoder):
    """Shared core of the vocabulary-based encoders: analyze, learn the vocabulary, count."""

    kind: ClassVar[EncoderKind] = EncoderKind.SPARSE
    sparse: ClassVar[bool] = True
    default_batch_size: ClassVar[int] = 8192
    _fitted_attribute: ClassVar[str] = "vocabulary_"
    _binary_counts: ClassVar[bool] = False
    token_unit: ClassVar[str] = "analyzer word tokens"

    analyzer: TextAnalyzer | None
    min_df: int | float
    max_df: int | float
    max_features: int | None

    @property
    def analyzer_in_use(self) -> TextAnalyzer:
        """The analyzer applied: the `analyzer` parameter, or this encoder's default."""
        return self.analyzer if self.analyzer is not None else self._default_analyzer()

    @classmethod
    def _default_analyzer(cls) -> TextAnalyzer:
        return TextAnalyzer()

    def count_tokens(self, inputs: Any) -> list[int]:
        """Word tokens per text as the analyzer splits them (stop words removed if it does)."""
        tokenize = self.analyzer_in_use.tokenize
        return [len(tokenize(text)) for text in as_texts(inputs)]

    @property
    def dim(self) -> int:
        self._check_fitted()
        return len(self.vocabulary_)

    def fit(self, corpus: Iterable[str], y: Any = None) -> Self:
        """Learn the vocabulary (and the weights, for TF-IDF and BM25) from `corpus`."""
        self.fit_transform(corpus)
        return self

    def fit_transform(self, X: Iterable[str], y: Any = None, **_: Any) -> sp.csr_matrix:
        """Fit on `X` and return its vectors, analyzing each text once."""
        texts = as_texts(X)
        if not texts:
            raise InputError(f"cannot fit {self.name} on an empty corpus")
        lengths: list[int] = []
        counter = CountVectorizer(
            analyzer=_tokens_as_is,
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            binary=self._binary_counts,
            dtype=np.float32,
        )
        try:
            counts = counter.fit_transform(self._token_stream(texts, lengths))
        except ValueError as exc:  # e.g. every text empty, or min_df pruned everything
            raise InputError(f"cannot fit {self.name}: {exc}") from exc
        self.counter_ = counter
        self.vocabulary_: dict[str, int] = counter.vocabulary_
        self._fit_weights(counts, lengths)
        return self._weigh(counts, lengths).astype(np.float32, copy=False)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The vocabulary, in column order (scikit-learn's name)."""
        self._check_fitted()
        return np.asarray(self.counter_.get_feature_names_out())

    def _encode(self, texts: list[str]) -> sp.csr_matrix:
        lengths: list[int] = []
        counts = self.counter_.transform(self._token_stream(texts, lengths))
        return self._weigh(counts, lengths).astype(np.float32, copy=False)

    def _token_stream(self, texts: list[str], lengths: list[int]) -> Iterator[list[str]]:
        """Each text's features, one text at a time, noting each text's length in features."""
        analyze = self.analyzer_in_use.analyze
        for text in texts:
            features = analyze(text)
            lengths.append(len(features))
            yield features

    # hooks for the weighting schemes; `lengths` are the texts' feature counts, all words included
    def _fit_weights(self, counts: sp.csr_matrix, lengths: list[int]) -> None:
        """Learn corpus statistics from the fitted counts (nothing, for plain counts)."""

    def _weigh(self, counts: sp.csr_matrix, lengths: list[int]) -> sp.csr_matrix:
        """Turn raw counts into this encoder's weights (in place: the counts are fresh)."""
        return counts

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"vocabulary": self.get_feature_names_out().tolist()}, {}

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        terms = state["vocabulary"]
        vocabulary = {term: i for i, term in enumerate(terms)}
        if len(vocabulary) != len(terms):
            raise ValueError("the saved vocabulary repeats a term")
        counter = CountVectorizer(
            analyzer=_tokens_as_is,
            vocabulary=vocabulary,
            binary=self._binary_counts,
            dtype=np.float32,
        )
        counter._validate_vocabulary()  # fixes vocabulary_ now, not on first (threaded) use
        self.counter_ = counter
        self.vocabulary_ = counter.vocabulary_

    def _saved_idf(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """The saved IDF array, checked against the restored vocabulary."""
        idf = arrays["idf"]
        if idf.shape != (len(self.vocabulary_),):
            raise ValueError(f"idf has shape {idf.shape}, vocabulary has {len(self.vocabulary_)}")
        return idf


class OneHotEncoder(_VocabularyEncoder):
    """One-hot vectors over a fitted vocabulary.

    Document level (`encode`): a multi-hot row per text, 1 for each vocabulary word present.
    Word level (`encode_tokens`): one one-hot row per token of a text.
    """

    name = "onehot"
    _binary_counts: ClassVar[bool] = True

    def __init__(
        self,
        analyzer: TextAnalyzer | None = None,
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        max_features: int | None = None,
        name: str = "onehot",
    ) -> None:
        self.name = name
        self.analyzer = analyzer
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features

    def encode_tokens(self, text: str) -> TokenVectors:
        """One row per word token of `text`; a word outside the vocabulary gets a zero row."""
        (text,) = as_texts(text) if isinstance(text, str) else as_texts([text])
        self._check_fitted()
        tokens = self.analyzer_in_use.tokenize(text)
        columns = [self.vocabulary_.get(t, -1) for t in tokens]
        known = [(row, col) for row, col in enumerate(columns) if col >= 0]
        rows = np.array([r for r, _ in known], dtype=np.int64)
        cols = np.array([c for _, c in known], dtype=np.int64)
        data = np.ones(len(known), dtype=np.float32)
        vectors = sp.csr_matrix((data, (rows, cols)), shape=(len(tokens), self.dim))
        return TokenVectors(tokens=tokens, vectors=vectors)


class BagOfWordsEncoder(_VocabularyEncoder):
    """Word counts per text over a fitted vocabulary (`binary=True` for presence only)."""

    name = "bow"

    def __init__(
        self,
        analyzer: TextAnalyzer | None = None,
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        max_features: int | None = None,
        binary: bool = False,
        name: str = "bow",
    ) -> None:
        self.name = name
        self.analyzer = analyzer
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.binary = binary

    def _weigh(self, counts: sp.csr_matrix, lengths: list[int]) -> sp.csr_matrix:
        if self.binary:
            counts.data[:] = 1.0
        return counts


class TfidfEncoder(_VocabularyEncoder):
    """TF-IDF, identical to scikit-learn's `TfidfVectorizer` for the same settings.

    idf(t) = ln((1 + n) / (1 + df(t))) + 1 with `smooth_idf` (else ln(n / df(t)) + 1);
    tf is the raw count, or 1 + ln(count) with `sublinear_tf`; rows are L2-normalized by default.
    """

    name = "tfidf"

    def __init__(
        self,
        analyzer: TextAnalyzer | None = None,
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        max_features: int | None = None,
        sublinear_tf: bool = False,
        smooth_idf: bool = True,
        norm: Literal["l2", "l1"] | None = "l2",
        name: str = "tfidf",
    ) -> None:
        self.name = name
        self.analyzer = analyzer
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.smooth_idf = smooth_idf
        self.norm = norm

    def _transformer(self) -> TfidfTransformer:
        return TfidfTransformer(
            norm=self.norm, use_idf=True, smooth_idf=self.smooth_idf, sublinear_tf=self.sublinear_tf
        )

    def _fit_weights(self, counts: sp.csr_matrix, lengths: list[int]) -> None:
        self.tfidf_ = self._transformer().fit(counts)
        self.idf_: np.ndarray = self.tfidf_.idf_

    def _weigh(self, counts: sp.csr_matrix, lengths: list[int]) -> sp.csr_matrix:
        return self.tfidf_.transform(counts, copy=False)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        return state, {**arrays, "idf": np.asarray(self.idf_, dtype=np.float64)}

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(state, arrays)
        idf = self._saved_idf(arrays)
        transformer = self._transformer()
        transformer.idf_ = idf
        transformer.n_features_in_ = len(idf)
        self.tfidf_ = transformer
        self.idf_ = idf


class BM25Encoder(_VocabularyEncoder):
    """Okapi BM25 as sparse vectors whose dot product is the BM25 score.

    Documents (`encode`) carry the weights: for term t with count tf in a document of length dl,
    w = idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)), with Lucene's
    idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)) from the fitted corpus (N documents, mean length
    avgdl). Queries (`encode_queries`) carry the query-term counts (`query_weighting="count"`, as
    Lucene scores a repeated term) or 1 per distinct term ("binary"). So
    `encode_queries(q) @ encode(docs).T` equals the BM25 score of each document for q.
    dl counts every analyzed token of the document, including words outside the vocabulary.
    Defaults k1=0.9, b=0.4 are Anserini's; the default analyzer drops English stop words and stems.
    """

    name = "bm25"
    metric: ClassVar[Literal["cosine", "dot"]] = "dot"

    def __init__(
        self,
        analyzer: TextAnalyzer | None = None,
        k1: float = 0.9,
        b: float = 0.4,
        query_weighting: Literal["count", "binary"] = "count",
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        max_features: int | None = None,
        name: str = "bm25",
    ) -> None:
        self.name = name
        self.analyzer = analyzer
        self.k1 = k1
        self.b = b
        self.query_weighting = query_weighting
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features

    @classmethod
    def _default_analyzer(cls) -> TextAnalyzer:
        return TextAnalyzer(token_pattern=r"(?u)\b\w+\b", stop_words="english", stemmer="english")

    def _check_params(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise InputError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")
        if self.query_weighting not in ("count", "binary"):
            raise InputError(
                f"query_weighting must be 'count' or 'binary', got {self.query_weighting!r}"
            )

    def fit_transform(self, X: Iterable[str], y: Any = None, **_: Any) -> sp.csr_matrix:
        self._check_params()
        return super().fit_transform(X)

    def _fit_weights(self, counts: sp.csr_matrix, lengths: list[int]) -> None:
        n_docs = counts.shape[0]
        df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
        self.idf_: np.ndarray = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        self.avgdl_ = float(np.mean(lengths)) or 1.0
        self.n_docs_ = int(n_docs)

    def _weigh(self, counts: sp.csr_matrix, lengths: list[int]) -> sp.csr_matrix:
        dl = np.asarray(lengths, dtype=np.float32)
        row_of_entry = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        norm = self.k1 * (1.0 - self.b + self.b * dl / self.avgdl_)
        tf = counts.data
        counts.data = (
            self.idf_[counts.indices] * tf * (self.k1 + 1.0) / (tf + norm[row_of_entry])
        ).astype(np.float32)
        return counts

    def _query_rows(
        self, texts: Any, batch_size: int | None, progress: bool, cache: CacheSetting
    ) -> sp.csr_matrix:
        """Query-side vectors (`encode_queries`): term counts (or 1 per term with
        `query_weighting="binary"`); sparse vectors are never cached, whatever `cache` says."""
        self._check_params()
        return self._run_batches(self._encode_query_batch, texts, batch_size, progress).vectors

    def _encode_query_batch(self, texts: list[str]) -> tuple[sp.csr_matrix, EncodeReport]:
        counts = self.counter_.transform(self.analyzer_in_use.analyze_many(texts))
        counts = sp.csr_matrix(counts, dtype=np.float32)
        if self.query_weighting == "binary":
            counts.data[:] = 1.0
        return counts, EncodeReport(inputs=len(texts))

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        state = {**state, "avgdl": self.avgdl_, "n_docs": self.n_docs_}
        return state, {**arrays, "idf": np.asarray(self.idf_, dtype=np.float64)}

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(state, arrays)
        self.idf_ = self._saved_idf(arrays)
        self.avgdl_ = float(state["avgdl"])
        self.n_docs_ = int(state["n_docs"])


class HashingEncoder(BaseEncoder):
    """Hashed term counts of a fixed width: no vocabulary, no fitting, constant memory.

    Different words can share a column (a collision); `n_features` trades width for fewer
    collisions. Same conventions as scikit-learn's `HashingVectorizer`.
    """

    name = "hashing"
    kind: ClassVar[EncoderKind] = EncoderKind.SPARSE
    sparse: ClassVar[bool] = True
    needs_fit: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 8192
    token_unit: ClassVar[str] = "analyzer word tokens"

    def __init__(
        self,
        analyzer: TextAnalyzer | None = None,
        n_features: int = 2**20,
        alternate_sign: bool = True,
        binary: bool = False,
        norm: Literal["l2", "l1"] | None = "l2",
        name: str = "hashing",
    ) -> None:
        self.name = name
        self.analyzer = analyzer
        self.n_features = n_features
        self.alternate_sign = alternate_sign
        self.binary = binary
        self.norm = norm

    @property
    def analyzer_in_use(self) -> TextAnalyzer:
        """The analyzer applied: the `analyzer` parameter, or the scikit-learn default."""
        return self.analyzer if self.analyzer is not None else TextAnalyzer()

    def count_tokens(self, inputs: Any) -> list[int]:
        """Word tokens per text as the analyzer splits them."""
        tokenize = self.analyzer_in_use.tokenize
        return [len(tokenize(text)) for text in as_texts(inputs)]

    @property
    def dim(self) -> int:
        return int(self.n_features)

    def _encode(self, texts: list[str]) -> sp.csr_matrix:
        if int(self.n_features) < 1:
            raise InputError(f"n_features must be >= 1, got {self.n_features}")
        hasher = HashingVectorizer(
            analyzer=_tokens_as_is,
            n_features=int(self.n_features),
            alternate_sign=self.alternate_sign,
            binary=self.binary,
            norm=self.norm,
            dtype=np.float32,
        )
        return hasher.transform(self.analyzer_in_use.analyze_many(texts))


def catalog_entries() -> list[CatalogEntry]:
    """The named sparse encoders (scikit-learn counting, built in)."""

    def entry(
        cls: type[BaseEncoder], name: str, width: str, needs_fit: bool, what: str
    ) -> CatalogEntry:
        return CatalogEntry(
            name, EncoderKind.SPARSE, width, needs_fit, "scikit-learn (built in)", what,
            lambda: cls(name=name),
        )  # fmt: skip

    size = "vocabulary size"
    return [
        entry(OneHotEncoder, "onehot", size, True,
              "multi-hot word presence per text; word-level one-hot via encode_tokens"),
        entry(BagOfWordsEncoder, "bow", size, True, "bag-of-words term counts"),
        entry(TfidfEncoder, "tfidf", size, True,
              "TF-IDF, L2-normalized (scikit-learn TfidfVectorizer conventions)"),
        entry(BM25Encoder, "bm25", size, True,
              "Okapi BM25 (k1=0.9, b=0.4, stemmed, stop words removed); dot product = BM25 score"),
        entry(HashingEncoder, "hashing", "1048576", False,
              "hashed term counts of fixed width, no vocabulary"),
    ]  # fmt: skip


def open_path(path: Path) -> BaseEncoder | None:
    """Sparse encoders are only loaded from saved encoder folders: no model files to recognise."""
    return None
