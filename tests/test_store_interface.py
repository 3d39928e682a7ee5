"""One collection interface: `VectorCollection` is what `open_collection` returns, both backends
implement every member with the declared parameters, and collections register their encoders
through the encoder contract (the stored spec keeps the format earlier versions read)."""

from __future__ import annotations

import inspect
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from embedcraft.encoders.pooling import MeanPoolingEncoder
from embedcraft.encoders.sparse import BM25Encoder
from embedcraft.errors import InputError
from embedcraft.store import (
    Collection,
    PostgresCollection,
    VectorCollection,
    is_collection_folder,
    is_postgres_url,
    open_collection,
)
from embedcraft.text import TextAnalyzer
from embedcraft.words import WordVectors
from store_docs import documents, topic_vectors

ALSO = {"__len__", "__enter__", "__exit__"}


def _members() -> list[str]:
    """The methods and properties `VectorCollection` declares."""
    return sorted(
        name
        for name, value in vars(VectorCollection).items()
        if (callable(value) or isinstance(value, property))
        and (not name.startswith("_") or name in ALSO)
    )


def _parameters(function: object) -> list[tuple[str, object, object]]:
    """Name, kind and default of each parameter (annotations are checked by mypy)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_the_interface_declares_what_both_backends_share() -> None:
    members = _members()
    assert {"add", "upsert", "delete", "get", "ids", "search", "search_many"} <= set(members)
    assert {"nearest_ids", "search_vectors", "export", "close", "__enter__"} <= set(members)
    for cls in (Collection, PostgresCollection):
        for name in members:
            declared = inspect.getattr_static(VectorCollection, name)
            implemented = inspect.getattr_static(cls, name)
            if isinstance(declared, property):
                assert isinstance(implemented, property), (cls.__name__, name)
            else:
                assert _parameters(getattr(cls, name)) == _parameters(declared), (cls, name)


@pytest.fixture
def mean_encoder(tmp_path: Path) -> MeanPoolingEncoder:
    return MeanPoolingEncoder(str(topic_vectors(tmp_path / "wv")), name="tiny-mean")


def test_open_collection_gives_the_interface(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(20)
    assert not is_collection_folder(tmp_path / "c")
    with open_collection(tmp_path / "c", encoders=["bm25", mean_encoder]) as col:
        assert isinstance(col, VectorCollection) and isinstance(col, Collection)
        col.add(texts, ids, meta)
        query = np.asarray(mean_encoder.encode([texts[3]]), dtype=np.float32)
        found, scores = col.nearest_ids(query, k=3)
        hits = col.search_vectors(query, k=3)
        assert found == [[h.id for h in hits[0]]] and found[0][0] == "d3"
        np.testing.assert_allclose(scores[0], [h.score for h in hits[0]], atol=1e-6)
    assert is_collection_folder(tmp_path / "c") and is_collection_folder(str(tmp_path / "c"))
    assert not isinstance(object(), VectorCollection)


def test_postgres_urls_are_told_from_folders(tmp_path: Path) -> None:
    for url in ("postgresql://u@h/db", "postgres://h/db?table_prefix=x_"):
        assert is_postgres_url(url) and not is_collection_folder(url)
    for path in ("postgresql", tmp_path / "postgresql:", "./postgres://x"):
        assert not is_postgres_url(path)


def test_the_stored_spec_is_class_name_and_parameters(tmp_path: Path) -> None:
    """The `encoders` table keeps {"type", "name", "params"}: what earlier versions wrote and read;
    an analyzer parameter is stored as JSON and comes back equal."""
    analyzer = TextAnalyzer(stop_words="english", stemmer="english")
    bm25 = BM25Encoder(analyzer=analyzer, k1=1.5, name="stemmed")
    with Collection(tmp_path / "c", encoders=[bm25]) as col:
        col.add(["Running cats ran", "A dog sleeps"], ["a", "b"])
    with sqlite3.connect(tmp_path / "c" / Collection.DATABASE) as conn:
        ((name, stored),) = conn.execute("SELECT name, spec FROM encoders").fetchall()
    spec = json.loads(stored)
    assert name == "stemmed" and set(spec) == {"type", "name", "params"}
    assert spec["type"] == "BM25Encoder" and spec["params"]["k1"] == 1.5
    with Collection(tmp_path / "c") as col:
        rebuilt = col.encoder("stemmed")
        assert isinstance(rebuilt, BM25Encoder) and rebuilt.name == "stemmed"
        assert rebuilt.analyzer is not None and rebuilt.analyzer.to_dict() == analyzer.to_dict()
        assert [h.id for h in col.search("run", mode="sparse")] == ["a"]  # running -> run


def test_what_cannot_be_registered_is_a_clear_error(tmp_path: Path) -> None:
    in_memory = MeanPoolingEncoder(WordVectors(["cat"], np.ones((1, 3), np.float32)))
    with pytest.raises(InputError, match="cannot be stored.*folder"):
        Collection(tmp_path / "a", encoders=[in_memory])
    with pytest.raises(InputError, match="not an embedcraft encoder"):
        Collection(tmp_path / "b", encoders=[object()])  # type: ignore[list-item]
    with pytest.raises(InputError, match="named twice"):
        Collection(tmp_path / "c", encoders=["bm25", BM25Encoder()])
