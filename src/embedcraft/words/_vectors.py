"""Word vectors: a vocabulary and a float32 matrix, with neighbours, analogies and an OOV policy.

`WordVectors` is what training produces and what pretrained files load into; sentence encoders
pool it (see `encoders.pooling`). Words missing from the vocabulary follow an explicit policy:
"raise" (an error naming the word), "zero" (a zero vector) or "subword" (FastText n-grams), and
lookups report which words were missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._files import atomic_directory, load_npy, parse_json, read_text
from ..errors import CorruptFileError, DimensionMismatchError, InputError, missing_dependency
from ..vectors import check_finite, top_k

__all__ = ["Lookup", "OOVPolicy", "OutOfVocabularyError", "SubwordTable", "WordVectors"]

OOVPolicy = Literal["raise", "zero", "subword"]
_POLICIES = ("raise", "zero", "subword")
FORMAT = "embedcraft.wordvectors"


class OutOfVocabularyError(InputError, KeyError):
    """A word that is not in the vocabulary, under the "raise" policy."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class SubwordTable:
    """FastText character n-gram vectors, for words outside the vocabulary."""

    ngrams: np.ndarray
    min_n: int
    max_n: int

    def vector(self, word: str) -> np.ndarray | None:
        """The mean of the word's n-gram vectors (with FastText's hashing), None if it has none."""
        try:
            from gensim.models.fasttext import ft_ngram_hashes
        except ImportError:
            raise missing_dependency("gensim", "static", "FastText subword vectors") from None
        hashes = ft_ngram_hashes(word, self.min_n, self.max_n, self.ngrams.shape[0])
        if not hashes:
            return None
        return np.asarray(self.ngrams[hashes].mean(axis=0), dtype=np.float32)


@dataclass(frozen=True)
class Lookup:
    """Vectors of several words, and which of them were outside the vocabulary."""

    vectors: np.ndarray
    oov: list[str]
    """Words not in the vocabulary (given a zero or subword vector, or dropped)."""


class WordVectors:
    """A vocabulary with one float32 vector per word (row i belongs to `words[i]`).

    `counts` (corpus frequencies, when known) serve SIF weighting and frequency-ranked
    evaluation. The unit-normalized copy used for similarity is computed once, on first use.
    """

    def __init__(
        self,
        words: Sequence[str],
        vectors: np.ndarray,
        counts: np.ndarray | None = None,
        *,
        oov: OOVPolicy = "raise",
        subwords: SubwordTable | None = None,
        name: str = "word-vectors",
    ) -> None:
        vectors = np.asarray(vectors) if not isinstance(vectors, np.memmap) else vectors
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise InputError(
                f"{len(words)} words but a vectors array of shape {vectors.shape}: "
                "expected one row per word"
            )
        if vectors.dtype != np.float32:
            vectors = vectors.astype(np.float32)
        if oov not in _POLICIES:
            raise InputError(f"unknown OOV policy {oov!r}: use one of {', '.join(_POLICIES)}")
        if oov == "subword" and subwords is None:
            raise InputError("the 'subword' OOV policy needs FastText n-gram vectors")
        self.words = list(words)
        self.index: dict[str, int] = {}
        for i, word in enumerate(self.words):
            if word in self.index:
                raise InputError(f"duplicate word {word!r} at rows {self.index[word]} and {i}")
            self.index[word] = i
        self.vectors = vectors
        self.counts = None if counts is None else np.asarray(counts, dtype=np.int64)
        if self.counts is not None and self.counts.shape != (len(self.words),):
            raise InputError(f"{len(self.counts)} counts for {len(self.words)} words")
        self.oov = oov
        self.subwords = subwords
        self.name = name

    # ----------------------------------------------------------------- basics
    @property
    def dim(self) -> int:
        """Vector width."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vector(word)

    def __repr__(self) -> str:
        return f"WordVectors({self.name!r}, {len(self)} words x {self.dim}, oov={self.oov!r})"

    def with_oov(self, oov: OOVPolicy) -> WordVectors:
        """The same vectors (shared, not copied) under another OOV policy."""
        twin = WordVectors.__new__(WordVectors)
        twin.__dict__.update(self.__dict__)
        if oov not in _POLICIES:
            raise InputError(f"unknown OOV policy {oov!r}: use one of {', '.join(_POLICIES)}")
        if oov == "subword" and self.subwords is None:
            raise InputError(f"{self.name} has no subword vectors: only FastText models do")
        twin.oov = oov
        return twin

    @cached_property
    def normalized(self) -> np.ndarray:
        """Unit-length rows (zero rows stay zero), computed once on first use."""
        check_finite(self.vectors, f"{self.name} vectors")  # once; searches skip the scan
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        unit: np.ndarray = (self.vectors / norms).astype(np.float32)
        return unit

    # ----------------------------------------------------------------- lookups
    def vector(self, word: str) -> np.ndarray:
        """The vector of `word`, following the OOV policy for words outside the vocabulary."""
        row = self.index.get(word)
        if row is not None:
            return np.asarray(self.vectors[row])
        if self.oov == "raise":
            raise OutOfVocabularyError(self._oov_message(word))
        if self.oov == "subword":
            assert self.subwords is not None
            found = self.subwords.vector(word)
            if found is not None:
                return found
        return np.zeros(self.dim, dtype=np.float32)

    def lookup(self, words: Iterable[str]) -> Lookup:
        """Vectors of many words (rows in order) and the list of those outside the vocabulary."""
        items = list(words)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        oov = []
        rows = [self.index.get(w, -1) for w in items]
        known = [i for i, r in enumerate(rows) if r >= 0]
        if known:
            out[known] = self.vectors[[rows[i] for i in known]]
        for i, r in enumerate(rows):
            if r < 0:
                oov.append(items[i])
                out[i] = self.vector(items[i])
        return Lookup(out, oov)

    def _oov_message(self, word: str) -> str:
        return f"{word!r} is not in the vocabulary of {self.name} ({len(self)} words)"

    def _row(self, word: str) -> int:
        row = self.index.get(word)
        if row is None:
            raise OutOfVocabularyError(self._oov_message(word))
        return row

    def _unit(self, word_or_vector: str | np.ndarray) -> np.ndarray:
        if isinstance(word_or_vector, str):
            if word_or_vector in self.index:
                known: np.ndarray = self.normalized[self.index[word_or_vector]]
                return known
            vec = self.vector(word_or_vector)
        else:
            vec = np.asarray(word_or_vector, dtype=np.float32).ravel()
            if vec.shape[0] != self.dim:
                raise DimensionMismatchError(
                    f"a vector of {vec.shape[0]} dimensions against word vectors of {self.dim}"
                )
            if not np.isfinite(vec).all():
                raise InputError("the query vector contains NaN or infinity")
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    # ----------------------------------------------------------------- similarity
    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(np.dot(self._unit(a), self._unit(b)))

    def most_similar(
        self,
        word_or_vector: str | np.ndarray,
        k: int = 10,
        *,
        exclude: Iterable[str] = (),
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """The k nearest words by cosine; a word query excludes itself."""
        skip = set(exclude)
        if isinstance(word_or_vector, str):
            skip.add(word_or_vector)
        return self._nearest([self._unit(word_or_vector)], k, [skip], restrict_vocab)[0]

    def _nearest(
        self,
        targets: Sequence[np.ndarray],
        k: int,
        skips: Sequence[set[str]],
        restrict_vocab: int | None,
    ) -> list[list[tuple[str, float]]]:
        matrix = self.normalized[:restrict_vocab] if restrict_vocab else self.normalized
        extra = max((len(s) for s in skips), default=0)
        k_all = min(k + extra, matrix.shape[0])
        best = top_k(np.vstack(targets), matrix, k_all, "dot", corpus_checked=True)
        results = []
        for row_i, row_s, skip in zip(best.indices, best.scores, skips, strict=True):
            hits = [(self.words[i], float(s)) for i, s in zip(row_i, row_s, strict=True)]
            results.append([h for h in hits if h[0] not in skip][:k])
        return results

    def analogy(
        self,
        a: str,
        b: str,
        c: str,
        k: int = 1,
        *,
        method: Literal["3cosadd", "3cosmul"] = "3cosadd",
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """a is to b as c is to ?: the k best answers, excluding a, b and c.

        3CosAdd ranks words by cos(x, b) - cos(x, a) + cos(x, c) (king - man + woman); 3CosMul
        (Levy and Goldberg, 2014) by cos(x, b) * cos(x, c) / (cos(x, a) + 0.001), with cosines
        shifted to [0, 1]. Every word must be in the vocabulary.
        """
        for word in (a, b, c):
            self._row(word)
        if method == "3cosadd":
            target = self._unit(b) - self._unit(a) + self._unit(c)
            return self._nearest([target], k, [{a, b, c}], restrict_vocab)[0]
        if method != "3cosmul":
            raise InputError(f"unknown analogy method {method!r}: use 3cosadd or 3cosmul")
        matrix = self.normalized[:restrict_vocab] if restrict_vocab else self.normalized
        cos = (matrix @ np.vstack([self._unit(w) for w in (a, b, c)]).T + 1.0) / 2.0
        scores = cos[:, 1] * cos[:, 2] / (cos[:, 0] + 1e-3)
        for word in (a, b, c):
            if self.index[word] < len(scores):
                scores[self.index[word]] = -np.inf
        order = [i for i in np.argsort(-scores, kind="stable")[: k + 3] if np.isfinite(scores[i])]
        return [(self.words[i], float(scores[i])) for i in order[:k]]

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word least like the others: farthest from the mean of their unit vectors."""
        if len(words) < 2:
            raise InputError("doesnt_match needs at least two words")
        units = np.vstack([self._unit(w) for w in words])
        mean = units.mean(axis=0)
        mean /= np.linalg.norm(mean) or 1.0
        return words[int(np.argmin(units @ mean))]

    # ----------------------------------------------------------------- our own format
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to a folder (words, vectors.npy, counts) atomically; `load` memory-maps it."""
        meta = {
            "format": FORMAT,
            "format_version": 1,
            "name": self.name,
            "words": len(self),
            "dim": self.dim,
            "oov": self.oov,
            "subwords": None
            if self.subwords is None
            else {"min_n": self.subwords.min_n, "max_n": self.subwords.max_n},
        }
        with atomic_directory(path) as tmp:
            np.save(tmp / "vectors.npy", np.ascontiguousarray(self.vectors), allow_pickle=False)
            if self.counts is not None:
                np.save(tmp / "counts.npy", self.counts, allow_pickle=False)
            if self.subwords is not None:
                np.save(tmp / "ngrams.npy", self.subwords.ngrams, allow_pickle=False)
            (tmp / "words.json").write_text(json.dumps(self.words, ensure_ascii=False), "utf-8")
            (tmp / "wordvectors.json").write_text(json.dumps(meta, indent=1), "utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> WordVectors:
        """Load a folder written by `save`; the matrix is memory-mapped unless `mmap=False`.

        Everything is checked before use: a damaged folder is a CorruptFileError naming the file
        (and the word or row), never a wrong vocabulary or a NaN vector.
        """
        folder = Path(path)
        meta_file = folder / "wordvectors.json"
        if not meta_file.is_file():
            raise InputError(f"{folder} is not a saved embedcraft word-vectors folder")
        meta = _read_meta(meta_file)
        words = _read_words(folder / "words.json")
        vectors = _matrix(load_npy(folder / "vectors.npy", mmap=mmap), folder / "vectors.npy")
        if len(words) != vectors.shape[0]:
            raise CorruptFileError(
                f"{folder} is corrupt: {len(words)} words for {vectors.shape[0]} vectors"
            )
        _check_rows_finite(vectors, folder / "vectors.npy", words)
        counts_file = folder / "counts.npy"
        counts = _counts(load_npy(counts_file), counts_file) if counts_file.is_file() else None
        subwords = None
        if meta["subwords"] is not None:
            ngrams_file = folder / "ngrams.npy"
            ngrams = _matrix(load_npy(ngrams_file, mmap=mmap), ngrams_file)
            if ngrams.shape[1] != vectors.shape[1]:
                raise CorruptFileError(
                    f"{ngrams_file} is corrupt: n-gram vectors of {ngrams.shape[1]} dimensions "
                    f"for word vectors of {vectors.shape[1]}"
                )
            _check_rows_finite(ngrams, ngrams_file, None)
            subwords = SubwordTable(ngrams, **meta["subwords"])
        try:
            return cls(
                words,
                vectors,
                counts,
                oov=meta["oov"],
                subwords=subwords,
                name=meta["name"] if meta["name"] is not None else folder.name,
            )
        except InputError as exc:  # e.g. a word listed twice
            raise CorruptFileError(f"{folder} is corrupt: {exc}") from None

    # ----------------------------------------------------------------- gensim bridge
    def to_gensim(self) -> Any:
        """A gensim `KeyedVectors` with the same words, order, vectors and counts."""
        try:
            from gensim.models import KeyedVectors
        except ImportError:
            raise missing_dependency("gensim", "static", "converting to gensim") from None
        kv = KeyedVectors(self.dim, count=0, dtype=np.float32)
        kv.add_vectors(self.words, np.asarray(self.vectors, dtype=np.float32))
        if self.counts is not None:
            for word, count in zip(self.words, self.counts, strict=True):
                kv.set_vecattr(word, "count", int(count))
        return kv

    @classmethod
    def from_gensim(cls, kv: Any, *, name: str = "word-vectors") -> WordVectors:
        """Wrap a gensim `KeyedVectors` (or FastText's, keeping its n-grams for "subword")."""
        words = list(kv.index_to_key)
        counts = None
        if words and "count" in getattr(kv, "expandos", {}):
            counts = np.asarray(kv.expandos["count"], dtype=np.int64)
        subwords = None
        if getattr(kv, "vectors_ngrams", None) is not None and getattr(kv, "bucket", None):
            subwords = SubwordTable(np.asarray(kv.vectors_ngrams, np.float32), kv.min_n, kv.max_n)
        return cls(
            words,
            np.asarray(kv.vectors, dtype=np.float32),
            counts,
            oov="subword" if subwords else "raise",
            subwords=subwords,
            name=name,
        )


# --------------------------------------------------------------------- checks of a saved folder
_CHECK_ROWS = 65_536
"""Rows checked for NaN at a time (bounded memory on memory-mapped matrices)."""


def _json_file(file: Path) -> Any:
    """A JSON file of a saved folder; missing or unreadable is a CorruptFileError."""
    if not file.is_file():
        raise CorruptFileError(f"{file} is missing")
    return parse_json(read_text(file, error=CorruptFileError), str(file), error=CorruptFileError)


def _read_meta(file: Path) -> dict[str, Any]:
    """`wordvectors.json`, checked: the format, and well-typed name, OOV policy and subwords."""
    meta = _json_file(file)
    if not isinstance(meta, dict):
        raise CorruptFileError(
            f"{file} is corrupt: it holds a JSON {type(meta).__name__}, not an object"
        )
    if meta.get("format") != FORMAT:
        raise CorruptFileError(f"{file} is not in the {FORMAT} format")
    name = meta.get("name")
    oov = meta.get("oov", "raise")
    subwords = meta.get("subwords")
    if name is not None and not isinstance(name, str):
        raise CorruptFileError(f"{file} is corrupt: 'name' is {name!r}, not text")
    if oov not in _POLICIES:
        raise CorruptFileError(f"{file} is corrupt: unknown OOV policy {oov!r}")
    if subwords is not None and not (
        isinstance(subwords, dict)
        and set(subwords) == {"min_n", "max_n"}
        and all(type(v) is int and 0 < v < 1000 for v in subwords.values())
    ):
        raise CorruptFileError(
            f"{file} is corrupt: 'subwords' is {subwords!r}, expected "
            '{"min_n": <int>, "max_n": <int>} or null'
        )
    return {"name": name, "oov": oov, "subwords": subwords or None}


def _read_words(file: Path) -> list[str]:
    """`words.json`: a JSON list of non-empty strings."""
    words = _json_file(file)
    if not isinstance(words, list):
        raise CorruptFileError(
            f"{file} is corrupt: it holds a JSON {type(words).__name__}, not a list of words"
        )
    for i, word in enumerate(words):
        if not isinstance(word, str) or not word:
            raise CorruptFileError(
                f"{file} is corrupt: item {i} is {word!r}, not a word (a non-empty string)"
            )
    return words


def _matrix(array: np.ndarray, file: Path) -> np.ndarray:
    """A saved (rows, dim) matrix of real numbers."""
    if array.ndim != 2 or array.shape[1] == 0:
        raise CorruptFileError(f"{file} is corrupt: shape {array.shape}, expected (rows, dim)")
    if not np.issubdtype(array.dtype, np.floating):
        raise CorruptFileError(f"{file} is corrupt: dtype {array.dtype}, expected floats")
    return array


def _counts(array: np.ndarray, file: Path) -> np.ndarray:
    """Saved word counts: non-negative integers, one per word."""
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise CorruptFileError(
            f"{file} is corrupt: {array.dtype} array of shape {array.shape}, expected one "
            "integer count per word"
        )
    if array.size and array.min() < 0:
        raise CorruptFileError(f"{file} is corrupt: row {int(np.argmin(array))} is negative")
    return array


def _check_rows_finite(matrix: np.ndarray, file: Path, words: list[str] | None) -> None:
    """Refuse a row with NaN or infinity, naming it (and its word), a block of rows at a time."""
    for start in range(0, matrix.shape[0], _CHECK_ROWS):
        block = matrix[start : start + _CHECK_ROWS]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            row = start + int(np.flatnonzero(~finite)[0])
            word = f" (the word {words[row]!r})" if words is not None else ""
            raise CorruptFileError(f"{file} is corrupt: row {row}{word} holds NaN or infinity")
