"""Usage errors found after argparse (an option needed unless another is given, options that
exclude each other, values out of range) exit 2 as argparse's own do, saying what to pass;
runtime problems (a missing or corrupt file) keep exit 1."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cli_runner import run_many

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}

RATINGS = "".join(f"{u}\t{1 + (u + t) % 8}\t4\t{1000 + t}\n" for u in range(6) for t in range(4))

USAGE: dict[str, tuple[list[object], str]] = {
    "retrieval_no_encoder": (["eval", "retrieval", "--data", "beir"], "--encoder"),
    "search_nothing": (["search", "apple"], "--docs FILE --encoder NAME, or --collection"),
    "search_docs_no_encoder": (["search", "apple", "--docs", "ok.txt"], "--docs needs --encoder"),
    "plot_no_encoder": (["plot", "ok.txt", "--png", "x.png"], "needs --encoder"),
    "plot_no_output": (["plot", "ok.txt", "-e", "tfidf"], "give --png OUT.png and/or --html"),
    "dedup_nothing": (["dedup"], "give SOURCE --encoder NAME, or --collection"),
    "ray_options": (
        ["encode", "-i", "ok.txt", "-o", "o.npz", "-e", "tfidf", "--workers", "2"],
        "need --engine ray",
    ),
    "batch_size_0": (
        ["encode", "-i", "ok.txt", "-o", "o.npz", "-e", "tfidf", "--batch-size", "0"],
        "--batch-size must be at least 1, got 0",
    ),
    "truncate_dim_0": (
        ["similarity", "a", "b", "-e", "minilm-l6-static", "--truncate-dim", "0"],
        "--truncate-dim must be at least 1",
    ),
    "alpha_2": (
        ["search", "apple", "--docs", "ok.txt", "-e", "bm25", "--alpha", "2"],
        "--alpha must be between 0 and 1",
    ),
    "cache_mb_0": (["serve", "--cache-mb", "0"], "--cache-mb must be above 0"),
    "sts_two_columns": (
        ["eval", "sts", "-e", "tfidf", "--pairs", "pairs.tsv", "--columns", "a,b"],
        "--columns takes three names",
    ),
    "recsys_no_items": (
        ["eval", "recsys", "-r", "u.data", "-m", "content"],
        "needs item texts: --items FILE",
    ),
    "words_nothing": (["eval", "words", "-v", "glove-6b-50d"], "give --pairs"),
    "sts_two_encoders": (  # the first one was silently not run
        ["eval", "sts", "-e", "tfidf", "-e", "bm25", "--pairs", "pairs.tsv"],
        "--encoder given twice (tfidf, bm25): this command runs one encoder",
    ),
    "compare_no_task": (["compare", "-e", "tfidf"], "no task"),
    "compare_columns_mismatch": (
        [
            "compare",
            "-e",
            "tfidf",
            "--sts",
            "pairs.tsv",
            "--columns",
            "a,b,c",
            "--columns",
            "d,e,f",
        ],
        "--columns",
    ),
}

RUNTIME: dict[str, tuple[list[object], str]] = {
    "missing_file": (["encode", "-i", "nowhere.txt", "-o", "o.npz", "-e", "tfidf"], "nowhere"),
    "missing_pairs": (["eval", "sts", "-e", "tfidf", "--pairs", "nowhere.tsv"], "nowhere"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("usage")
    (folder / "ok.txt").write_text("red apple\ngreen apple\n", encoding="utf-8")
    (folder / "u.data").write_text(RATINGS, encoding="utf-8")
    (folder / "beir").mkdir()
    (folder / "pairs.tsv").write_text(
        "sentence1\tsentence2\tscore\na cat\ta dog\t3\n", encoding="utf-8"
    )
    commands = {key: args for key, (args, _) in {**USAGE, **RUNTIME}.items()}
    return run_many(commands, folder, ENV, 300)


@pytest.mark.parametrize("key", sorted(USAGE))
def test_usage_errors_exit_2_and_say_what_to_pass(
    runs: dict[str, subprocess.CompletedProcess[str]], key: str
) -> None:
    run = runs[key]
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("embedcraft "), run.stderr
    assert ": error: " in lines[0] and USAGE[key][1] in lines[0]
    assert run.stdout == ""


@pytest.mark.parametrize("key", sorted(RUNTIME))
def test_runtime_errors_keep_exit_1(
    runs: dict[str, subprocess.CompletedProcess[str]], key: str
) -> None:
    run = runs[key]
    assert run.returncode == 1 and RUNTIME[key][1] in run.stderr, run.stderr


def test_the_eval_task_is_named(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert runs["sts_two_columns"].stderr.startswith("embedcraft eval sts: error: ")


def test_compare_sts_takes_columns_like_eval_sts(tmp_path: Path) -> None:
    rows = [("a cat sits", "a cat is sitting", 4.8), ("a man cooks", "a dog runs", 0.4)]
    rows += [("kids play", "children are playing", 4.5), ("the sun", "a red car", 0.2)]
    sick = "pair\tleft\tright\tgold\n" + "".join(
        f"{i}\t{a}\t{b}\t{s}\n" for i, (a, b, s) in enumerate(rows)
    )
    (tmp_path / "sick.tsv").write_text(sick, encoding="utf-8")
    (tmp_path / "stsb.tsv").write_text(
        "sentence1\tsentence2\tscore\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in rows),
        encoding="utf-8",
    )
    base = ["compare", "-e", "hashing", "--in-process", "--no-speed", "--json"]
    runs = run_many(
        {
            "without": [*base, "--sts", "sick.tsv"],
            "one": [*base, "--sts", "sick.tsv", "--columns", "left,right,gold"],
            "each": [
                *base,
                "--sts",
                "sick.tsv",
                "--sts",
                "stsb.tsv",
                "--columns",
                "left,right,gold",
                "--columns",
                "sentence1,sentence2,score",
            ],
            "eval": ["eval", "sts", "-e", "hashing", "--pairs", "sick.tsv", "--json"],
        },
        tmp_path,
        ENV,
        300,
    )
    hint = "choose them with --columns s1,s2,score"  # both name the flag that fixes it
    assert runs["eval"].returncode == 1 and hint in runs["eval"].stderr
    assert runs["without"].returncode == 1 and hint in runs["without"].stdout  # the task's cell
    one = json.loads(runs["one"].stdout)
    assert runs["one"].returncode == 0 and one["cells"][0]["scores"]["spearman"] > 0
    each = json.loads(runs["each"].stdout)
    assert runs["each"].returncode == 0, runs["each"].stderr
    assert [c["task"] for c in each["cells"]] == ["sts:sick", "sts:stsb"]
    assert all(c["scores"]["spearman"] > 0 for c in each["cells"])
