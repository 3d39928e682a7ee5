from __future__ import annotations

import copy
import pickle

import pytest
from sklearn.feature_extraction.text import CountVectorizer

from embedcraft import InputError, TextAnalyzer


def test_defaults_match_scikit_learn_analyzer() -> None:
    text = "The Quick brown fox -- jumped; over 2 lazy DOGS, a b c. Émile's café"
    sklearn_analyze = CountVectorizer().build_analyzer()
    assert TextAnalyzer().analyze(text) == sklearn_analyze(text)


def test_stop_words_stemming_and_ngrams() -> None:
    analyzer = TextAnalyzer(stop_words="english", stemmer="english", ngram_range=(1, 2))
    assert analyzer.tokenize("The runners were running quickly") == ["runner", "run", "quick"]
    assert analyzer.analyze("The runners were running quickly") == [
        "runner",
        "run",
        "quick",
        "runner run",
        "run quick",
    ]
    only_bigrams = TextAnalyzer(ngram_range=(2, 2))
    assert only_bigrams.analyze("one two three") == ["one two", "two three"]


def test_custom_stop_words_and_accents() -> None:
    analyzer = TextAnalyzer(stop_words=["fox", "the"], strip_accents=True)
    assert analyzer.tokenize("The café fox") == ["cafe"]
    assert analyzer.stop_word_set == {"fox", "the"}


def test_empty_text_gives_no_tokens() -> None:
    assert TextAnalyzer().analyze("") == []
    assert TextAnalyzer(ngram_range=(1, 3)).analyze("word") == ["word"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stop_words": "klingon"}, "unknown stop-word list"),
        ({"ngram_range": (2, 1)}, "ngram_range"),
        ({"token_pattern": "("}, "not a regex"),
        ({"stemmer": "klingon"}, "unknown stemmer"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        TextAnalyzer(**kwargs)


def test_round_trip_copy_and_pickle() -> None:
    analyzer = TextAnalyzer(stop_words=["b", "a"], stemmer="english", ngram_range=(1, 2))
    assert TextAnalyzer.from_dict(analyzer.to_dict()) == analyzer
    analyzer.analyze("warm the caches first")
    for clone in (copy.deepcopy(analyzer), pickle.loads(pickle.dumps(analyzer))):
        assert clone == analyzer
        assert clone.analyze("running dogs") == analyzer.analyze("running dogs")
    with pytest.raises(InputError, match="unknown text-analyzer settings"):
        TextAnalyzer.from_dict({"lowercase": True, "colour": "red"})
