"""The `embedcraft` command, run for real in a subprocess (`python -m embedcraft.cli ...`).

Each process costs about a second of imports, so independent commands are started together
(`_run_many`) and the checks on their results are separate tests.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from cli_runner import run_many
from embedcraft.encoders.sparse import HashingEncoder, TfidfEncoder

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
TIMEOUT = 120


def _command(args: list[object]) -> list[str]:
    return [sys.executable, "-m", "embedcraft.cli", *(str(a) for a in args)]


def cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `embedcraft ARGS...` and return its exit code and output."""
    return subprocess.run(
        _command(list(args)), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=TIMEOUT
    )


def _run_many(
    commands: dict[str, list[object]], cwd: Path
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Start every command at once (they are independent), then collect them all."""
    return run_many(commands, cwd, ENV, TIMEOUT)


def _json(result: subprocess.CompletedProcess[str]) -> object:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 1, nothing on stdout, exactly one 'embedcraft: error:' line on stderr; its text."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("embedcraft: error:"), lines[0]
    assert result.stdout == ""
    return lines[0]


# ----------------------------------------------------------------------------- --help
HELP_COMMANDS: dict[str, tuple[list[str], list[str]]] = {
    "top": (
        [],
        ["--debug", "--version", "models", "encode", "fit", "similarity", "search", "eval", "demo"],
    ),
    "models": (["models"], ["--json"]),
    "encode": (
        ["encode"],
        [
            "--encoder",
            "--input",
            "--output",
            "--column",
            "--id-column",
            "--fit-on",
            "--save-encoder",
            "--batch-size",
            "--json",
        ],
    ),
    "fit": (["fit"], ["--encoder", "--input", "--output", "--column", "--id-column", "--json"]),
    "similarity": (["similarity"], ["TEXT_A", "TEXT_B", "--encoder", "--fit-on", "--json"]),
    "search": (
        ["search"],
        ["QUERY", "--docs", "--encoder", "-k", "--column", "--id-column", "--json"],
    ),
    "eval retrieval": (["eval", "retrieval"], ["--data", "--encoder", "--split", "--json"]),
    "demo": (["demo"], ["-k", "--json"]),
}


@pytest.fixture(scope="module")
def help_results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, subprocess.CompletedProcess[str]]:
    cwd = tmp_path_factory.mktemp("help")
    return _run_many({k: [*words, "--help"] for k, (words, _) in HELP_COMMANDS.items()}, cwd)


@pytest.mark.parametrize("name", list(HELP_COMMANDS))
def test_help(help_results: dict[str, subprocess.CompletedProcess[str]], name: str) -> None:
    words, options = HELP_COMMANDS[name]
    result = help_results[name]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(" ".join(["usage: embedcraft", *words]))
    for option in options:
        assert option in result.stdout, f"{name} --help does not mention {option}"


# ----------------------------------------------------------------------------- models
def test_models_json(tmp_path: Path) -> None:
    entries = _json(cli("models", "--json", cwd=tmp_path))
    assert isinstance(entries, list)
    by_name = {e["name"]: e for e in entries}
    assert {"onehot", "bow", "tfidf", "bm25", "hashing"} <= set(by_name)
    for entry in entries:
        assert {"kind", "width", "needs_fit", "source", "description"} <= set(entry)
        assert isinstance(entry["needs_fit"], bool)
        assert entry["description"]
    assert by_name["hashing"]["needs_fit"] is False
    # the advertised width is the width the encoder really produces
    assert by_name["hashing"]["width"] == str(HashingEncoder().dim)
    for name in ("onehot", "bow", "tfidf", "bm25"):
        assert by_name[name]["needs_fit"] is True  # they learn a vocabulary


# ----------------------------------------------------------------------------- encode
# Sorted vocabulary of CORPUS_TXT (scikit-learn's default tokens): apple, car, green, red.
CORPUS_TXT = "red apple\ngreen apple\n\nred car\n"
VOCAB = ["apple", "car", "green", "red"]


@dataclass
class Runs:
    """Results of several commands run in one folder (their outputs stay there)."""

    folder: Path
    results: dict[str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Run the independent `encode` commands together; their outputs stay in this folder."""
    d = tmp_path_factory.mktemp("encode")
    (d / "corpus.txt").write_text(CORPUS_TXT, encoding="utf-8")
    (d / "reviews.csv").write_text(
        "sku,review,text\ns1,good good value,zzz\ns2,bad value,zzz\ns3,good,zzz\n",
        encoding="utf-8",
    )
    pq.write_table(
        pa.table({"id": [10, 20], "text": ["alpha beta", "beta gamma"]}), d / "input.parquet"
    )
    results = _run_many(
        {
            "txt": [
                "encode", "-i", "corpus.txt", "-o", "txt.npz", "-e", "tfidf",
                "--save-encoder", "tfidf_enc", "--json",
            ],
            "csv": [
                "encode", "--input", "reviews.csv", "--output", "csv.npz", "--encoder", "bow",
                "--column", "review", "--id-column", "sku", "--json",
            ],
            "parquet": [
                "encode", "-i", "input.parquet", "-o", "pq_out.parquet", "-e", "onehot",
                "--json",
            ],
            "npy": ["encode", "-i", "corpus.txt", "-o", "dense.npy", "-e", "tfidf"],
        },
        d,
    )  # fmt: skip
    # a second file encoded with the saved (already fitted) encoder; its words are mostly new
    (d / "more.jsonl").write_text(
        '{"id": "a", "text": "green car"}\n{"id": "b", "text": "blue boat"}\n', encoding="utf-8"
    )
    results["reuse"] = cli(
        "encode", "-i", "more.jsonl", "-o", "reuse.parquet", "-e", "tfidf_enc", "--json", cwd=d
    )
    return Runs(d, results)


def test_encode_txt_to_npz(encoded: Runs) -> None:
    report = _json(encoded.results["txt"])
    # one row per line, the empty middle line included
    assert report["rows"] == 4
    assert report["dim"] == len(VOCAB)
    assert report["sparse"] is True
    assert report["fitted_on"] is not None  # tfidf needed fitting: fitted on the input
    assert report["encoder"] == "tfidf"

    matrix = sp.load_npz(encoded.folder / "txt.npz")
    assert matrix.shape == (4, len(VOCAB))
    with np.load(encoded.folder / "txt.npz") as data:
        assert data["ids"].tolist() == ["1", "2", "3", "4"]
    dense = matrix.toarray()
    # "red apple": red and apple both occur in 2 of the 4 texts -> equal weights, L2-normalized
    half = 1 / math.sqrt(2)
    np.testing.assert_allclose(dense[0], [half, 0, 0, half], atol=1e-6)
    assert not dense[2].any()  # the empty line
    np.testing.assert_allclose(np.linalg.norm(dense[[0, 1, 3]], axis=1), 1.0, atol=1e-6)


def test_encode_saved_encoder_is_reused_without_refit(encoded: Runs) -> None:
    assert (encoded.folder / "tfidf_enc" / "encoder.json").is_file()
    report = _json(encoded.results["reuse"])
    assert report["rows"] == 2
    assert report["dim"] == len(VOCAB)  # same width as the first file: the saved vocabulary
    assert report["fitted_on"] is None

    table = pq.read_table(encoded.folder / "reuse.parquet")
    assert table.num_rows == 2
    assert table.column("id").to_pylist() == ["a", "b"]
    indices = table.column("indices").to_pylist()
    assert sorted(indices[0]) == [VOCAB.index("car"), VOCAB.index("green")]
    assert indices[1] == []  # "blue boat" has no word of the saved vocabulary: no refit


def test_encode_csv_custom_columns(encoded: Runs) -> None:
    report = _json(encoded.results["csv"])
    assert report["rows"] == 3
    # vocabulary of the review column only: bad, good, value (the "text" column is ignored)
    assert report["dim"] == 3
    assert report["encoder"] == "bow"
    matrix = sp.load_npz(encoded.folder / "csv.npz")
    np.testing.assert_array_equal(matrix.toarray(), [[0, 2, 1], [1, 0, 1], [0, 1, 0]])
    with np.load(encoded.folder / "csv.npz") as data:
        assert data["ids"].tolist() == ["s1", "s2", "s3"]


def test_encode_parquet_to_parquet(encoded: Runs) -> None:
    report = _json(encoded.results["parquet"])
    assert report["rows"] == 2
    assert report["dim"] == 3  # alpha, beta, gamma
    table = pq.read_table(encoded.folder / "pq_out.parquet")
    assert table.num_rows == 2
    assert table.column("id").to_pylist() == ["10", "20"]
    # one-hot over the sorted vocabulary alpha(0), beta(1), gamma(2)
    assert [sorted(row) for row in table.column("indices").to_pylist()] == [[0, 1], [1, 2]]
    assert table.column("values").to_pylist() == [[1.0, 1.0], [1.0, 1.0]]


def test_encode_sparse_to_npy_is_a_one_line_error(encoded: Runs) -> None:
    line = _assert_one_line_error(encoded.results["npy"])
    assert ".npz" in line
    assert not (encoded.folder / "dense.npy").exists()
    assert not [p for p in encoded.folder.iterdir() if p.name.startswith(".dense.npy")]


# ------------------------------------------------------------------ fit, similarity, search
def test_fit_then_similarity_and_search_with_saved_folder(tmp_path: Path) -> None:
    (tmp_path / "docs.txt").write_text(
        "apple orchard\nbanana plantation\ncherry blossom\n", encoding="utf-8"
    )
    report = _json(
        cli("fit", "-e", "bm25", "-i", "docs.txt", "-o", "bm25_enc", "--json", cwd=tmp_path)
    )
    assert report["texts"] == 3
    assert report["dim"] == 6  # six distinct non-stop words, one stem each
    assert (tmp_path / "bm25_enc" / "encoder.json").is_file()

    results = _run_many(
        {
            "sim": ["similarity", "apple", "apple orchard", "--encoder", "bm25_enc", "--json"],
            "search": ["search", "banana", "--docs", "docs.txt", "-e", "bm25_enc", "--json"],
        },
        tmp_path,
    )
    sim = _json(results["sim"])
    assert sim["metric"] == "dot"
    assert sim["fitted_on"] is None  # the saved corpus statistics are used, not the pair
    # BM25 by hand: N=3, df=1 -> idf = ln(1 + 2.5/1.5) = ln(8/3); dl = avgdl = 2, tf = 1 ->
    # tf * (k1 + 1) / (tf + k1) = 1, so the score is the idf itself.
    assert sim["score"] == pytest.approx(math.log(8 / 3), abs=1e-5)

    hits = _json(results["search"])
    assert hits[0]["id"] == "2"
    assert hits[0]["text"] == "banana plantation"
    assert hits[0]["score"] > 0
    assert all(h["score"] == 0 for h in hits[1:])
    assert len(hits) == 3


def test_similarity_tfidf(tmp_path: Path) -> None:
    results = _run_many(
        {
            "same": [
                "similarity", "the quick brown fox", "the quick brown fox", "-e", "tfidf", "--json",
            ],
            "unrelated": [
                "similarity", "quick brown fox", "lazy sleeping dog", "-e", "tfidf", "--json",
            ],
        },
        tmp_path,
    )  # fmt: skip
    same = _json(results["same"])
    assert same["metric"] == "cosine"
    assert same["encoder"] == "tfidf"
    assert abs(same["score"] - 1.0) < 1e-6
    assert same["fitted_on"] is not None
    unrelated = _json(results["unrelated"])
    assert abs(unrelated["score"]) < 1e-6


def test_search_bm25_top_k(tmp_path: Path) -> None:
    (tmp_path / "docs.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "text": t}) + "\n"
            for i, t in [
                ("sun", "the sun is a star at the centre of the solar system"),
                ("pasta", "boil the pasta in salted water and add tomato sauce"),
                ("tomato", "tomato plants need sun and water"),
                ("market", "the stock market fell on monday"),
            ]
        ),
        encoding="utf-8",
    )
    hits = _json(
        cli(
            "search",
            "tomato pasta sauce",
            "--docs",
            "docs.jsonl",
            "-e",
            "bm25",
            "-k",
            "2",
            "--json",
            cwd=tmp_path,
        )
    )
    assert isinstance(hits, list)
    assert len(hits) == 2
    for hit in hits:
        assert set(hit) == {"id", "score", "text"}
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert hits[0]["id"] == "pasta"
    assert hits[0]["text"].startswith("boil the pasta")
    assert hits[1]["id"] == "tomato"  # the only other document with a query word
    assert hits[0]["score"] > hits[1]["score"] > 0


# ----------------------------------------------------------------------------- eval retrieval
def _beir_folder(root: Path) -> Path:
    """A tiny BEIR folder whose metrics are worked out by hand below.

    Every document has three tokens after BM25's analysis (stop words removed, stemmed):
    d1 appl/orchard/harvest, d2 letter/alpha/beta, d3 letter/beta/gamma, d4 fruit/banana/mango.
    """
    data = root / "tinybeir"
    (data / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Apple", "text": "orchard harvest"},
        {"_id": "d2", "title": "Letters", "text": "alpha beta"},
        {"_id": "d3", "title": "Letters", "text": "beta gamma"},
        {"_id": "d4", "title": "Fruit", "text": "banana mango"},
    ]
    queries = [
        {"_id": "q1", "text": "apple"},
        {"_id": "q2", "text": "alpha beta"},
        {"_id": "q3", "text": "mango"},
        {"_id": "q4", "text": "orchard"},  # no judgement at all
        {"_id": "q5", "text": "gamma"},  # only a zero-grade judgement
    ]
    (data / "corpus.jsonl").write_text(
        "".join(json.dumps(c) + "\n" for c in corpus), encoding="utf-8"
    )
    (data / "queries.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8"
    )
    qrels = [
        ("q1", "d1", 2),
        ("q1", "d99", 1),  # relevant but absent from the corpus: never retrievable
        ("q2", "d3", 1),
        ("q3", "d4", 1),
        ("q3", "d1", 0),
        ("q5", "d3", 0),
    ]
    (data / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels),
        encoding="utf-8",
    )
    return data


def test_eval_retrieval(tmp_path: Path) -> None:
    data = _beir_folder(tmp_path)
    results = _run_many(
        {
            "test": ["eval", "retrieval", "--data", data, "--encoder", "bm25", "--json"],
            "dev": ["eval", "retrieval", "--data", data, "-e", "bm25", "--split", "dev"],
        },
        tmp_path,
    )
    report = _json(results["test"])
    # q1: only d1 matches -> rank 1. DCG = 2; ideal grades [2, 1] -> IDCG = 2 + 1/log2(3).
    #     recall = 1/2 (d99 is not in the corpus); RR = 1.
    # q2: d2 holds both query words, d3 only "beta", same length -> d2 > d3 > rest.
    #     relevant d3 at rank 2: nDCG = (1/log2 3) / 1; recall 1; RR 1/2.
    # q3: only d4 matches -> rank 1: nDCG 1, recall 1, RR 1.
    ndcg_q1 = 2 / (2 + 1 / math.log2(3))
    ndcg_q2 = 1 / math.log2(3)
    assert report["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2 + 1) / 3, abs=1e-9)
    assert report["recall@100"] == pytest.approx((0.5 + 1 + 1) / 3, abs=1e-9)
    assert report["mrr@10"] == pytest.approx((1 + 0.5 + 1) / 3, abs=1e-9)
    assert report["queries"] == 3
    assert report["skipped_queries"] == 2  # q4 and q5
    assert report["documents"] == 4
    assert report["encoder"] == "bm25"
    assert report["fitted_on_corpus"] is True

    line = _assert_one_line_error(results["dev"])
    assert "dev" in line
    assert "test" in line  # names the split that does exist


# ----------------------------------------------------------------------------- exit codes
@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    d = tmp_path_factory.mktemp("failures")
    (d / "ok.txt").write_text("red apple\ngreen apple\n", encoding="utf-8")
    (d / "bad.txt").write_bytes(b"fine line\nanother fine line\nbroken \xff byte\nlast\n")
    encoder = TfidfEncoder().fit(["red apple", "green apple"])
    encoder.save(d / "broken_enc")
    (d / "broken_enc" / "encoder.json").write_text("{{{ not json at all", encoding="utf-8")
    results = _run_many(
        {
            "unknown_option": ["encode", "-i", "ok.txt", "-o", "o.npz", "-e", "tfidf", "--bogus"],
            "missing_required": ["encode", "-i", "ok.txt", "-e", "tfidf"],
            "unknown_encoder": ["similarity", "a b", "c d", "--encoder", "tfdif"],
            "missing_input": ["encode", "-i", "nowhere.txt", "-o", "o1.npz", "-e", "tfidf"],
            "bad_utf8": ["encode", "-i", "bad.txt", "-o", "o2.npz", "-e", "tfidf"],
            "corrupt": ["search", "apple", "--docs", "ok.txt", "-e", "broken_enc"],
            "corrupt_debug": ["--debug", "search", "apple", "--docs", "ok.txt", "-e", "broken_enc"],
            "k0": ["search", "apple", "--docs", "ok.txt", "-e", "bm25", "-k", "0"],
        },
        d,
    )
    return Runs(d, results)


def test_usage_errors_exit_2(failures: Runs) -> None:
    unknown = failures.results["unknown_option"]
    assert unknown.returncode == 2
    assert "--bogus" in unknown.stderr
    missing = failures.results["missing_required"]
    assert missing.returncode == 2
    assert "--output" in missing.stderr
    for result in (unknown, missing):
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


def test_k_zero_is_refused(failures: Runs) -> None:
    result = failures.results["k0"]
    assert result.returncode == 2  # a bad option value: a usage error
    assert "Traceback" not in result.stderr
    assert "-k" in result.stderr
    assert result.stdout == ""


def test_unknown_encoder_suggests_close_names(failures: Runs) -> None:
    line = _assert_one_line_error(failures.results["unknown_encoder"])
    assert "tfdif" in line
    assert "tfidf" in line


def test_missing_input_file(failures: Runs) -> None:
    line = _assert_one_line_error(failures.results["missing_input"])
    assert "nowhere.txt" in line


def test_invalid_utf8_names_the_line(failures: Runs) -> None:
    line = _assert_one_line_error(failures.results["bad_utf8"])
    assert "bad.txt" in line
    assert "line 3" in line


def test_corrupt_saved_encoder(failures: Runs) -> None:
    line = _assert_one_line_error(failures.results["corrupt"])
    assert "encoder.json" in line


def test_debug_shows_the_traceback(failures: Runs) -> None:
    result = failures.results["corrupt_debug"]
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "encoder.json" in result.stderr


def test_failed_runs_write_no_output(failures: Runs) -> None:
    names = sorted(p.name for p in failures.folder.iterdir())
    assert names == ["bad.txt", "broken_enc", "ok.txt"]  # no output, no temporary file


def test_an_argument_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    """A byte 0xff in argv reached the tokenizer as a lone surrogate: "TextEncodeInput must be
    Union[...]"."""
    argv = [
        sys.executable,
        "-m",
        "embedcraft.cli",
        "similarity",
        b"caf\xe9",
        "b",
        "-e",
        "minilm-l3",
    ]
    run = subprocess.run(argv, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "embedcraft: error: argument 2 (b'caf\\xe9') is not valid UTF-8 (at byte 3); pass "
        "texts, names and paths as UTF-8"
    ]


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["search", "\udcff", "-c", "col"], "argument 2 (b'\\xff')"),
        (
            ["index", "docs.csv", "-c", "col", "-e", "bm25", "--column", "\udcc3\udca9x"],
            "argument 8",
        ),
        (["--where", "lang=\ud800"], "argument 2 ('lang=\\ud800')"),
    ],
)
def test_every_argument_is_checked_for_utf8(
    argv: list[str], shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from embedcraft.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"embedcraft: error: {shown}") and "not valid UTF-8" in err


# ----------------------------------------------------------------------------- demo
def test_demo_json(tmp_path: Path) -> None:
    report = _json(cli("demo", "--json", "-k", "2", cwd=tmp_path))
    assert report["k"] == 2
    runs = report["encoders"]
    sparse = ["onehot", "bow", "tfidf", "bm25", "hashing"]
    assert [r["encoder"] for r in runs][:5] == sparse
    from embedcraft.demo import DEMO_ENCODERS

    assert [r["encoder"] for r in runs][5:] + list(report["skipped"]) == list(DEMO_ENCODERS[5:])
    for run in runs:
        assert len(run["hits"]) == 12, run["encoder"]
        assert run["dim"] > 0
        assert 0.0 <= run["topic_precision"] <= 1.0
        for query, hits in run["hits"].items():
            assert len(hits) == 2, (run["encoder"], query)
            scores = [h["score"] for h in hits]
            assert scores == sorted(scores, reverse=True)
            assert [h["rank"] for h in hits] == [1, 2]


def test_python_dash_m_embedcraft_debug_anywhere_and_a_closed_pipe(tmp_path: Path) -> None:
    """`python -m embedcraft` is the command; `--debug` after the subcommand is accepted; a
    reader that stops early (`| head`) is not an error."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "embedcraft", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("embedcraft ")
    done = subprocess.run(
        [sys.executable, "-m", "embedcraft", "models", "--json", "--debug"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    docs = tmp_path / "docs.txt"  # hits whose JSON is far more than a pipe holds (64 KiB)
    docs.write_text(
        "".join(f"document {i} about a cat " + "and more words " * 20 + "\n" for i in range(800)),
        encoding="utf-8",
    )
    search = f"search cat --docs {docs} --encoder hashing -k 800 --json"
    piped = subprocess.run(
        f"{sys.executable} -m embedcraft {search} | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert len(piped.stdout) == 10
    assert "Broken pipe" not in piped.stderr and "Traceback" not in piped.stderr, piped.stderr
