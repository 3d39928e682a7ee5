"""`embedcraft tokens`, `embedcraft eval sts` and the contextual rows of `embedcraft models`, run
for real in subprocesses (`python -m embedcraft.cli ...`).

The six commands are independent, so one module fixture starts them together and the tests
check their results; values are compared with the library called in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli_runner import run_many
from embedcraft.errors import MissingDependencyError

TIMEOUT = 180
RIVER_AND_MONEY = [
    "We sat on the bank of the river.",
    "The muddy river bank was steep.",
    "I deposited cash at the bank.",
]
TOKEN_TEXT = "Unbelievably good embeddings."
PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("A man is playing a guitar.", "A woman is slicing an onion.", 0.2),
    ("A woman is slicing an onion.", "Someone is cutting an onion.", 4.2),
    ("The cat sleeps on the sofa.", "A cat is sleeping on a couch.", 4.6),
    ("The cat sleeps on the sofa.", "Stocks fell sharply on Monday.", 0.0),
    ("Stocks fell sharply on Monday.", "The market dropped at the start of the week.", 3.9),
    ("A child rides a horse.", "A kid is riding a pony.", 3.8),
    ("A child rides a horse.", "A man plays the guitar.", 0.4),
    ("Two dogs run in a field.", "Dogs are running through the grass.", 4.0),
    ("Two dogs run in a field.", "The market dropped at the start of the week.", 0.1),
]
SICK_COLUMNS = ("sentence_A", "sentence_B", "relatedness_score")


def _missing(name: str) -> str | None:
    from embedcraft.encoders.transformer import locate_model

    try:
        locate_model(name)
    except MissingDependencyError as exc:
        return str(exc)
    return None


def _write_pairs(path: Path, header: tuple[str, str, str]) -> Path:
    lines = ["id\t" + "\t".join(header)]
    lines += [f"{i}\t{a}\t{b}\t{s}" for i, (a, b, s) in enumerate(PAIRS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-contextual")
    return {
        "root": root,
        "stsb": _write_pairs(root / "pairs.tsv", ("sentence1", "sentence2", "score")),
        "sick": _write_pairs(root / "sick.tsv", SICK_COLUMNS),
    }


@pytest.fixture(scope="module")
def runs(files: dict[str, Path]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every command at once and collect the results."""
    commands: dict[str, list[object]] = {
        "models": ["models", "--json"],
        "tfidf": ["tokens", "some text", "-e", "tfidf"],
    }
    if _missing("minilm-l3") is None:
        commands |= {
            "word": ["tokens", *RIVER_AND_MONEY, "-e", "minilm-l3", "--word", "bank", "--json"],
            "tokens": ["tokens", TOKEN_TEXT, "-e", "minilm-l3", "--json"],
            "sts": ["eval", "sts", "-e", "minilm-l3", "--pairs", files["stsb"], "--json"],
            "sick": [
                "eval", "sts", "-e", "minilm-l3", "--pairs", files["sick"],
                "--columns", ",".join(SICK_COLUMNS),
                "--truncate-dim", "64", "--quantize", "binary", "--json",
            ],
        }  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDCRAFT_CACHE": str(files["root"] / "cache")}
    return run_many(commands, files["root"], env, TIMEOUT)


def _result(runs: dict[str, subprocess.CompletedProcess[str]], key: str) -> Any:
    """The JSON a command printed, or a skip when minilm-l3 is not installed."""
    if key not in runs:
        pytest.skip(_missing("minilm-l3") or "minilm-l3 is missing")
    result = runs[key]
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def l3() -> Any:
    from embedcraft.encoders.transformer import TransformerEncoder

    reason = _missing("minilm-l3")
    if reason:
        pytest.skip(reason)
    return TransformerEncoder("minilm-l3")


# ------------------------------------------------------------------------- tokens
def test_tokens_word_gives_the_cosine_matrix(runs, l3) -> None:  # type: ignore[no-untyped-def]
    out = _result(runs, "word")
    assert out["word"] == "bank" and out["texts"] == RIVER_AND_MONEY
    sims = np.array(out["cosine"])
    assert sims.shape == (3, 3)
    np.testing.assert_allclose(np.diag(sims), 1.0, atol=1e-5)
    np.testing.assert_allclose(sims, sims.T, atol=1e-6)
    vectors = np.vstack([l3.encode_tokens(t).word_vector("bank") for t in RIVER_AND_MONEY])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(sims, unit @ unit.T, atol=1e-5)


def test_tokens_lists_word_pieces(runs, l3) -> None:  # type: ignore[no-untyped-def]
    (out,) = _result(runs, "tokens")
    assert out["text"] == TOKEN_TEXT
    assert out["tokens"][0] == "[CLS]" and out["tokens"][-1] == "[SEP]"
    want = l3.encode_tokens(TOKEN_TEXT)
    assert out["tokens"] == want.tokens
    assert [tuple(o) for o in out["offsets"]] == want.offsets
    assert len(out["tokens"]) > len(TOKEN_TEXT.split()) + 3  # long words split into pieces


def test_tokens_of_a_sparse_encoder_is_a_one_line_error(runs) -> None:  # type: ignore[no-untyped-def]
    result = runs["tfidf"]
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("embedcraft: error:"), result.stderr
    assert "tfidf" in lines[0] and "transformer" in lines[0]


# ------------------------------------------------------------------------- eval sts
def test_eval_sts_json_matches_the_library(runs, l3, files) -> None:  # type: ignore[no-untyped-def]
    from embedcraft.evaluate.sts import evaluate_sts

    out = _result(runs, "sts")
    assert {"spearman", "pearson", "pairs"} <= set(out)
    assert out["pairs"] == len(PAIRS) and out["encoder"] == "minilm-l3"
    want = evaluate_sts(l3, files["stsb"])
    assert out["spearman"] == pytest.approx(want.spearman, abs=1e-6)
    assert out["pearson"] == pytest.approx(want.pearson, abs=1e-6)


def test_eval_sts_with_columns_and_binary_truncated_vectors(runs, l3, files) -> None:  # type: ignore[no-untyped-def]
    from embedcraft.encoders.postprocess import PostProcessedEncoder
    from embedcraft.evaluate.sts import evaluate_sts

    out = _result(runs, "sick")
    assert out["pairs"] == len(PAIRS)
    assert "minilm-l3" in out["encoder"] and "64" in out["encoder"]
    assert "binary" in out["encoder"]
    wrapped = PostProcessedEncoder(l3, truncate_dim=64, quantize="binary")
    want = evaluate_sts(wrapped, files["sick"], SICK_COLUMNS)
    assert out["spearman"] == pytest.approx(want.spearman, abs=1e-6)
    assert out["pearson"] == pytest.approx(want.pearson, abs=1e-6)


# ------------------------------------------------------------------------- models
def test_models_lists_the_transformers(runs) -> None:  # type: ignore[no-untyped-def]
    result = runs["models"]
    assert result.returncode == 0, result.stderr
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    for name in ("minilm-l6", "minilm-l3"):
        assert entries[name]["kind"] == "contextual"
        assert entries[name]["width"] == "384"
        assert entries[name]["needs_fit"] is False
