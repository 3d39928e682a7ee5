"""Collection: storage round trips, dense/sparse/hybrid search against brute force, filters,
index persistence and repair, and clear errors that change nothing."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from embedcraft.encoders.base import BaseEncoder
from embedcraft.encoders.pooling import MeanPoolingEncoder, SIFEncoder
from embedcraft.errors import CorruptFileError, DimensionMismatchError, InputError
from embedcraft.search import RRF_K, reciprocal_rank_fusion
from embedcraft.store import Collection, HnswSettings
from store_docs import documents, topic_vectors


@pytest.fixture(scope="module")
def vectors_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return topic_vectors(tmp_path_factory.mktemp("wv") / "tiny")


@pytest.fixture
def mean_encoder(vectors_folder: Path) -> MeanPoolingEncoder:
    return MeanPoolingEncoder(str(vectors_folder), name="tiny-mean")


def _exact_top(col: Collection, query: str, k: int, allowed: set[str] | None = None) -> list[str]:
    """Brute-force cosine top-k over every stored document (or the allowed ones)."""
    return _exact(col, query, k, allowed)[0]


def _exact(
    col: Collection, query: str, k: int, allowed: set[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """Brute-force cosine top-k ids and scores."""
    enc = col.encoder("tiny-mean")
    ids = col.ids()
    docs = col.get(ids)
    keep = [i for i, d in enumerate(docs) if allowed is None or d.id in allowed]
    m = np.asarray(enc.encode([docs[i].text for i in keep]), dtype=np.float64)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    q = np.asarray(enc.encode([query]), dtype=np.float64)[0]
    q /= np.linalg.norm(q)
    scores = m @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return [ids[keep[i]] for i in order], scores[order]


def _recall_by_score(hits: list, exact_scores: np.ndarray) -> float:
    """Share of hits scoring at least the exact k-th score (robust to tied vectors)."""
    return sum(h.score >= exact_scores[-1] - 1e-5 for h in hits) / len(exact_scores)


def test_add_get_count_and_reopen(tmp_path: Path, mean_encoder: MeanPoolingEncoder) -> None:
    texts, ids, meta = documents(40)
    with Collection(tmp_path / "c", encoders=["bm25", mean_encoder]) as col:
        assert col.add(texts, ids, meta, batch_size=16) == ids
        assert col.count() == 40 and len(col) == 40
        assert col.count(where={"topic": "pets"}) == 10
    with Collection(tmp_path / "c") as col:
        assert col.encoder_names == ["bm25", "tiny-mean"]
        (doc,) = col.get("d7")
        assert doc.text == texts[7] and doc.metadata == meta[7]
        assert [d.id for d in col.get(["d3", "d1"])] == ["d3", "d1"]
        assert col.ids() == ids
        info = col.info()
        assert info["count"] == 40 and info["generation"] == 3  # three batches of 16
        assert [e["dim"] for e in info["encoders"]] == [None, 24]


def test_add_without_ids_makes_unique_ids(tmp_path: Path) -> None:
    col = Collection(tmp_path / "c", encoders=["bm25"])
    made = col.add(["one text", "another text"])
    assert len(set(made)) == 2 and all(isinstance(i, str) and i for i in made)


def test_duplicate_and_unknown_ids_are_errors_that_change_nothing(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(8)
    col = Collection(tmp_path / "c", encoders=["bm25", mean_encoder])
    col.add(texts, ids, meta)
    gen = col.generation()
    with pytest.raises(InputError, match="already in the collection.*upsert"):
        col.add(["new text cat", "another cat"], ["new", "d3"])
    with pytest.raises(InputError, match="appears twice"):
        col.add(["x cat", "y dog"], ["z", "z"])
    with pytest.raises(InputError, match=r"unknown id\(s\): 'nope'"):
        col.delete(["d1", "nope"])
    with pytest.raises(InputError, match="unknown id"):
        col.get(["d1", "missing"])
    assert col.count() == 8 and col.generation() == gen
    assert col.get("d1")[0].text == texts[1]


@pytest.mark.parametrize(
    ("texts", "ids", "metadata", "error", "match"),
    [
        ([""], ["a"], None, InputError, "empty text"),
        (["  \n"], ["a"], None, InputError, "empty text"),
        ([None], ["a"], None, TypeError, "item 0 is NoneType"),
        ([b"bytes"], ["a"], None, TypeError, "not str"),
        (["ok"], [""], None, InputError, "non-empty string"),
        (["ok"], [3], None, InputError, "non-empty string"),
        (["ok", "fine"], ["a"], None, InputError, "2 texts but 1 ids"),
        (["ok"], ["a"], [{"x": float("nan")}], InputError, "not JSON-serializable"),
        (["ok"], ["a"], ["not a mapping"], InputError, "must be a mapping"),
        (["ok"], ["a"], [{"x": object()}], InputError, "not JSON-serializable"),
    ],
)
def test_bad_documents_are_rejected_before_anything_is_written(
    tmp_path: Path, texts: list, ids: list, metadata: list | None, error: type, match: str
) -> None:
    col = Collection(tmp_path / "c", encoders=["bm25"])
    with pytest.raises(error, match=match):
        col.add(texts, ids, metadata)
    assert col.count() == 0 and col.generation() == 0


class NanOnMarkerEncoder(BaseEncoder):
    """A dense encoder that returns NaN for texts containing 'poison'."""

    name = "nan-on-marker"
    needs_fit = False

    @property
    def dim(self) -> int:
        return 3

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.ones((len(texts), 3), dtype=np.float32)
        out[["poison" in t for t in texts]] = np.nan
        return out


def test_a_batch_with_a_nan_vector_is_not_stored(tmp_path: Path) -> None:
    col = Collection(tmp_path / "c", encoders=[NanOnMarkerEncoder()])
    col.add(["fine one", "fine two"], ["a", "b"], batch_size=2)
    with pytest.raises(InputError, match="NaN|finite"):
        col.add(["fine three", "poison here", "fine four"], ["c", "d", "e"], batch_size=3)
    assert col.ids() == ["a", "b"]


def test_dense_search_matches_brute_force(tmp_path: Path, mean_encoder: MeanPoolingEncoder) -> None:
    texts, ids, meta = documents(120)
    col = Collection(tmp_path / "c", encoders=[mean_encoder])
    col.add(texts, ids, meta)
    for query in ["kitten and puppy", "stock price of a fund", "rocket to the moon"]:
        hits = col.search(query, k=7)
        assert [h.id for h in hits] == _exact_top(col, query, 7)
        assert [h.rank for h in hits] == list(range(1, 8))
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
        assert hits[0].metadata["topic"] == {"kitten": "pets", "stock": "money"}.get(
            query.split()[0], "space"
        )


def test_hnsw_recall_and_exact_filtered_results(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(600)
    settings = HnswSettings(threshold=200, m=16, ef_construction=64, ef_search=64)
    col = Collection(tmp_path / "c", encoders=[mean_encoder], hnsw=settings)
    col.add(texts, ids, meta, batch_size=200)
    assert col.search("cat", k=1)
    assert col.info()["encoders"][0]["index"]["kind"] == "hnsw"
    queries = ["kitten puppy vet", "bank bond trade", "soup oven bread", "comet galaxy star"]
    recall = np.mean(
        [_recall_by_score(col.search(q, k=10), _exact(col, q, 10)[1]) for q in queries]
    )
    assert recall >= 0.9
    by_id = {i: m for i, m in zip(ids, meta, strict=True)}
    filters = [
        ({"n": {"$lt": 12}}, lambda m: m["n"] < 12),  # selective: exact scan
        ({"even": True}, lambda m: m["even"]),  # half the rows: filtered HNSW
        ({"topic": {"$in": ["food", "space"]}, "score": {"$gte": 100}},
         lambda m: m["topic"] in ("food", "space") and m["score"] >= 100),
        ({"topic": {"$nin": ["pets"]}, "n": {"$ne": 5}},
         lambda m: m["topic"] != "pets" and m["n"] != 5),
    ]  # fmt: skip
    for where, test in filters:  # up to 20,000 admitted rows: an exact scan of them
        allowed = {i for i, m in by_id.items() if test(m)}
        for q in queries:
            hits = col.search(q, k=10, where=where)
            assert len(hits) == min(10, len(allowed))
            assert {h.id for h in hits} <= allowed
            _, exact_scores = _exact(col, q, 10, allowed)
            assert [h.score for h in hits] == pytest.approx(exact_scores, abs=1e-5)
    # a broad filter over a large collection walks the graph (here forced by exact_limit=0)
    col.hnsw.exact_limit = 0
    allowed = {i for i, m in by_id.items() if m["n"] < 400}
    for q in queries:
        hits = col.search(q, k=10, where={"n": {"$lt": 400}})
        assert len(hits) == 10 and {h.id for h in hits} <= allowed
        assert _recall_by_score(hits, _exact(col, q, 10, allowed)[1]) >= 0.8


def test_filter_returns_all_matches_when_fewer_than_k(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(300)
    col = Collection(tmp_path / "c", encoders=[mean_encoder], hnsw=HnswSettings(threshold=100))
    col.add(texts, ids, meta)
    hits = col.search("planet", k=10, where={"n": {"$in": [3, 77, 250]}})
    assert sorted(h.id for h in hits) == ["d250", "d3", "d77"]
    assert col.search("planet", k=10, where={"topic": "nothing"}) == []


def test_sparse_search_and_explanation(tmp_path: Path) -> None:
    texts, ids, meta = documents(50)
    texts[17] += " zeppelin"
    col = Collection(tmp_path / "c", encoders=["bm25"])
    col.add(texts, ids, meta)
    hits = col.search("zeppelin", k=5, explain=True)
    assert [h.id for h in hits] == ["d17"]  # only documents sharing a term are returned
    terms = hits[0].explanation["bm25"]["terms"]
    assert terms[0]["term"] == "zeppelin" and terms[0]["contribution"] == pytest.approx(
        hits[0].score, rel=1e-5
    )
    assert col.search("zeppelin", k=5, where={"topic": "pets"}) == []


def test_hybrid_fuses_both_sides(tmp_path: Path, mean_encoder: MeanPoolingEncoder) -> None:
    texts, ids, meta = documents(80)
    texts[10] += " zeppelin"
    col = Collection(tmp_path / "c", encoders=["bm25", mean_encoder])
    col.add(texts, ids, meta)
    query = "zeppelin kitten"
    hits = col.search(query, k=5, explain=True)
    dense = [h.id for h in col.search(query, k=100, mode="dense")]
    sparse = [h.id for h in col.search(query, k=100, mode="sparse")]
    expected = reciprocal_rank_fusion([dense, sparse], 5)
    assert [h.id for h in hits] == [key for key, _ in expected]
    top = 2 / (RRF_K + 1)  # first on both sides: shown as 1.0
    assert [h.score for h in hits] == pytest.approx([score / top for _, score in expected])
    for h in hits:
        assert set(h.explanation["scores"]) == {"bm25", "tiny-mean"} & {
            "bm25" if h.id in sparse else "",
            "tiny-mean" if h.id in dense else "",
        }
    dense_only = [h.id for h in col.search("kitten puppy", k=5, mode="dense")]
    blended = [h.id for h in col.search("kitten puppy", k=5, fusion="weighted", alpha=1.0)]
    assert blended[0] == dense_only[0]
    with pytest.raises(InputError, match="alpha"):
        col.search("x", alpha=2.0)
    with pytest.raises(InputError, match="no encoder 'nope'.*bm25, tiny-mean"):
        col.search("x", encoder="nope")


def test_search_modes_need_the_right_encoders(tmp_path: Path) -> None:
    col = Collection(tmp_path / "c", encoders=["bm25"])
    col.add(["a cat"], ["a"])
    with pytest.raises(InputError, match="dense encoder"):
        col.search("cat", mode="dense")
    with pytest.raises(InputError, match="k must be a positive integer"):
        col.search("cat", k=0)
    with pytest.raises(InputError, match="unknown operator"):
        col.search("cat", where={"n": {"$regex": "x"}})


def test_upsert_replaces_text_metadata_and_vectors(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(30)
    col = Collection(tmp_path / "c", encoders=["bm25", mean_encoder])
    col.add(texts, ids, meta)
    assert col.search("zeppelin", mode="sparse") == []
    col.upsert(["zeppelin over the planet"], ["d4"], [{"topic": "air"}])
    assert col.count() == 30
    (doc,) = col.get("d4")
    assert doc.text == "zeppelin over the planet" and doc.metadata == {"topic": "air"}
    assert col.search("zeppelin", mode="sparse")[0].id == "d4"
    assert col.search("x", mode="dense", where={"topic": "air"})[0].id == "d4"


def test_delete_removes_from_every_index(tmp_path: Path, mean_encoder: MeanPoolingEncoder) -> None:
    texts, ids, meta = documents(40)
    col = Collection(tmp_path / "c", encoders=["bm25", mean_encoder])
    col.add(texts, ids, meta)
    first = col.search(texts[5], k=1, mode="dense")[0].id
    assert first == "d5"
    assert col.delete(["d5", "d6"]) == 2
    assert col.count() == 38
    for mode in ("dense", "sparse", "hybrid"):
        assert not {"d5", "d6"} & {h.id for h in col.search(texts[5], k=40, mode=mode)}


def test_changes_by_another_handle_are_seen(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(20)
    reader = Collection(tmp_path / "c", encoders=["bm25", mean_encoder])
    reader.add(texts[:10], ids[:10], meta[:10])
    assert len(reader.search("cat", k=50, mode="dense")) == 10
    writer = Collection(tmp_path / "c")
    writer.add(texts[10:], ids[10:], meta[10:])
    assert len(reader.search("cat", k=50, mode="dense")) == 20
    assert {h.id for h in reader.search(texts[15], k=1, mode="sparse")} == {"d15"}


def test_saved_index_is_reused_and_a_corrupt_one_rebuilt(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(60)
    path = tmp_path / "c"
    with Collection(path, encoders=["bm25", mean_encoder]) as col:
        col.add(texts, ids, meta)
        expected = [h.id for h in col.search("kitten", k=5, mode="dense")]
        expected_sparse = [h.id for h in col.search("kitten", k=5, mode="sparse")]
    dense_dir = next((path / "indexes").glob("dense-*"))
    stamp = json.loads((dense_dir / "stamp.json").read_text())
    assert stamp["generation"] == 1 and stamp["kind"] == "flat"
    intact = (dense_dir / "index.faiss").read_bytes()
    # flip bytes in the middle of the FAISS file: the digest no longer matches
    data = bytearray(intact)
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    (dense_dir / "index.faiss").write_bytes(bytes(data))
    (next((path / "indexes").glob("sparse-*")) / "matrix.npz").write_bytes(b"truncated")
    with Collection(path) as col:
        assert [h.id for h in col.search("kitten", k=5, mode="dense")] == expected
        assert [h.id for h in col.search("kitten", k=5, mode="sparse")] == expected_sparse
    # the damaged copy was replaced by a rebuilt one, saved whole: the same bytes as before
    assert (dense_dir / "index.faiss").read_bytes() == intact
    assert json.loads((dense_dir / "stamp.json").read_text())["digest"] == stamp["digest"]
    with Collection(path) as col:
        col.rebuild()
        assert [h.id for h in col.search("kitten", k=5, mode="dense")] == expected


def test_stale_saved_index_catches_up(tmp_path: Path, mean_encoder: MeanPoolingEncoder) -> None:
    texts, ids, meta = documents(50)
    path = tmp_path / "c"
    with Collection(path, encoders=[mean_encoder]) as col:
        col.add(texts[:30], ids[:30], meta[:30])
        col.search("cat")  # builds and saves the index at generation 1
    with Collection(path) as col:
        col.add(texts[30:], ids[30:], meta[30:])
        col.delete(["d0"])
    with Collection(path) as col:
        hits = col.search("x", k=100)
        assert len(hits) == 49 and "d0" not in {h.id for h in hits}
        assert [h.id for h in col.search(texts[40], k=3)] == _exact_top(col, texts[40], 3)


def test_unfitted_dense_encoder_is_fitted_on_first_add_and_kept(
    tmp_path: Path, vectors_folder: Path
) -> None:
    texts, ids, meta = documents(40)
    sif = SIFEncoder(str(vectors_folder))
    path = tmp_path / "c"
    with Collection(path, encoders=[sif]) as col:
        col.add(texts, ids, meta)
        before = [h.id for h in col.search("kitten puppy", k=5)]
    with Collection(path) as col:
        assert col.encoder("sif").is_fitted()
        assert [h.id for h in col.search("kitten puppy", k=5)] == before


def test_new_encoder_on_a_non_empty_collection_is_refused(tmp_path: Path) -> None:
    col = Collection(tmp_path / "c", encoders=["bm25"])
    col.add(["a cat"], ["a"])
    col.close()
    with pytest.raises(InputError, match="cannot take a new encoder"):
        Collection(tmp_path / "c", encoders=["bm25", "tfidf"])
    assert Collection(tmp_path / "c", encoders=["bm25"]).count() == 1


def test_not_a_collection_and_corrupt_database(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no collection here"):
        Collection(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "collection.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CorruptFileError, match="not a readable collection database"):
        Collection(tmp_path / "bad")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        Collection(tmp_path / "file", encoders=["bm25"])
    with pytest.raises(InputError, match="not a collection"):
        Collection.destroy(tmp_path / "empty")


def test_stored_vectors_of_the_wrong_width_are_reported(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    path = tmp_path / "c"
    with Collection(path, encoders=[mean_encoder], persist_indexes=False) as col:
        col.add(["kitten puppy", "stock bank"], ["a", "b"])
    conn = sqlite3.connect(path / "collection.sqlite")
    conn.execute("UPDATE encoders SET dim = 12")
    conn.commit()
    conn.close()
    with Collection(path) as col, pytest.raises((CorruptFileError, DimensionMismatchError)):
        col.search("kitten")


def test_vectors_made_elsewhere_and_search_by_vector(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(30)
    made = np.asarray(mean_encoder.encode(texts), dtype=np.float32)
    col = Collection(tmp_path / "c", encoders=[mean_encoder])
    col.add(texts, ids, meta, vectors={"tiny-mean": made})
    (hits,) = col.search_vectors(made[3], k=3)
    assert hits[0].id == "d3" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert col.search(texts[3], k=1)[0].id == "d3"  # same vectors as the encoder makes
    many = col.search_vectors(made[:4], k=2, where={"topic": "money"})
    assert [len(h) for h in many] == [2, 2, 2, 2]
    assert all(h.metadata["topic"] == "money" for hits in many for h in hits)
    with pytest.raises(DimensionMismatchError, match="24-dim"):
        col.search_vectors(np.ones(5), k=1)
    with pytest.raises(InputError, match="2 documents but 1 vectors"):
        col.add(["a cat", "a dog"], ["x", "y"], vectors={"tiny-mean": made[:1]})
    bad = made[:2].copy()
    bad[1, 0] = np.nan
    with pytest.raises(InputError, match="NaN|finite"):
        col.add(["a cat", "a dog"], ["x", "y"], vectors={"tiny-mean": bad})
    assert col.count() == 30


def test_nearest_ids_agrees_with_search_vectors(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(40)
    made = np.asarray(mean_encoder.encode(texts), dtype=np.float32)
    col = Collection(tmp_path / "c", encoders=[mean_encoder])
    col.add(texts, ids, meta, vectors={"tiny-mean": made})
    found, scores = col.nearest_ids(made[:3], k=4, where={"topic": {"$ne": "food"}})
    full = col.search_vectors(made[:3], k=4, where={"topic": {"$ne": "food"}})
    assert found == [[h.id for h in hits] for hits in full]
    assert scores.shape == (3, 4)
    expected = np.array([[h.score for h in hits] for hits in full])
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    col.upsert([texts[0]], ["d0"], [{"topic": "moved"}], vectors={"tiny-mean": made[:1]})
    col.delete(["d1"])
    col.add(["kitten puppy vet"], ["new"])
    (after,), _ = col.nearest_ids(made[0], k=40)
    assert "d0" in after and "d1" not in after and "new" in after and len(after) == 40
    (few,), few_scores = col.nearest_ids(made[0], k=3, where={"n": {"$in": [5, 9]}})
    assert sorted(few) == ["d5", "d9"] and np.isinf(few_scores[0, 2])


def test_single_query_vectors_are_checked_and_scaled(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(300)
    made = np.asarray(mean_encoder.encode(texts), dtype=np.float32)
    col = Collection(tmp_path / "c", encoders=[mean_encoder], hnsw=HnswSettings(threshold=100))
    col.add(texts, ids, meta, vectors={"tiny-mean": made})
    one = made[7]
    (found,), scores = col.nearest_ids(one * np.float32(40.0), k=5)  # length does not matter
    (as_list,), _ = col.nearest_ids(one.astype(np.float64).tolist(), k=5)
    assert found[0] == "d7" and found == as_list
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    (zero_hits,), zero_scores = col.nearest_ids(np.zeros(24, np.float32), k=3)
    assert len(zero_hits) == 3 and np.allclose(zero_scores, 0.0)
    for bad_value in (np.nan, np.inf):
        bad = one.copy()
        bad[3] = bad_value
        with pytest.raises(InputError, match="NaN|finite"):
            col.nearest_ids(bad, k=3)
    with pytest.raises(DimensionMismatchError, match="24-dim"):
        col.nearest_ids(np.ones(23, np.float32), k=3)
    assert one[3] == made[7, 3]  # the caller's array is left as it was


def test_a_search_sees_every_write_committed_through_another_connection(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(60)
    made = np.asarray(mean_encoder.encode(texts), dtype=np.float32)
    reader = Collection(tmp_path / "c", encoders=[mean_encoder])
    reader.add(texts[:30], ids[:30], meta[:30], vectors={"tiny-mean": made[:30]})
    writer = Collection(tmp_path / "c", encoders=[mean_encoder])
    for n in range(30, 60):  # one commit at a time, each searched for at once
        before = reader.generation()
        writer.add([texts[n]], [ids[n]], [meta[n]], vectors={"tiny-mean": made[n : n + 1]})
        assert reader.generation() > before
        (found,), _ = reader.nearest_ids(made[n], k=1)
        assert found == [ids[n]]
    writer.delete([ids[45]])
    (found,), _ = reader.nearest_ids(made[45], k=60)
    assert ids[45] not in found and len(found) == 59
    writer.close()
    reader.close()


def test_export_gives_documents_and_stored_vectors_in_insertion_order(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(40)
    made = np.asarray(mean_encoder.encode(texts), dtype=np.float32)
    col = Collection(tmp_path / "c", encoders=["bm25", mean_encoder])
    col.add(texts, ids, meta, vectors={"tiny-mean": made})
    col.delete(["d3"])
    out = col.export()
    keep = [i for i in range(40) if i != 3]
    assert out.encoder == "tiny-mean" and out.ids == [ids[i] for i in keep]
    assert out.texts[5] == texts[6] and out.metadata[5] == meta[6]
    np.testing.assert_array_equal(out.vectors, made[keep])  # as given, bit for bit
    sparse = col.export("bm25", limit=10)
    assert sparse.vectors.shape[0] == 10 and sparse.ids == out.ids[:10]
    with pytest.raises(InputError, match="no encoder 'nope'"):
        col.export("nope")
    with pytest.raises(InputError, match="limit must be at least 1"):
        col.export(limit=0)
    empty = Collection(tmp_path / "e", encoders=[mean_encoder])
    with pytest.raises(InputError, match="empty"):
        empty.export()


def test_an_empty_collection_answers_every_mode_with_no_hits(tmp_path: Path) -> None:
    """A collection whose first add failed (bad metadata) is empty, not broken."""
    vectors = topic_vectors(tmp_path / "wv")
    enc = MeanPoolingEncoder(str(vectors), name="tiny-mean")
    col = Collection(tmp_path / "c", encoders=["bm25", enc])
    with col, pytest.raises(InputError, match="not JSON-serializable"):
        col.add(["a cat"], ["d0"], [{"x": float("inf")}])
    with Collection(tmp_path / "c") as col:
        for mode in ("sparse", "dense", "hybrid"):
            assert col.search("cat", mode=mode) == []
        col.add(["a cat on a mat"], ["d0"])
        assert [h.id for h in col.search("cat", mode="sparse")] == ["d0"]


@pytest.mark.parametrize("k", [2**64, 2**24 + 1, True, 0])
def test_a_k_that_cannot_be_answered_is_refused(tmp_path: Path, k: int) -> None:
    with Collection(tmp_path / "c", encoders=["bm25"]) as col:
        col.add(["a cat on a mat"], ["d0"])
        with pytest.raises(InputError, match="k must be"):
            col.search("cat", k=k)
        with pytest.raises(InputError, match="k must be"):
            col.search_many(["cat"], k=k)
