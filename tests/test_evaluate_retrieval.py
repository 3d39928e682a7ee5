from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from embedcraft import InputError, evaluate_retrieval, load_beir, load_encoder
from embedcraft.evaluate import retrieval_metrics


def test_metrics_by_hand() -> None:
    qrels = {"q1": {"a": 2, "b": 1, "z": 0}, "q2": {"c": 1}}
    ranked = {"q1": ["x", "a", "y", "b"], "q2": ["c"] + [f"n{i}" for i in range(150)]}
    m = retrieval_metrics(ranked, qrels)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((dcg / idcg + 1.0) / 2)
    assert m["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["recall@100"] == pytest.approx(1.0)
    late = retrieval_metrics({"q2": [f"n{i}" for i in range(100)] + ["c"]}, qrels)
    assert late == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}


def _beir(root: Path, gz: bool = False) -> Path:
    corpus = [
        {"_id": "d1", "title": "Cats", "text": "Cats purr and sleep all day."},
        {"_id": "d2", "title": "Markets", "text": "Stocks fell as investors sold shares."},
        {"_id": "d3", "title": "", "text": "A planet orbits a distant star."},
    ]
    lines = "\n".join(json.dumps(d) for d in corpus) + "\n"
    if gz:
        (root / "corpus.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    else:
        (root / "corpus.jsonl").write_text(lines)
    queries = [
        {"_id": "q1", "text": "why do cats purr"},
        {"_id": "q2", "text": "stocks investors"},
        {"_id": "q3", "text": "no judgement for me"},
    ]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    return root


@pytest.mark.parametrize("gz", [False, True])
def test_evaluate_on_a_tiny_beir_folder(tmp_path: Path, gz: bool) -> None:
    data = load_beir(_beir(tmp_path, gz))
    assert data.query_ids == ["q1", "q2"] and data.skipped_queries == 1
    assert data.doc_texts[0] == "Cats Cats purr and sleep all day."  # title + text, as BEIR
    result = evaluate_retrieval(load_encoder("bm25"), data)
    assert result.metrics == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}
    assert result.fitted_on_corpus and result.queries == 2 and result.documents == 3
    assert result.to_dict()["ndcg@10"] == 1.0


def test_load_beir_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        load_beir(tmp_path / "missing")
    with pytest.raises(InputError, match="no corpus.jsonl"):
        load_beir(tmp_path)
    _beir(tmp_path)
    with pytest.raises(InputError, match="splits available: test"):
        load_beir(tmp_path, split="dev")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(InputError, match="line 2: score 'high'"):
        load_beir(tmp_path)
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "ok"}\n{broken\n')
    with pytest.raises(InputError, match="queries.jsonl, line 2: invalid JSON"):
        load_beir(tmp_path)


# Regression floors on the real benchmarks, well below what the CLI measures (see the README).
@pytest.mark.shared_data
def test_scifact_floors(shared_data: Path) -> None:
    data = load_beir(shared_data / "beir_scifact")
    assert len(data.query_ids) == 300 and len(data.doc_ids) == 5183
    bm25 = evaluate_retrieval(load_encoder("bm25"), data).metrics
    tfidf = evaluate_retrieval(load_encoder("tfidf"), data).metrics
    assert bm25["ndcg@10"] >= 0.65, bm25
    assert bm25["recall@100"] >= 0.85, bm25
    assert tfidf["ndcg@10"] >= 0.50, tfidf


@pytest.mark.shared_data
def test_cranfield_floor(shared_data: Path) -> None:
    data = load_beir(shared_data / "cranfield")
    assert len(data.query_ids) == 225
    assert evaluate_retrieval(load_encoder("bm25"), data).metrics["ndcg@10"] >= 0.30
