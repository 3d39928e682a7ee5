"""Text analysis shared by every encoder that splits text into words: one object, one behaviour."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from .errors import InputError

__all__ = ["DEFAULT_TOKEN_PATTERN", "TextAnalyzer"]

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
"""scikit-learn's default: runs of two or more word characters."""

_STOP_LISTS: dict[str, frozenset[str]] = {"english": frozenset(ENGLISH_STOP_WORDS)}


@dataclass(frozen=True)
class TextAnalyzer:
    """How raw text becomes a list of features: lowercase, tokenize, drop stop words, stem, n-grams.

    The defaults equal scikit-learn's `CountVectorizer` defaults, so a TF-IDF built on them matches
    `TfidfVectorizer`. `stop_words` is "english" (scikit-learn's list) or your own words; `stemmer`
    is a Snowball language name ("english", "porter", "german", ...) or None.
    """

    lowercase: bool = True
    token_pattern: str = DEFAULT_TOKEN_PATTERN
    stop_words: str | tuple[str, ...] | None = None
    stemmer: str | None = None
    ngram_range: tuple[int, int] = (1, 1)
    strip_accents: bool = False
    _stem_cache: dict[str, str] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.stop_words is not None and not isinstance(self.stop_words, str):
            object.__setattr__(self, "stop_words", tuple(sorted(set(self.stop_words))))
        if isinstance(self.stop_words, str) and self.stop_words not in _STOP_LISTS:
            raise InputError(
                f"unknown stop-word list {self.stop_words!r}: use one of "
                f"{sorted(_STOP_LISTS)} or pass your own words"
            )
        lo, hi = (int(n) for n in self.ngram_range)
        if not 1 <= lo <= hi:
            raise InputError(f"ngram_range must be (min, max) with 1 <= min <= max, got {(lo, hi)}")
        object.__setattr__(self, "ngram_range", (lo, hi))
        try:
            re.compile(self.token_pattern)
        except re.error as exc:
            raise InputError(f"token_pattern {self.token_pattern!r} is not a regex: {exc}") from exc
        if self.stemmer is not None:
            self._snowball  # noqa: B018 - fail now on an unknown language, not on first use

    # ----------------------------------------------------------------- public behaviour
    def tokenize(self, text: str) -> list[str]:
        """The word tokens of one text, after lowercasing, stop-word removal and stemming."""
        return self._tokenize(text)

    def analyze(self, text: str) -> list[str]:
        """The features of one text: its tokens, plus word n-grams when `ngram_range` asks."""
        return self._analyze(text)

    def analyze_many(self, texts: Iterable[str]) -> list[list[str]]:
        """`analyze` over many texts, in order."""
        analyze = self._analyze
        return [analyze(t) for t in texts]

    @property
    def stop_word_set(self) -> frozenset[str]:
        """The stop words in force (empty when none)."""
        if self.stop_words is None:
            return frozenset()
        if isinstance(self.stop_words, str):
            return _STOP_LISTS[self.stop_words]
        return frozenset(self.stop_words)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, the inverse of `from_dict`."""
        data = asdict(self)
        data.pop("_stem_cache")
        data["ngram_range"] = list(self.ngram_range)
        if isinstance(self.stop_words, tuple):
            data["stop_words"] = list(self.stop_words)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextAnalyzer:
        """Rebuild an analyzer written by `to_dict`."""
        known = {"lowercase", "token_pattern", "stop_words", "stemmer", "ngram_range"}
        known.add("strip_accents")
        unknown = set(data) - known
        if unknown:
            raise InputError(f"unknown text-analyzer settings: {sorted(unknown)}")
        kwargs = dict(data)
        if "ngram_range" in kwargs:
            kwargs["ngram_range"] = tuple(kwargs["ngram_range"])
        if isinstance(kwargs.get("stop_words"), list):
            kwargs["stop_words"] = tuple(kwargs["stop_words"])
        return cls(**kwargs)

    # ----------------------------------------------------------------- the compiled pipeline
    @cached_property
    def _snowball(self) -> Any:
        import snowballstemmer

        try:
            return snowballstemmer.stemmer(self.stemmer)
        except KeyError as exc:
            languages = ", ".join(sorted(snowballstemmer.algorithms()))
            raise InputError(
                f"unknown stemmer language {self.stemmer!r}; available: {languages}"
            ) from exc

    @cached_property
    def _tokenize(self) -> Callable[[str], list[str]]:
        findall = re.compile(self.token_pattern).findall
        lowercase, strip = self.lowercase, self.strip_accents
        stops = self.stop_word_set
        stem_new = self._stem_new if self.stemmer is not None else None
        cached = self._stem_cache.get

        def tokenize(text: str) -> list[str]:
            if strip:
                text = _strip_accents(text)
            if lowercase:
                text = text.lower()
            tokens = findall(text)
            if stops:
                tokens = [t for t in tokens if t not in stops]
            if stem_new is not None:
                tokens = [cached(t) or stem_new(t) for t in tokens]
            return tokens

        return tokenize

    @cached_property
    def _analyze(self) -> Callable[[str], list[str]]:
        tokenize = self._tokenize
        lo, hi = self.ngram_range
        if (lo, hi) == (1, 1):
            return tokenize

        def analyze(text: str) -> list[str]:
            tokens = tokenize(text)
            features = list(tokens) if lo == 1 else []
            for n in range(max(lo, 2), hi + 1):
                features.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
            return features

        return analyze

    def _stem_new(self, word: str) -> str:
        stemmed: str = self._snowball.stemWord(word)
        if len(self._stem_cache) < 2_000_000:  # bound the cache on pathological inputs
            self._stem_cache[word] = stemmed
        return stemmed

    def __getstate__(self) -> dict[str, Any]:
        # compiled closures are rebuilt on demand; the stem cache is not worth shipping
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        object.__setattr__(self, "_stem_cache", {})


def _strip_accents(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
