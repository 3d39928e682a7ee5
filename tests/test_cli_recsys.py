"""The recommendation commands, run as a user would, on a small log written here."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cli_runner import run_many


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("recsys")
    lines = []
    for u in range(30):  # two tastes: items 1-8 and items 11-18, each user 6 of one group
        base = 1 if u < 15 else 11
        for t in range(6):
            lines.append(f"{u}\t{base + (u + t) % 8}\t4\t{1000 + t}")
    (root / "u.data").write_text("\n".join(lines) + "\n")
    (root / "u1.base").write_text("\n".join(line for n, line in enumerate(lines) if n % 6) + "\n")
    (root / "u1.test").write_text(
        "\n".join(line for n, line in enumerate(lines) if not n % 6) + "\n"
    )
    (root / "bad.csv").write_text("userId,movieId,rating\n1,2,five\n")
    commands = {
        "rec": ["recommend", "-r", "u.data", "-u", "3", "-k", "2", "--json"],
        "liked": [
            "recommend",
            "-r",
            "u.data",
            "--liked",
            "12",
            "13",
            "-k",
            "2",
            "-m",
            "popularity",
        ],
        "unknown": ["recommend", "-r", "u.data", "-u", "999"],
        "eval": ["eval", "recsys", "-r", "u.data", "-m", "popularity", "--json"],
        "bad": ["eval", "recsys", "-r", "bad.csv"],
        "u1": ["eval", "recsys", "-r", "u.data", "-m", "item2vec", "--split", "u1", "--json"],
        "content": ["eval", "recsys", "-r", "u.data", "-m", "content"],
    }
    return run_many(commands, cwd=root, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)


def test_recommend_for_a_known_user_stays_in_their_taste(runs) -> None:  # type: ignore[no-untyped-def]
    run = runs["rec"]
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert len(out) == 2  # user 3 saw 6 of items 1-8: the 2 left are the best
    assert all(1 <= int(r["item"]) <= 8 for r in out), out
    assert all(r["because"].startswith("because you liked ") for r in out)


def test_recommend_for_a_new_user_and_errors(runs) -> None:  # type: ignore[no-untyped-def]
    assert runs["liked"].returncode == 0, runs["liked"].stderr
    assert "12]" not in runs["liked"].stdout and "13]" not in runs["liked"].stdout
    unknown = runs["unknown"]
    assert unknown.returncode == 1 and "unknown user '999'" in unknown.stderr
    assert "--liked" in unknown.stderr
    bad = runs["bad"]
    assert bad.returncode == 1 and "rating on row 1 is not a number" in bad.stderr
    content = runs["content"]
    assert content.returncode == 2 and "needs item texts: --items FILE" in content.stderr
    for run in (unknown, bad, content):
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_eval_recsys_json_keys(runs) -> None:  # type: ignore[no-untyped-def]
    run = runs["eval"]
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert {"hr@10", "ndcg@10", "map@10", "coverage"} <= set(out)
    assert out["users"] == 30 and 0.0 <= out["ndcg@10"] <= out["hr@10"] <= 1.0


def test_eval_recsys_official_split(runs) -> None:  # type: ignore[no-untyped-def]
    run = runs["u1"]
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["split"] == "u1" and out["users"] == 30
    assert out["hr@10"] >= 0.9  # each user's test items are in their own taste group
