"""GloVe trainer: co-occurrence counting by hand, chunking, training behaviour, bad input."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from importlib.util import find_spec

import numpy as np
import pytest

from embedcraft.errors import InputError, MissingDependencyError
from embedcraft.training import glove
from embedcraft.training.glove import GloveResult, _count_cooccurrences, train_glove

needs_numba = pytest.mark.skipif(
    find_spec("numba") is None, reason="GloVe training needs numba (pip install numba)"
)


def _dense(sentences: list[list[str]], vocab: list[str], window: int, **kw: int) -> np.ndarray:
    matrix, _ = _count_cooccurrences(sentences, {w: i for i, w in enumerate(vocab)}, window, **kw)
    return matrix.toarray()


def _brute_force(sentences: list[list[str]], vocab: list[str], window: int) -> np.ndarray:
    """The definition, one pair at a time: OOV dropped, both orders, 1/distance, per sentence."""
    index = {w: i for i, w in enumerate(vocab)}
    out = np.zeros((len(vocab), len(vocab)))
    for sentence in sentences:
        ids = [index[t] for t in sentence if t in index]
        for p, a in enumerate(ids):
            for q in range(max(0, p - window), min(len(ids), p + window + 1)):
                if q != p:
                    out[a, ids[q]] += 1.0 / abs(p - q)
    return out


def _two_topics(n: int = 300, length: int = 8, seed: int = 0) -> list[list[str]]:
    """Sentences drawn from one of two disjoint word groups, alternating."""
    rng = random.Random(seed)
    groups = [[f"a{k}" for k in range(6)], [f"b{k}" for k in range(6)]]
    return [[rng.choice(groups[s % 2]) for _ in range(length)] for s in range(n)]


# --- co-occurrence counting -------------------------------------------------------------------


def test_counts_match_a_hand_computation() -> None:
    # "x" is out of vocabulary: it is removed first, so "b c" in sentence 2 are at distance 1.
    sentences = [["a", "b", "c", "a"], ["b", "x", "c"], ["c"]]
    x = _dense(sentences, ["a", "b", "c"], window=2)
    # sentence 1: a-b 1, b-c 1, c-a 1 (d=1); a-c 1/2, b-a 1/2 (d=2); sentence 2: b-c 1 (d=1)
    expected = np.array(
        [
            [0.0, 1.5, 1.5],  # a-b: 1 + 1/2; a-c: 1 (c a) + 1/2 (a _ c)
            [1.5, 0.0, 2.0],  # b-c: 1 (sentence 1) + 1 (sentence 2, x dropped)
            [1.5, 2.0, 0.0],
        ]
    )
    np.testing.assert_allclose(x, expected)


def test_windows_stop_at_sentence_ends_and_the_matrix_is_symmetric() -> None:
    x = _dense([["a", "b"], ["c", "d"]], ["a", "b", "c", "d"], window=5)
    assert x[1, 2] == 0 and x[2, 1] == 0  # b ends sentence 1, c starts sentence 2
    np.testing.assert_array_equal(x, x.T)
    assert x[0, 1] == 1 and x[2, 3] == 1


def test_a_word_beside_itself_counts_from_both_sides() -> None:
    x = _dense([["a", "a"]], ["a"], window=1)
    assert x[0, 0] == 2.0  # each "a" sees the other once


def test_counts_match_the_definition_on_a_random_corpus() -> None:
    rng = random.Random(1)
    vocab = [f"w{k}" for k in range(12)]
    tokens = [*vocab, "oov1", "oov2"]
    sentences = [[rng.choice(tokens) for _ in range(rng.randint(0, 15))] for _ in range(60)]
    for window in (1, 3, 10):
        expected = _brute_force(sentences, vocab, window)
        np.testing.assert_allclose(_dense(sentences, vocab, window), expected, rtol=1e-6)


def test_chunking_does_not_change_the_counts() -> None:
    rng = random.Random(2)
    vocab = [f"w{k}" for k in range(30)]
    sentences = [
        [rng.choice([*vocab, "oov"]) for _ in range(rng.randint(1, 20))] for _ in range(200)
    ]
    one_chunk = _dense(sentences, vocab, 4, chunk_tokens=10**9)
    for chunk_tokens in (1, 7, 100):
        tiny = _dense(sentences, vocab, 4, chunk_tokens=chunk_tokens)
        np.testing.assert_allclose(tiny, one_chunk, rtol=1e-6)


def test_count_matrix_types_and_token_total() -> None:
    matrix, tokens = _count_cooccurrences([["a", "b", "zz"], ["b", "a"]], {"a": 0, "b": 1}, 3)
    assert tokens == 5
    assert matrix.dtype == np.float32
    assert matrix.indices.dtype == np.int32
    assert matrix.shape == (2, 2)


# --- training ---------------------------------------------------------------------------------


@needs_numba
def test_result_fields() -> None:
    corpus = _two_topics(n=40)
    result = train_glove(corpus, dim=8, window=3, min_count=1, epochs=3, workers=1)
    assert isinstance(result, GloveResult)
    assert result.vectors.dtype == np.float32
    assert result.vectors.shape == (12, 8)
    assert result.counts.dtype == np.int64
    assert result.counts.sum() == result.tokens == 40 * 8
    assert len(result.losses) == 3
    assert 0 < result.cooccurrence_pairs <= 12 * 12
    assert set(result.seconds) == {"vocab", "cooccurrence", "training"}


@needs_numba
def test_training_decreases_the_loss() -> None:
    result = train_glove(_two_topics(), dim=10, window=3, min_count=1, epochs=15, workers=2)
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert all(np.isfinite(result.losses))


@needs_numba
def test_same_seed_same_vectors_with_one_worker() -> None:
    corpus = _two_topics(n=100)
    kw = {"dim": 8, "window": 3, "min_count": 1, "epochs": 5, "workers": 1}
    first = train_glove(corpus, seed=3, **kw)
    again = train_glove(corpus, seed=3, **kw)
    other = train_glove(corpus, seed=4, **kw)
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert first.losses == again.losses
    assert not np.array_equal(first.vectors, other.vectors)


@needs_numba
def test_words_that_share_contexts_end_up_close() -> None:
    result = train_glove(_two_topics(), dim=10, window=3, min_count=1, epochs=40, workers=1)
    unit = result.vectors / np.linalg.norm(result.vectors, axis=1, keepdims=True)
    group = np.array([w[0] for w in result.words])
    sims = unit @ unit.T
    same = (group[:, None] == group[None, :]) & ~np.eye(len(group), dtype=bool)
    cross = group[:, None] != group[None, :]
    assert sims[same].mean() > sims[cross].mean() + 0.3
    # and for every word, its nearest neighbour is in its own group
    np.fill_diagonal(sims, -np.inf)
    assert (group[sims.argmax(axis=1)] == group).all()


@needs_numba
def test_vocabulary_order_min_count_and_max_vocab() -> None:
    corpus = [["b", "a", "c", "b"], ["a", "d", "c", "a", "b", "e"]]  # b 3, a 3, c 2, d 1, e 1
    kw = {"dim": 4, "window": 2, "epochs": 1, "workers": 1}
    result = train_glove(corpus, min_count=2, **kw)
    assert result.words == ["a", "b", "c"]  # count descending, ties by word
    assert result.counts.tolist() == [3, 3, 2]
    assert result.tokens == 10
    assert train_glove(corpus, min_count=1, max_vocab=2, **kw).words == ["a", "b"]
    assert train_glove(corpus, min_count=1, **kw).words == ["a", "b", "c", "d", "e"]


@needs_numba
def test_a_reiterable_stream_is_accepted() -> None:
    class Stream:
        def __iter__(self) -> Iterator[list[str]]:
            yield from _two_topics(n=30)

    result = train_glove(Stream(), dim=4, window=2, min_count=1, epochs=1, workers=1)
    assert result.tokens == 30 * 8


@needs_numba
def test_progress_bars_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    kw = {"dim": 4, "window": 2, "min_count": 1, "epochs": 2, "workers": 1}
    train_glove(_two_topics(n=20), **kw)
    assert capsys.readouterr().err == ""
    train_glove(_two_topics(n=20), progress=True, **kw)
    err = capsys.readouterr().err
    assert "GloVe vocab" in err and "GloVe co-occurrence" in err and "loss=" in err


# --- bad input --------------------------------------------------------------------------------


@needs_numba
@pytest.mark.parametrize("corpus", [[], [[]], [[], []]])
def test_empty_corpus(corpus: list[list[str]]) -> None:
    with pytest.raises(InputError, match="empty"):
        train_glove(corpus, min_count=1)


@needs_numba
def test_no_word_reaches_min_count() -> None:
    with pytest.raises(InputError, match="min_count=5"):
        train_glove([["a", "b"], ["c"]], min_count=5)


@needs_numba
def test_no_cooccurrence_at_all() -> None:
    with pytest.raises(InputError, match="no co-occurrences"):
        train_glove([["a"], ["a"]], min_count=1)


@pytest.mark.parametrize("name", ["dim", "window", "epochs", "min_count", "workers", "max_vocab"])
def test_sizes_below_one(name: str) -> None:
    with pytest.raises(InputError, match=name):
        train_glove([["a", "b"]], **{name: 0})


@pytest.mark.parametrize("name", ["x_max", "learning_rate"])
def test_rates_must_be_positive(name: str) -> None:
    with pytest.raises(InputError, match=name):
        train_glove([["a", "b"]], **{name: 0.0})


@needs_numba
def test_non_string_token_names_the_sentence() -> None:
    with pytest.raises(TypeError, match="sentence 2"):
        train_glove([["a", "b"], ["b", "a"], ["a", 7]], min_count=1)
    with pytest.raises(TypeError, match="sentence 1"):
        train_glove([["a", "b"], ["a", ["nested"]]], min_count=1)


@needs_numba
def test_a_sentence_that_is_a_string() -> None:
    with pytest.raises(TypeError, match="sentence 1 .*split it into tokens"):
        train_glove([["a", "b"], "a b"], min_count=1)


@needs_numba
def test_divergence_is_reported() -> None:
    with pytest.raises(InputError, match="diverged.*lower learning_rate"):
        train_glove(_two_topics(), dim=10, window=3, min_count=1, learning_rate=5.0, workers=1)


def test_a_one_shot_generator_is_refused() -> None:
    with pytest.raises(TypeError, match="re-iterable"):
        train_glove(s for s in [["a", "b"]])


def test_missing_numba_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(glove, "_KERNEL", None)
    monkeypatch.setitem(sys.modules, "numba", None)  # makes `import numba` fail
    with pytest.raises(MissingDependencyError, match="numba"):
        train_glove([["a", "b"]], min_count=1)
