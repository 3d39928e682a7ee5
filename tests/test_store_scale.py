"""Collections that grow: BM25 kept exact without refitting, the IVF index of large collections,
and indexes that are ready when a collection is opened (each reopen in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from embedcraft.encoders.pooling import MeanPoolingEncoder
from embedcraft.encoders.sparse import BM25Encoder
from embedcraft.store import Collection, HnswSettings
from store_docs import documents, topic_vectors

IVF = HnswSettings(ivf_threshold=1500, ivf_lists=32)
"""Settings that make a collection of a few thousand rows use the IVF index."""


@pytest.fixture(scope="module")
def vectors_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return topic_vectors(tmp_path_factory.mktemp("wv") / "tiny")


@pytest.fixture
def mean_encoder(vectors_folder: Path) -> MeanPoolingEncoder:
    return MeanPoolingEncoder(str(vectors_folder), name="tiny-mean")


def _child(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter (argv after it: args); its last stdout line is JSON."""
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict = json.loads(run.stdout.strip().splitlines()[-1])
    result["stderr"] = run.stderr
    return result


def _fresh_bm25_top(texts: dict[str, str], query: str, k: int) -> dict[str, float]:
    """Top-k ids and BM25 scores of a BM25Encoder fitted on exactly these documents."""
    ids = list(texts)
    enc = BM25Encoder().fit(list(texts.values()))
    scores = (enc.encode(list(texts.values())) @ enc.encode_queries([query]).T).toarray()[:, 0]
    order = np.argsort(-scores, kind="stable")[:k]
    return {ids[i]: float(scores[i]) for i in order if scores[i] > 0}


def _check_bm25(hits: list[list], texts: dict[str, str], query: str) -> None:
    """Hits ([id, score] pairs) score each document as a fresh fit does, best first."""
    exact = _fresh_bm25_top(texts, query, 10)
    assert len(hits) == len(exact)
    assert [s for _, s in hits] == pytest.approx(sorted(exact.values(), reverse=True), rel=1e-4)
    everything = _fresh_bm25_top(texts, query, len(texts))
    for doc_id, score in hits:
        assert everything[doc_id] == pytest.approx(score, rel=1e-4)


QUERIES = ["kitten puppy vet", "bank bond trade", "soup oven bread", "comet galaxy star doc7"]


def test_bm25_scores_equal_a_fresh_fit_through_adds_deletes_upserts_and_reopens(
    tmp_path: Path,
) -> None:
    texts, ids, _ = documents(150)
    current = dict(zip(ids[:100], texts[:100], strict=True))
    with Collection(tmp_path / "c", encoders=["bm25"]) as col:
        col.add(texts[:100], ids[:100])
        for q in QUERIES:
            _check_bm25([[h.id, h.score] for h in col.search(q, k=10)], current, q)
        col.add(texts[100:], ids[100:])  # appended: new terms, new statistics
        current.update(zip(ids[100:], texts[100:], strict=True))
        for q in QUERIES:
            _check_bm25([[h.id, h.score] for h in col.search(q, k=10)], current, q)
        gone = ids[::7]
        col.delete(gone)
        kept = [i for i in ids[1:40:5] if i not in gone]
        replaced = {i: f"astronaut rocket moon {i} replaced" for i in kept}
        col.upsert(list(replaced.values()), list(replaced))
        for i in gone:
            current.pop(i)
        current.update(replaced)
        for q in [*QUERIES, "astronaut rocket"]:
            hits = [[h.id, h.score] for h in col.search(q, k=10)]
            assert not set(gone) & {h for h, _ in hits}
            _check_bm25(hits, current, q)
    code = """
        import json, sys
        from embedcraft.store import Collection
        with Collection(sys.argv[1]) as col:
            out = {q: [[h.id, h.score] for h in col.search(q, k=10)] for q in sys.argv[2:]}
            col.delete(["d2", "d3"])
            out["after"] = [[h.id, h.score] for h in col.search(sys.argv[2], k=10)]
        print(json.dumps(out))
    """
    queries = [*QUERIES, "astronaut rocket"]
    found = _child(code, str(tmp_path / "c"), *queries)
    for q in queries:
        _check_bm25(found[q], current, q)
    current.pop("d2"), current.pop("d3")
    _check_bm25(found["after"], current, queries[0])
    with Collection(tmp_path / "c") as col:  # the other process's deletes are seen here
        _check_bm25([[h.id, h.score] for h in col.search(queries[0], k=10)], current, queries[0])


def _exact(vectors: dict[str, np.ndarray], query: np.ndarray, k: int) -> list[float]:
    ids = list(vectors)
    m = np.stack([vectors[i] for i in ids]).astype(np.float64)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    scores = m @ (query / np.linalg.norm(query))
    return sorted(scores.tolist(), reverse=True)[:k]


def _recall(hits: list, exact: list[float]) -> float:
    return sum(h.score >= exact[-1] - 1e-5 for h in hits) / len(exact)


def test_ivf_index_finds_neighbours_filters_exactly_and_never_returns_removed_rows(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(2200)
    vectors = dict(zip(ids, mean_encoder.encode(texts), strict=True))
    col = Collection(tmp_path / "c", encoders=[mean_encoder], hnsw=IVF)
    col.add(texts[:2000], ids[:2000], meta[:2000], batch_size=500)
    assert col.info()["encoders"][0]["index"]["kind"] == "ivf"
    stored = {i: vectors[i] for i in ids[:2000]}
    qv = mean_encoder.encode_queries(QUERIES)
    recall = np.mean(
        [_recall(col.search_vectors(q[None, :], k=10)[0], _exact(stored, q, 10)) for q in qv]
    )
    assert recall >= 0.9
    by_id = dict(zip(ids, meta, strict=True))
    small = {i for i in stored if by_id[i]["n"] < 50}  # a selective filter: exact
    for q in qv:
        hits = col.search_vectors(q[None, :], k=10, where={"n": {"$lt": 50}})[0]
        assert {h.id for h in hits} <= small
        exact = _exact({i: stored[i] for i in small}, q, 10)
        assert [h.score for h in hits] == pytest.approx(exact, abs=1e-5)
    col.hnsw.exact_limit, col.hnsw.exact_fraction = 0, 0.0  # a broad filter scans the lists
    even = {i for i in stored if by_id[i]["even"]}
    for q in qv:
        hits = col.search_vectors(q[None, :], k=10, where={"even": True})[0]
        assert len(hits) == 10 and {h.id for h in hits} <= even
        assert _recall(hits, _exact({i: stored[i] for i in even}, q, 10)) >= 0.8
    # rows added later (held beside the lists) and removed ones
    col.add(texts[2000:], ids[2000:], meta[2000:])
    for i in ids[2000::20]:
        (best,) = col.search_vectors(vectors[i][None, :], k=1)[0]
        assert best.score == pytest.approx(1.0, abs=1e-5)
    gone = ids[:2200:3]
    col.delete(gone)
    for i in gone[:60]:
        assert i not in {h.id for h in col.search_vectors(vectors[i][None, :], k=10)[0]}
    col.close()


def test_a_large_collection_is_ready_when_opened_and_catches_up_with_other_writers(
    tmp_path: Path, mean_encoder: MeanPoolingEncoder
) -> None:
    texts, ids, meta = documents(2300)
    path = tmp_path / "c"
    with Collection(path, encoders=["bm25", mean_encoder], hnsw=IVF) as col:
        col.add(texts[:2000], ids[:2000], meta[:2000], batch_size=500)
    # a fresh process: the indexes saved at the end of the add answer at once (no build)
    code = """
        import json, logging, sys
        logging.basicConfig(level=logging.INFO)
        from embedcraft.store import Collection
        path, action = sys.argv[1], sys.argv[2]
        with Collection(path) as col:
            if action == "add":
                col.add([f"comet galaxy star extra{i}" for i in range(150)],
                        [f"x{i}" for i in range(150)])
                col.delete([f"d{i}" for i in range(0, 300, 2)])
            hits = {m: [h.id for h in col.search("comet galaxy star", k=200, mode=m)]
                    for m in ("dense", "sparse", "hybrid")}
            kinds = [e["index"]["kind"] for e in col.info()["encoders"]]
            print(json.dumps({"hits": hits, "kinds": kinds, "count": col.count()}))
    """
    first = _child(code, str(path), "search")
    assert "built the" not in first["stderr"], first["stderr"]
    assert sorted(first["kinds"]) == ["bm25", "ivf"] and first["count"] == 2000
    second = _child(code, str(path), "add")
    assert second["count"] == 2000 + 150 - 150
    third = _child(code, str(path), "search")  # caught up from the database, not rebuilt
    assert "built the" not in third["stderr"], third["stderr"]
    deleted = {f"d{i}" for i in range(0, 300, 2)}
    for mode, found in third["hits"].items():
        assert not deleted & set(found), mode
        assert len({i for i in found if i.startswith("x")}) >= 100, mode
