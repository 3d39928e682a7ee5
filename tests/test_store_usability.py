"""Collections a user can reason about (issue 20): indexing again encodes only what changed, a
filter on a key no document has says so, a minimum score, and hybrid scores that read as 0..1
with each side's own score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedcraft.encoders.pooling import MeanPoolingEncoder
from embedcraft.errors import InputError
from embedcraft.search import RRF_K
from embedcraft.store import Collection
from embedcraft.store.ingest import DocumentBatches, index_documents
from store_docs import documents, topic_vectors


@pytest.fixture(scope="module")
def vectors_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return topic_vectors(tmp_path_factory.mktemp("wv") / "tiny")


@pytest.fixture
def counted(vectors_folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    """A dense encoder that records every text it encodes as a document."""
    enc = MeanPoolingEncoder(str(vectors_folder), name="tiny-mean")
    seen: list[str] = []
    encode = enc.encode_documents  # what a collection encodes its documents with

    def recording(texts: Any, *args: Any, **kwargs: Any) -> Any:
        seen.extend([texts] if isinstance(texts, str) else list(texts))
        return encode(texts, *args, **kwargs)

    monkeypatch.setattr(enc, "encode_documents", recording)
    return enc, seen


def _jsonl(path: Path, texts: list[str], ids: list[str], meta: list[dict]) -> Path:
    rows = [{"id": i, "text": t, **m} for i, t, m in zip(ids, texts, meta, strict=True)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_indexing_again_encodes_only_new_and_changed_documents(
    tmp_path: Path, counted: tuple[Any, list[str]]
) -> None:
    """Indexing an unchanged file re-encoded every document."""
    enc, seen = counted
    texts, ids, meta = documents(30)
    meta = [{"topic": m["topic"]} for m in meta]
    source = _jsonl(tmp_path / "docs.jsonl", texts[:20], ids[:20], meta[:20])
    with Collection(tmp_path / "c", encoders=["bm25", enc]) as col:
        first = index_documents(col, DocumentBatches(source, batch_rows=7))
        assert (first.added, first.replaced, first.unchanged) == (20, 0, 0)
        assert len(seen) == 20
        seen.clear()
        again = index_documents(col, DocumentBatches(source, batch_rows=7))
        assert (again.added, again.replaced, again.unchanged) == (0, 0, 20)
        assert seen == []  # nothing encoded
        texts[3] = "zeppelin airship hangar"
        meta[5] = {"topic": "moved"}
        source = _jsonl(tmp_path / "docs.jsonl", texts, ids, meta)
        third = index_documents(col, DocumentBatches(source, batch_rows=7))
        assert (third.added, third.replaced, third.unchanged) == (10, 2, 18)
        assert sorted(seen) == sorted([texts[3], texts[5], *texts[20:]])
        assert col.count() == 30
        assert col.search("zeppelin", k=1, mode="sparse")[0].id == "d3"
        assert col.get("d5")[0].metadata == {"topic": "moved"}


def test_compare_stored_tells_new_unchanged_and_changed(tmp_path: Path) -> None:
    with Collection(tmp_path / "c", encoders=["bm25"]) as col:
        col.add(["a cat", "a dog"], ["a", "b"], [{"n": 1}, {"n": True}])
        states = col.compare_stored(
            ["a cat", "a dog", "a cow", "a cat"], ["a", "b", "c", "x"], [{"n": 1}, {"n": 1}, {}, {}]
        )
        assert states == ["unchanged", "changed", "new", "new"]  # True is not 1
        assert col.compare_stored(["a cat", "a cow"], ["a", "b"]) == ["unchanged", "changed"]
        # without metadata, texts alone are compared


@pytest.fixture
def hybrid(tmp_path: Path, vectors_folder: Path) -> Collection:
    texts, ids, meta = documents(80)
    texts[10] += " zeppelin"
    enc = MeanPoolingEncoder(str(vectors_folder), name="tiny-mean")
    col = Collection(tmp_path / "h", encoders=["bm25", enc])
    col.add(texts, ids, meta)
    return col


def test_a_filter_on_a_key_no_document_has_says_so(hybrid: Collection) -> None:
    """It returned an empty list, as for a filter that simply matched nothing."""
    with pytest.raises(InputError, match=r"no document has the metadata key 'topik'.*topic"):
        hybrid.search("kitten", k=5, where={"topik": "pets"})
    with pytest.raises(InputError, match="no document has the metadata key 'topik'"):
        hybrid.count(where={"topik": "pets"})
    with pytest.raises(InputError, match="no document has the metadata key 'nope'"):
        hybrid.nearest_ids(np.ones(24, dtype=np.float32), k=3, where={"nope": 1})
    assert hybrid.search("kitten", k=5, where={"topic": "nothing"}) == []  # a known key: empty
    assert hybrid.count(where={"topic": "nothing"}) == 0


def test_min_score_drops_weaker_hits(hybrid: Collection) -> None:
    dense = hybrid.search("kitten puppy", k=10, mode="dense")
    cut = dense[4].score
    kept = hybrid.search("kitten puppy", k=10, mode="dense", min_score=cut)
    assert [h.id for h in kept] == [h.id for h in dense if h.score >= cut]
    assert len(kept) < len(dense)
    assert hybrid.search("kitten puppy", k=10, mode="dense", min_score=2.0) == []
    assert all(h.score >= 0.5 for h in hybrid.search("zeppelin kitten", k=20, min_score=0.5))
    with pytest.raises(InputError, match="min_score"):
        hybrid.search("kitten", min_score=float("nan"))


def test_hybrid_scores_read_as_zero_to_one_with_each_sides_score(hybrid: Collection) -> None:
    """The fused rank score (0.0328 for a top hit) meant nothing to a reader."""
    query = "zeppelin kitten"
    hits = hybrid.search(query, k=30)
    dense = {h.id: h.score for h in hybrid.search(query, k=100, mode="dense")}
    sparse = {h.id: h.score for h in hybrid.search(query, k=100, mode="sparse")}
    dense_rank = {i: r for r, i in enumerate(dense, start=1)}
    sparse_rank = {i: r for r, i in enumerate(sparse, start=1)}
    for h in hits:
        fused = sum(
            1 / (RRF_K + ranks[h.id]) for ranks in (dense_rank, sparse_rank) if h.id in ranks
        )
        assert h.score == pytest.approx(fused / (2 / (RRF_K + 1)))  # 1.0: first on both sides
        assert 0 < h.score <= 1
        assert h.dense_score == (pytest.approx(dense[h.id]) if h.id in dense else None)
        assert h.sparse_score == (pytest.approx(sparse[h.id]) if h.id in sparse else None)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert any(h.sparse_score is None for h in hits)  # kitten documents without "zeppelin"
    as_json = hits[0].to_dict()
    assert {"score", "dense_score", "sparse_score"} <= set(as_json)
    one = hybrid.search(query, k=3, mode="dense")
    assert all(h.dense_score == h.score and h.sparse_score is None for h in one)
    weighted = hybrid.search(query, k=5, fusion="weighted", alpha=0.5)
    assert all(0 <= h.score <= 1 for h in weighted)
