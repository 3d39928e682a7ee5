"""Semantic textual similarity: reading pair files, and correlations checked against scipy on
cosines computed by hand; minilm-l3 on STS-B as a regression floor when the shared data exists.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.feature_extraction.text import TfidfVectorizer

from cli_runner import run_many
from embedcraft.encoders.pooling import MeanPoolingEncoder
from embedcraft.encoders.sparse import TfidfEncoder
from embedcraft.errors import InputError, MissingDependencyError
from embedcraft.evaluate.sts import StsResult, evaluate_sts, read_sts_pairs
from embedcraft.words import WordVectors

# Sentences repeat across pairs, as in STS-B; every word is in the tiny vocabulary below.
PAIRS = [
    ("the cat sat on the mat", "a cat sat on a mat", 4.8),
    ("the cat sat on the mat", "the dog ran in the park", 0.6),
    ("the dog ran in the park", "a dog ran in a park", 4.6),
    ("a big dog ran", "the cat sat on the mat", 0.4),
    ("a big dog ran", "a dog ran in a park", 3.1),
    ("the sun is hot", "the sun is very hot", 4.4),
    ("the sun is hot", "a cat sat on a mat", 0.2),
    ("a cat ran in the park", "the dog ran in the park", 2.5),
]
_VOCABULARY = "the a cat sat on mat dog ran in park big sun is hot very"
WORDS = _VOCABULARY.split()


def _write(path: Path, header: list[str], rows: list[list[str]], newline: str = "\n") -> Path:
    lines = ["\t".join(header)] + ["\t".join(r) for r in rows]
    path.write_text(newline.join(lines) + newline, encoding="utf-8", newline="")
    return path


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    rows = [["main", s1, s2, f"{score:.3f}"] for s1, s2, score in PAIRS]
    return _write(tmp_path / "pairs.tsv", ["genre", "sentence1", "sentence2", "score"], rows)


def _correlations(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Spearman and Pearson of the pairs' cosines against the gold scores (scipy)."""
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    gold = [score for _, _, score in PAIRS]
    return float(stats.spearmanr(gold, cos).statistic), float(stats.pearsonr(gold, cos).statistic)


# ------------------------------------------------------------------------- reading
@pytest.mark.parametrize("newline, bom", [("\n", ""), ("\r\n", "\ufeff")])
def test_read_pairs_keeps_quotes_literally(tmp_path: Path, newline: str, bom: str) -> None:
    rows = [
        ["news", '"Hello," she said.', "She said hello.", "4.2"],
        ["news", 'A "quoted" word.', '"Unclosed quote begins here', "1"],
        ["news", "Last one.", "Final one.", "0.25"],
    ]
    path = _write(
        tmp_path / "q.tsv",
        [bom + "genre", "sentence1", "sentence2", "score"],
        rows,
        newline,
    )
    first, second, scores = read_sts_pairs(path)
    assert first == ['"Hello," she said.', 'A "quoted" word.', "Last one."]
    assert second == ["She said hello.", '"Unclosed quote begins here', "Final one."]
    assert scores.dtype == np.float64
    np.testing.assert_array_equal(scores, [4.2, 1.0, 0.25])


def test_read_pairs_with_named_columns(tmp_path: Path) -> None:
    header = ["pair_ID", "sentence_A", "sentence_B", "relatedness_score"]
    path = _write(tmp_path / "sick.tsv", header, [["1", "A boy runs.", "A kid runs.", "4.5"]])
    first, second, scores = read_sts_pairs(
        path, columns=("sentence_A", "sentence_B", "relatedness_score")
    )
    assert (first, second, list(scores)) == (["A boy runs."], ["A kid runs."], [4.5])


def test_bad_score_names_the_line(tmp_path: Path) -> None:
    rows = [["a", "b", "1.0"], ["c", "d", "2.0"], ["e", "f", "n/a"], ["g", "h", "3"]]
    path = _write(tmp_path / "bad.tsv", ["sentence1", "sentence2", "score"], rows)
    with pytest.raises(InputError, match=r"line 4\b.*'n/a'"):
        read_sts_pairs(path)


def test_missing_column_lists_the_columns(tmp_path: Path) -> None:
    header = ["pair_ID", "left", "right", "gold"]  # neither STS-B's nor SICK's names
    path = _write(tmp_path / "pairs.tsv", header, [["1", "A boy runs.", "A kid runs.", "4.5"]])
    with pytest.raises(InputError) as info:
        read_sts_pairs(path)
    message = str(info.value)
    assert "sentence1" in message
    for column in header:
        assert column in message
    assert "--columns" in message


def test_file_without_pairs(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.tsv", ["sentence1", "sentence2", "score"], [])
    with pytest.raises(InputError, match="no sentence pairs"):
        read_sts_pairs(path)


# ------------------------------------------------------------------------- evaluating
def test_sparse_encoder_is_fitted_on_the_sentences_and_matches_scipy(
    pairs_file: Path,
) -> None:
    result = evaluate_sts(TfidfEncoder(), pairs_file)
    assert isinstance(result, StsResult)
    assert result.fitted_on_sentences and result.pairs == len(PAIRS)
    # TfidfEncoder follows scikit-learn's TfidfVectorizer: fit it on the distinct sentences.
    distinct = sorted({s for s1, s2, _ in PAIRS for s in (s1, s2)})
    reference = TfidfVectorizer().fit(distinct)
    a = reference.transform([s1 for s1, _, _ in PAIRS]).toarray()
    b = reference.transform([s2 for _, s2, _ in PAIRS]).toarray()
    spearman, pearson = _correlations(a, b)
    assert result.spearman == pytest.approx(spearman, abs=1e-6)
    assert result.pearson == pytest.approx(pearson, abs=1e-6)
    assert result.to_dict()["spearman"] == result.spearman


def test_fitted_encoder_is_not_refitted(pairs_file: Path) -> None:
    encoder = TfidfEncoder().fit(["the cat", "the dog ran", "a sun"])
    result = evaluate_sts(encoder, pairs_file)
    assert not result.fitted_on_sentences
    assert list(encoder.get_feature_names_out()) == ["cat", "dog", "ran", "sun", "the"]


def test_dense_encoder_matches_scipy_on_hand_means(pairs_file: Path) -> None:
    rng = np.random.default_rng(3)
    table = {w: rng.normal(size=6) for w in WORDS}
    wv = WordVectors(WORDS, np.vstack([table[w] for w in WORDS]), name="tiny")
    result = evaluate_sts(MeanPoolingEncoder(wv), pairs_file)
    assert not result.fitted_on_sentences

    def mean(sentence: str) -> np.ndarray:
        return np.mean([table[w] for w in sentence.split()], axis=0)

    a = np.vstack([mean(s1) for s1, _, _ in PAIRS])
    b = np.vstack([mean(s2) for _, s2, _ in PAIRS])
    spearman, pearson = _correlations(a, b)
    assert result.spearman == pytest.approx(spearman, abs=1e-6)
    assert result.pearson == pytest.approx(pearson, abs=1e-6)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [["a cat", "a dog", "3"]],
            r"pairs\.tsv: 1 usable pair; a correlation needs at least 2",
        ),
        (
            [["a cat", "a dog", "3"], ["the sun", "a park", "3"]],
            "every gold score is 3",
        ),
    ],
)
def test_pairs_that_cannot_measure_a_correlation_are_clear_errors(
    tmp_path: Path, rows: list[list[str]], message: str
) -> None:
    """One pair raised scipy's ValueError; equal gold scores printed a ConstantInputWarning."""
    path = _write(tmp_path / "pairs.tsv", ["sentence1", "sentence2", "score"], rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=message):
            evaluate_sts(TfidfEncoder(), path)


def test_equal_cosines_for_every_pair_give_nan_without_a_warning(
    tmp_path: Path,
) -> None:
    rows = [
        ["cat", "dog", "1"],
        ["sun", "park", "4"],
        ["mat", "hot", "2"],
    ]  # no shared word
    path = _write(tmp_path / "pairs.tsv", ["sentence1", "sentence2", "score"], rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate_sts(TfidfEncoder(), path)  # every cosine is 0
    assert math.isnan(result.spearman) and math.isnan(result.pearson)


def test_cli_eval_sts_says_why_in_one_line(tmp_path: Path) -> None:
    """The CLI printed scipy's warning block, then "Spearman nan"."""
    header = ["sentence1", "sentence2", "score"]
    _write(
        tmp_path / "flat.tsv",
        header,
        [["a cat", "a dog", "3"], ["the sun", "a park", "3"]],
    )
    _write(tmp_path / "apart.tsv", header, [["cat", "dog", "1"], ["sun", "park", "4"]])
    runs = run_many(
        {
            "flat": ["eval", "sts", "--pairs", "flat.tsv", "-e", "tfidf"],
            "apart": ["eval", "sts", "--pairs", "apart.tsv", "-e", "tfidf", "--json"],
        },
        tmp_path,
        {**os.environ, "HF_HUB_OFFLINE": "1"},
        120,
    )
    assert runs["flat"].returncode == 1
    assert runs["flat"].stderr.strip().splitlines() == [
        "embedcraft: error: flat.tsv: every gold score is 3; a correlation needs scores that differ"
    ]
    assert runs["apart"].returncode == 0, runs["apart"].stderr
    assert json.loads(runs["apart"].stdout)["spearman"] is None
    assert runs["apart"].stderr.strip().splitlines() == [
        "note: apart.tsv: tfidf gives every pair the same score, so the correlation is undefined "
        "(nan; null in --json)"
    ]


@pytest.mark.shared_data
def test_minilm_l3_on_stsb_test(shared_data: Path) -> None:
    from embedcraft.encoders.transformer import TransformerEncoder, locate_model

    try:
        locate_model("minilm-l3")
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    result = evaluate_sts(TransformerEncoder("minilm-l3"), shared_data / "stsb" / "sts-test.tsv")
    assert result.pairs == 1379
    assert result.spearman >= 0.80  # measured 0.824


def test_sick_layout_is_read_without_naming_its_columns(tmp_path: Path) -> None:
    sick = tmp_path / "sick.tsv"
    sick.write_text(
        "pair_id\tsentence_A\tsentence_B\trelatedness_score\n"
        "1\tA man plays a guitar\tA person plays music\t4.1\n"
        "2\tA dog runs\tThe stock fell\t1.2\n",
        encoding="utf-8",
    )
    first, second, scores = read_sts_pairs(sick)
    assert first[1] == "A dog runs" and second[0] == "A person plays music"
    assert scores.tolist() == [4.1, 1.2]
