"""The `embedcraft compare` command end to end, in subprocesses like a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cli_runner import command
from test_compare import data  # noqa: F401  (the fixture of tiny task files)


def _run(args: list[object], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        command(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_compare_writes_table_markdown_csv_and_plot(
    data: dict[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    out = tmp_path / "report"
    args = [
        "compare", "-e", "tfidf", "-e", data["vec"], "--word-pairs", data["words"],
        "--sts", data["sts"], "--data", data["beir"], "--labelled", data["labelled"],
        "--text-column", "title,body", "--label-column", "topic",
        "--markdown", out / "table.md", "--csv", out / "scores.csv", "--plot", out / "plot.png",
    ]  # fmt: skip
    done = _run(args, tmp_path)
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    for column in ("words:words spearman", "sts:sts spearman", "retrieval:beir ndcg@10",
                   "classify:labelled logreg", "cluster:labelled v-measure", "texts/s",
                   "peak MiB"):  # fmt: skip
        assert column in header
    tfidf_row = next(line for line in done.stdout.splitlines() if line.startswith("tfidf"))
    assert tfidf_row.split()[-1] != "n/a"  # memory measured: each task in its own process
    assert "tfidf, words:words: skipped" in done.stdout
    assert (out / "table.md").read_text().startswith("| encoder |")
    assert "encoder,task,score,value" in (out / "scores.csv").read_text()
    assert (out / "plot.png").stat().st_size > 10_000
    assert "wrote the plot" in done.stderr


def test_compare_json_in_process(data: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    args = ["compare", "-e", "hashing", "--sts", data["sts"], "--in-process", "--json"]
    done = _run(args, tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["tasks"] == ["sts:sts", "speed"] and result["encoders"] == ["hashing"]
    sts = next(c for c in result["cells"] if c["task"] == "sts:sts")
    assert sts["scores"]["spearman"] > 0 and result["peak_mib"]["hashing"] is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sts", "missing.tsv"], "--sts missing.tsv: no such file"),
        (["--data", "nowhere"], "--data nowhere: no such folder"),
        (["--sts", "{sts}", "-e", "nonesuch"], "unknown encoder 'nonesuch'"),
        (["--labelled", "{sts}"], "no text column found; name it with --text-column"),
        (["--labelled", "{corpus}"], "no label column found"),
    ],
)
def test_compare_bad_requests_get_one_clear_line(
    data: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    extra: list[str],
    message: str,
) -> None:
    extra = [e.format(sts=data["sts"], corpus=data["beir"] / "corpus.jsonl") for e in extra]
    done = _run(["compare", "-e", "tfidf", *extra, "--in-process"], tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("embedcraft: error:") and message in done.stderr
    assert "Traceback" not in done.stderr


def test_compare_exits_1_when_no_task_gave_any_score(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("cat\tdog\t7.0\ncar\tbus\t6.0\ncat\tcar\t1.0\n", encoding="utf-8")
    args = ["compare", "-e", "hashing", "-e", "bm25", "--word-pairs", pairs, "--no-speed"]
    run = _run([*args, "--in-process"], tmp_path)
    assert run.returncode == 1, run.stdout
    assert "no task gave a score" in run.stderr and "no word vectors" in run.stdout
