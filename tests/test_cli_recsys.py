"""The recommendation commands, run as a user would, on a small log written here."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import embedcraft
from cli_runner import command, run_many


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


# ---------------------------------------------------------------- progress and saved models
DEMO = Path(embedcraft.__file__).parent / "data" / "demo_interactions.tsv"
BAR = re.compile(r"\d+%\|")  # a tqdm bar, as it is written to a file


def _recommend(
    tmp_path: Path, *args: object, cache: str = "cache"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDCRAFT_CACHE": str(tmp_path / cache)}
    return subprocess.run(
        command(["recommend", "-r", DEMO, "-u", "user01", "-k", 3, "--json", *args]),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_progress_of_recommend_and_eval_recsys_goes_to_a_log_file(tmp_path: Path) -> None:
    """--progress shows item2vec's epochs (and eval's users) on stderr even when it is a file;
    --quiet and the default (not a terminal) show no bar."""
    base = ["recommend", "-r", DEMO, "-u", "user01", "-k", 3]
    evaluate = ["eval", "recsys", "-r", DEMO, "--json"]
    runs = run_many(
        {
            "progress": ["--progress", *base, "--model", "m1"],
            "after": [*base, "--model", "m2", "--progress"],
            "quiet": [*base, "--model", "m3", "--quiet"],
            "default": [*base, "--model", "m4"],
            "eval": [*evaluate, "--progress"],
            "eval_quiet": [*evaluate, "-q"],
        },
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    for key, run in runs.items():
        assert run.returncode == 0, (key, run.stderr)
    for key in ("progress", "after", "eval"):
        err = runs[key].stderr
        assert "item2vec" in err and "20/20" in err and BAR.search(err), (key, err)
    assert "users" in runs["eval"].stderr
    for key in ("quiet", "default", "eval_quiet"):
        assert not BAR.search(runs[key].stderr), (key, runs[key].stderr)
        assert "item2vec:" not in runs[key].stderr, (key, runs[key].stderr)


def test_recommend_saves_the_fitted_model_and_reuses_it(tmp_path: Path) -> None:
    first = _recommend(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "reusing" not in first.stderr
    saved = [p for p in (tmp_path / "cache" / "recommenders").iterdir() if p.is_dir()]
    assert len(saved) == 1
    stamp = [(p.name, p.stat().st_mtime_ns) for p in sorted(saved[0].iterdir())]

    second = _recommend(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "reusing the item2vec model" in second.stderr and "--refit" in second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout)
    assert [(p.name, p.stat().st_mtime_ns) for p in sorted(saved[0].iterdir())] == stamp

    refit = _recommend(tmp_path, "--refit")
    assert refit.returncode == 0, refit.stderr
    assert "reusing" not in refit.stderr
    assert [(p.name, p.stat().st_mtime_ns) for p in sorted(saved[0].iterdir())] != stamp

    other = _recommend(tmp_path, "-m", "popularity")  # other parameters: another model
    assert other.returncode == 0 and "reusing" not in other.stderr, other.stderr
    assert len([p for p in (tmp_path / "cache" / "recommenders").iterdir() if p.is_dir()]) == 2

    env = {**os.environ, "EMBEDCRAFT_CACHE": str(tmp_path / "cache")}
    info = subprocess.run(
        command(["cache", "info", "--json"]), env=env, capture_output=True, text=True, timeout=60
    )
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["recommenders"]["saved"] == 2
    cleared = subprocess.run(
        command(["cache", "clear", "--json"]), env=env, capture_output=True, text=True, timeout=60
    )
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cleared.stdout)["recommenders_removed"] == 2
    assert not [p for p in (tmp_path / "cache" / "recommenders").iterdir() if p.is_dir()]
    again = _recommend(tmp_path)  # cleared: fitted afresh
    assert again.returncode == 0 and "reusing" not in again.stderr, again.stderr


def test_recommend_refits_when_the_log_changes_or_the_saved_model_is_damaged(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log.tsv"
    log.write_bytes(DEMO.read_bytes())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDCRAFT_CACHE": str(tmp_path / "cache")}

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command(["recommend", "-r", log, "-u", "user01", "-k", 3, "--json", *args]),
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    assert run().returncode == 0
    log.write_text(DEMO.read_text() + "user01\td001\t1800000000\n")
    changed = run()
    assert changed.returncode == 0 and "reusing" not in changed.stderr, changed.stderr
    saved = [p for p in (tmp_path / "cache" / "recommenders").iterdir() if p.is_dir()]
    assert len(saved) == 2
    newest = max(saved, key=lambda p: p.stat().st_mtime_ns)
    (newest / "recommender.json").write_text("{not json")
    damaged = run()
    assert damaged.returncode == 0, damaged.stderr
    assert "is corrupt" in damaged.stderr and "fitting it again" in damaged.stderr
    again = run()
    assert "reusing" in again.stderr
    assert json.loads(again.stdout) == json.loads(changed.stdout)


def test_recommend_keeps_a_model_in_a_folder_given_with_model(tmp_path: Path) -> None:
    first = _recommend(tmp_path, "--model", "saved")
    assert first.returncode == 0, first.stderr
    assert "saved the fitted item2vec model to saved" in first.stderr
    assert (tmp_path / "saved" / "recommender.json").is_file()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDCRAFT_CACHE": str(tmp_path / "other")}
    alone = subprocess.run(  # no --ratings: the folder holds all a recommendation needs
        command(["recommend", "--model", "saved", "-u", "user01", "-k", 3, "--json"]),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert alone.returncode == 0, alone.stderr
    assert "reusing the item2vec model" in alone.stderr
    assert json.loads(alone.stdout) == json.loads(first.stdout)
    (tmp_path / "empty").mkdir()
    missing = subprocess.run(
        command(["recommend", "--model", "empty", "-u", "user01"]),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "empty is not a saved recommender" in missing.stderr, missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
