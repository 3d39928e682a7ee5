from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from embedcraft import (
    BagOfWordsEncoder,
    BaseEncoder,
    BM25Encoder,
    CorruptFileError,
    HashingEncoder,
    InputError,
    NotFittedError,
    OneHotEncoder,
    TextAnalyzer,
    TfidfEncoder,
)

ALL = [OneHotEncoder, BagOfWordsEncoder, TfidfEncoder, BM25Encoder]
PLAIN = TextAnalyzer(token_pattern=r"(?u)\b\w+\b")  # no stop words, no stemming


@pytest.mark.parametrize(
    "ours, theirs",
    [
        ({}, {}),
        ({"sublinear_tf": True}, {"sublinear_tf": True}),
        ({"smooth_idf": False, "norm": None}, {"smooth_idf": False, "norm": None}),
        (
            {"analyzer": TextAnalyzer(stop_words="english", ngram_range=(1, 2)), "min_df": 2},
            {"stop_words": "english", "ngram_range": (1, 2), "min_df": 2},
        ),
    ],
)
def test_tfidf_equals_scikit_learn(corpus: list[str], ours: dict, theirs: dict) -> None:
    texts = corpus * 3 + ["the market and the planet", "soup soup soup", ""]
    reference = TfidfVectorizer(**theirs).fit(texts)
    encoder = TfidfEncoder(**ours).fit(texts)
    assert list(encoder.get_feature_names_out()) == list(reference.get_feature_names_out())
    queries = ["cats on the market", "fresh planet soup soup", "nothing known here", ""]
    got, want = encoder.encode(queries), reference.transform(queries)
    assert got.dtype == np.float32 and sp.isspmatrix_csr(got)
    np.testing.assert_allclose(got.toarray(), want.toarray(), atol=1e-6)
    np.testing.assert_allclose(
        encoder.fit_transform(texts).toarray(), reference.transform(texts).toarray(), atol=1e-6
    )


def test_bm25_matches_hand_computed_okapi() -> None:
    docs = ["apple banana apple", "banana cherry", "cherry cherry cherry date"]
    k1, b = 1.2, 0.75
    encoder = BM25Encoder(analyzer=PLAIN, k1=k1, b=b).fit(docs)
    tokenized = [d.split() for d in docs]
    n, avgdl = 3, sum(map(len, tokenized)) / 3

    def okapi(query: str, doc: list[str]) -> float:
        score = 0.0
        for term in query.split():
            df = sum(term in d for d in tokenized)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = doc.count(term)
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        return score

    doc_vectors = encoder.encode(docs)
    for query in ["apple", "banana cherry", "cherry date", "apple apple", "kiwi"]:
        scores = (encoder.encode_queries(query) @ doc_vectors.T).toarray()[0]
        expected = [okapi(query, d) for d in tokenized]
        np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
    # binary query weighting counts a repeated query word once
    binary = BM25Encoder(analyzer=PLAIN, k1=k1, b=b, query_weighting="binary").fit(docs)
    once = (binary.encode_queries("apple apple") @ binary.encode(docs).T).toarray()[0]
    np.testing.assert_allclose(once, [okapi("apple", d) for d in tokenized], rtol=1e-5)


def test_bm25_document_length_counts_unknown_words() -> None:
    encoder = BM25Encoder(analyzer=PLAIN).fit(["alpha beta", "beta gamma", "gamma delta"])
    short = encoder.encode("alpha").toarray()
    padded = encoder.encode("alpha zzz yyy xxx www").toarray()
    assert padded[0, encoder.vocabulary_["alpha"]] < short[0, encoder.vocabulary_["alpha"]]


def test_bm25_rejects_bad_parameters() -> None:
    with pytest.raises(InputError, match="k1"):
        BM25Encoder(b=1.5).fit(["a doc"])
    with pytest.raises(InputError, match="query_weighting"):
        BM25Encoder(query_weighting="log").fit(["a doc"])


def test_bm25_default_analyzer_stems_and_drops_stop_words() -> None:
    encoder = BM25Encoder().fit(["The runners are running", "Walking the dog"])
    assert "the" not in encoder.vocabulary_
    assert "run" in encoder.vocabulary_ and "runner" in encoder.vocabulary_


@pytest.mark.parametrize("cls", [TfidfEncoder, BM25Encoder])
def test_pipeline_with_classifier_trains_and_predicts(cls: type, corpus: list[str]) -> None:
    labels = ["pets", "pets", "money", "money", "food", "food", "space", "space"]
    model = Pipeline([("vectors", cls()), ("clf", LogisticRegression(C=100, max_iter=1000))])
    model.fit(corpus * 2, labels * 2)
    predicted = model.predict(["my cat and my dog", "the market fell", "a planet and a star"])
    assert list(predicted) == ["pets", "money", "space"]
    search = GridSearchCV(model, {"clf__C": [1.0, 10.0]}, cv=2).fit(corpus * 2, labels * 2)
    assert search.best_estimator_.named_steps["vectors"].__class__ is cls


def test_scikit_learn_estimator_rules() -> None:
    analyzer = TextAnalyzer(stop_words="english")
    encoder = TfidfEncoder(analyzer=analyzer, sublinear_tf=True)
    assert encoder.get_params()["sublinear_tf"] is True
    assert not hasattr(encoder, "vocabulary_")  # nothing learned before fit
    fitted = encoder.fit(["a first text", "a second text"])
    assert fitted is encoder and hasattr(encoder, "vocabulary_")
    twin = clone(encoder)
    assert twin.get_params() == encoder.get_params() and not hasattr(twin, "vocabulary_")
    twin.set_params(sublinear_tf=False)
    assert twin.sublinear_tf is False and encoder.sublinear_tf is True


def test_onehot_document_and_word_level() -> None:
    encoder = OneHotEncoder().fit(["red green blue", "green green yellow"])
    multi = encoder.encode("green green red unknown").toarray()[0]
    vocab = encoder.vocabulary_
    assert multi[vocab["green"]] == 1.0 and multi[vocab["red"]] == 1.0 and multi.sum() == 2.0
    tokens = encoder.encode_tokens("green red unknown green")
    assert tokens.tokens == ["green", "red", "unknown", "green"]
    rows = tokens.vectors.toarray()
    assert rows.shape == (4, encoder.dim)
    assert rows[0, vocab["green"]] == 1 and rows[1, vocab["red"]] == 1
    assert rows[2].sum() == 0  # an unknown word is a zero row
    np.testing.assert_array_equal(rows[0], rows[3])


def test_bag_of_words_counts_and_binary() -> None:
    counts = BagOfWordsEncoder().fit(["spam spam eggs"])
    row = counts.encode("spam spam spam eggs").toarray()[0]
    assert row[counts.vocabulary_["spam"]] == 3 and row[counts.vocabulary_["eggs"]] == 1
    binary = BagOfWordsEncoder(binary=True).fit(["spam spam eggs"])
    assert binary.encode("spam spam spam").toarray().max() == 1.0


def test_hashing_needs_no_fit_and_matches_scikit_learn() -> None:
    encoder = HashingEncoder(n_features=2**10)
    texts = ["hashing needs no vocabulary", "", "collisions happen in narrow tables"]
    got = encoder.encode(texts)
    want = HashingVectorizer(n_features=2**10).transform(texts)
    assert got.shape == (3, 1024) and encoder.dim == 1024
    np.testing.assert_allclose(got.toarray(), want.toarray(), atol=1e-6)


@pytest.mark.parametrize("cls", ALL)
def test_bad_input(cls: type, corpus: list[str]) -> None:
    encoder = cls()
    with pytest.raises(NotFittedError, match=r"\.fit\(corpus\)"):
        encoder.encode(["too early"])
    with pytest.raises(InputError, match="empty corpus"):
        encoder.fit([])
    encoder.fit(corpus)
    empty = encoder.encode([])
    assert empty.shape == (0, encoder.dim) and sp.issparse(empty)
    assert encoder.encode([""]).nnz == 0  # an empty string is a zero vector
    assert encoder.encode("The cat").shape == (1, encoder.dim)  # one string, one row
    with pytest.raises(TypeError, match="item 1 is NoneType"):
        encoder.encode(["fine", None])
    with pytest.raises(TypeError, match="item 0 is int"):
        encoder.encode([42])
    with pytest.raises(TypeError, match="got None"):
        encoder.encode(None)
    with pytest.raises(TypeError, match="bytes"):
        encoder.encode(b"raw bytes")


@pytest.mark.parametrize("cls", [*ALL, HashingEncoder])
def test_batches_do_not_change_vectors(cls: type, corpus: list[str]) -> None:
    encoder = cls().fit(corpus)
    whole = encoder.encode(corpus * 5)
    batched = encoder.encode(corpus * 5, batch_size=3, progress=True)
    assert (whole != batched).nnz == 0


@pytest.mark.parametrize("cls", [*ALL, HashingEncoder])
def test_save_and_load_round_trip(cls: type, corpus: list[str], tmp_path) -> None:
    encoder = cls(analyzer=TextAnalyzer(stop_words="english", ngram_range=(1, 2))).fit(corpus)
    encoder.name = "mine"
    encoder.save(tmp_path / "enc")
    loaded = BaseEncoder.load(tmp_path / "enc")
    assert type(loaded) is cls and loaded.name == "mine"
    assert loaded.get_params() == encoder.get_params()
    probe = ["the planet market", "a cat", ""]
    assert (loaded.encode(probe) != encoder.encode(probe)).nnz == 0
    if cls is BM25Encoder:
        assert (loaded.encode_queries(probe) != encoder.encode_queries(probe)).nnz == 0
    assert cls.load(tmp_path / "enc").dim == encoder.dim


def test_load_errors(corpus: list[str], tmp_path) -> None:
    TfidfEncoder().fit(corpus).save(tmp_path / "enc")
    with pytest.raises(InputError, match="holds a TfidfEncoder, not a BM25Encoder"):
        BM25Encoder.load(tmp_path / "enc")
    with pytest.raises(InputError, match="no encoder.json"):
        BaseEncoder.load(tmp_path)
    (tmp_path / "enc" / "idf.npy").write_bytes(b"not numpy")
    with pytest.raises(CorruptFileError, match="idf.npy is corrupt"):
        BaseEncoder.load(tmp_path / "enc")
    (tmp_path / "enc" / "idf.npy").unlink()
    with pytest.raises(CorruptFileError, match="idf.npy is missing"):
        BaseEncoder.load(tmp_path / "enc")
    (tmp_path / "enc" / "encoder.json").write_text("{ truncated")
    with pytest.raises(CorruptFileError, match="encoder.json is corrupt"):
        BaseEncoder.load(tmp_path / "enc")
    spec = {"format": "embedcraft.encoder", "type": "os.system", "params": {}}
    (tmp_path / "enc" / "encoder.json").write_text(json.dumps(spec))
    with pytest.raises(CorruptFileError, match="unknown encoder type"):
        BaseEncoder.load(tmp_path / "enc")


def test_save_replaces_an_existing_folder_atomically(corpus: list[str], tmp_path) -> None:
    target = tmp_path / "enc"
    TfidfEncoder().fit(corpus[:2]).save(target)
    TfidfEncoder().fit(corpus).save(target)
    assert BaseEncoder.load(target).dim == TfidfEncoder().fit(corpus).dim
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc"]
    with pytest.raises(NotFittedError):
        TfidfEncoder().save(tmp_path / "unfitted")
    assert not (tmp_path / "unfitted").exists()
