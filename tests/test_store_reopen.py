"""Collections reopened in a fresh process: every catalog encoder is rebuilt as it was, deleted
rows never come back, and a saved index that disagrees with the database is rebuilt, not trusted.

Each reopen runs `collection_child.py` in a new interpreter: nothing held in the creating
process's memory can stand in for what the collection folder must hold by itself.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedcraft.catalog import list_encoders
from embedcraft.encoders.contract import InputKind
from embedcraft.store import Collection
from store_docs import topic_vectors

CHILD = Path(__file__).with_name("collection_child.py")
CATALOG = [entry.name for entry in list_encoders() if entry.input_kind == InputKind.TEXT]
"""The text encoders: the child indexes texts (image collections reopen in test_store_images.py)."""


def child(*args: object, timeout: float = 900) -> dict:
    """Run a phase of collection_child.py in a fresh process; its JSON answer."""
    done = subprocess.run(
        [sys.executable, str(CHILD), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    """One collection per catalog name, made in one process and reopened in another."""
    root = tmp_path_factory.mktemp("catalog")
    first = child("make", root, *CATALOG)
    second = child("reopen", root, *CATALOG)
    return root, first, second


@pytest.mark.slow
@pytest.mark.parametrize("name", CATALOG)
def test_every_catalog_encoder_is_rebuilt_in_a_fresh_process(
    made: tuple[Path, dict, dict], name: str
) -> None:
    _, first, second = made
    assert "error" not in second[name], second[name]["error"]
    assert [hit[0] for hit in first[name]["hits"]] == [hit[0] for hit in second[name]["hits"]]
    np.testing.assert_allclose(
        [hit[1] for hit in first[name]["hits"]],
        [hit[1] for hit in second[name]["hits"]],
        atol=1e-4,
    )
    assert second[name]["count"] == 10  # the reopened collection took more documents
    assert "later0" in second[name]["after"]  # ...and finds them
    if second[name]["cos"] is not None:  # dense: the reopened encoder is the one that encoded
        floor = 0.98 if name == "minilm-l6" else 0.9999  # int8 activations move with the batch
        assert second[name]["cos"] >= floor


@pytest.mark.slow
def test_a_distilled_model_travels_with_its_collection(made: tuple[Path, dict, dict]) -> None:
    root = made[0]
    with Collection(root / "minilm-l6-static") as col:
        (slot,) = col._slots
        assert (slot.saved_folder / "table.npy").is_file()


@pytest.mark.slow
def test_a_collection_made_before_models_were_saved_rebuilds_from_the_catalog(
    made: tuple[Path, dict, dict], tmp_path: Path
) -> None:
    root = made[0]
    old = tmp_path / "old"
    shutil.copytree(root / "minilm-l6-distilled", old)
    shutil.rmtree(old / "encoders")  # as an earlier version left it: only the parameters
    shutil.rmtree(old / "indexes", ignore_errors=True)
    with sqlite3.connect(old / "collection.sqlite") as conn:  # ...under the name it had then
        (spec,) = conn.execute("SELECT spec FROM encoders").fetchone()
        spec = json.loads(spec)
        spec["name"] = spec["params"]["name"] = "minilm-l6-static"
        renamed = json.dumps(spec)
        conn.execute("UPDATE encoders SET name = 'minilm-l6-static', spec = ?", (renamed,))
    answer = child("search", old)
    assert len(answer["hits"]) == 10 and answer["finite"] == 10


def test_cli_index_search_index_with_the_static_model(tmp_path: Path) -> None:
    """The issue's reproduction: each command its own process."""
    docs = tmp_path / "docs.csv"
    docs.write_text("id,text\n1,Planets orbit the sun\n2,Stock markets fell\n", encoding="utf-8")
    more = tmp_path / "more.csv"
    more.write_text("id,text\n3,A comet passed the planet\n", encoding="utf-8")
    col = tmp_path / "col"

    def cli(*args: object) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "embedcraft.cli", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("index", docs, "-c", col, "-e", "minilm-l6-static")
    assert "Planets orbit the sun" in cli("search", "planets", "-c", col)
    cli("index", more, "-c", col)
    assert "comet" in cli("search", "comet", "-c", col)


@pytest.fixture
def vectors_folder(tmp_path: Path) -> Path:
    return topic_vectors(tmp_path / "wv")


def test_deleted_rows_stay_deleted_over_reopens(tmp_path: Path, vectors_folder: Path) -> None:
    path = tmp_path / "c"
    child("delete", path, vectors_folder)
    survivors = {f"d{i}" for i in range(1, 10, 2)}
    for _ in range(3):  # the first reopen catches the saved index up and saves it; the next
        answer = child("search", path)  # ones load that copy
        assert set(answer["hits"]) == survivors
        assert set(answer["nearest"]) == survivors and answer["finite"] == 5
        assert set(answer["sparse"]) == survivors


def _saved_dense(path: Path) -> Path:
    (folder,) = (path / "indexes").glob("dense-*")
    return folder


def test_an_index_saved_without_its_removed_rows_is_rebuilt(
    tmp_path: Path, vectors_folder: Path
) -> None:
    """Indexes saved by an earlier version forgot which rows were removed: never trust one."""
    path = tmp_path / "c"
    child("delete", path, vectors_folder)
    child("search", path)  # saves the caught-up index
    folder = _saved_dense(path)
    stamp = json.loads((folder / "stamp.json").read_text())
    stamp["files"].remove("alive.npy")
    from embedcraft.store._indexes import _digest

    stamp["digest"] = _digest([folder / f for f in stamp["files"]])
    (folder / "alive.npy").unlink()
    (folder / "stamp.json").write_text(json.dumps(stamp))
    answer = child("search", path)
    assert set(answer["nearest"]) == {f"d{i}" for i in range(1, 10, 2)}
    assert "alive.npy" in json.loads((folder / "stamp.json").read_text())["files"]


def test_a_saved_index_that_disagrees_with_the_database_is_rebuilt(
    tmp_path: Path, vectors_folder: Path
) -> None:
    """Rows changed behind the generation's back (a restored backup, a hand edit) are seen."""
    path = tmp_path / "c"
    child("delete", path, vectors_folder)
    child("search", path)
    with sqlite3.connect(path / "collection.sqlite") as conn:  # generation left as it was
        conn.execute("DELETE FROM vectors WHERE doc = (SELECT rowid FROM docs WHERE id = 'd9')")
        conn.execute("DELETE FROM docs WHERE id = 'd9'")
    answer = child("search", path)
    assert set(answer["nearest"]) == {"d1", "d3", "d5", "d7"}
    assert set(answer["hits"]) == {"d1", "d3", "d5", "d7"}
    assert set(answer["sparse"]) == {"d1", "d3", "d5", "d7"}


def test_a_collection_stored_by_the_previous_version_reopens(
    tmp_path: Path, vectors_folder: Path
) -> None:
    """Specs written before the encoder contract ({"type", "name", "params"}, the name not
    among the parameters) rebuild the same encoders, sparse and dense, in a fresh process."""
    path = tmp_path / "c"
    child("delete", path, vectors_folder)
    expected = child("search", path)
    with sqlite3.connect(path / Collection.DATABASE) as conn:
        rows = conn.execute("SELECT slot, spec FROM encoders").fetchall()
        for slot, stored in rows:
            spec = json.loads(stored)
            assert set(spec) == {"type", "name", "params"}  # the format is unchanged
            params = {k: v for k, v in spec["params"].items() if k != "name"}
            old = {"type": spec["type"], "name": spec["name"], "params": params}
            conn.execute("UPDATE encoders SET spec = ? WHERE slot = ?", (json.dumps(old), slot))
    shutil.rmtree(path / "indexes")  # rebuilt by the encoders the old specs give back
    answer = child("search", path)
    assert answer == expected and set(answer["sparse"]) == {f"d{i}" for i in range(1, 10, 2)}
