from __future__ import annotations

import io

import pytest

from embedcraft.demo import DEMO_ENCODERS, demo_corpus, print_demo, run_demo


def test_shipped_corpus_is_complete() -> None:
    docs, queries = demo_corpus()
    assert len(docs) >= 200 and len(queries) == 12
    assert len({d["id"] for d in docs}) == len(docs)
    assert {q["topic"] for q in queries} <= {d["topic"] for d in docs}


def test_demo_runs_every_encoder_side_by_side() -> None:
    result = run_demo(k=3)
    assert [r.encoder for r in result.runs] + list(result.skipped) == list(DEMO_ENCODERS)
    assert all("pip install" in reason for reason in result.skipped.values())
    docs, queries = demo_corpus()
    text_of = {d["id"]: d["text"] for d in docs}
    for run in result.runs:
        assert set(run.hits) == {q["id"] for q in queries}
        assert all(len(hits) == 3 for hits in run.hits.values())
    bm25 = next(r for r in result.runs if r.encoder == "bm25")
    berlin = next(q["id"] for q in queries if "Berlin" in q["text"])
    assert "Berlin Wall" in text_of[bm25.hits[berlin][0].id]
    assert bm25.topic_precision >= 0.35
    if "glove-6b-50d-sif" not in result.skipped:
        sif = next(r for r in result.runs if r.encoder == "glove-6b-50d-sif")
        assert sif.topic_precision >= 0.6  # meaning beats keywords on paraphrased queries
        assert result.words is not None
        (question, answers), *_ = result.words.analogies
        assert question == ("man", "king", "woman") and answers[0][0] == "queen"
    out = io.StringIO()
    print_demo(result, out)
    report = out.getvalue()
    assert "on-topic@3" in report and all(name in report for name in DEMO_ENCODERS)


def test_demo_searches_a_collection() -> None:
    pytest.importorskip("faiss")
    result = run_demo(encoders=("bm25",), k=3)
    c = result.collection
    if c is None:
        pytest.skip("minilm-l6 is not installed")
    assert set(c.topic_precision) == {"sparse", "dense", "hybrid"}
    assert c.topic_precision["dense"] >= 0.5
    assert all(h.metadata["topic"] == c.filtered_topic for h in c.filtered_hits)
    assert len(c.filtered_hits) == 3
    assert c.filtered_hits[0].explanation is not None


def test_demo_recommends_from_the_shipped_reading_log() -> None:
    pytest.importorskip("gensim")
    result = run_demo(encoders=("bm25",), k=3)
    r = result.recommend
    assert r is not None
    assert len(r.recommendations) == 3 and not {i for i, _ in r.recommendations} & set(r.history)
    assert r.on_topic["item2vec"] > r.on_topic["popularity"]  # measured 68% vs 21%
    assert all(reason.startswith("because you liked d") for _, reason in r.recommendations)
