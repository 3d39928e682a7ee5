"""Retrieval evaluation on BEIR-layout folders: nDCG@10, recall@100 and MRR@10.

nDCG uses linear gains (the relevance grade itself) and log2 discounts, as trec_eval and BEIR do;
documents are "title text" joined by a space, as BEIR encodes them.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import csv_error, parse_json, raise_csv_field_limit, read_text
from ..encoders.base import Encoder, fit_if_needed
from ..errors import InputError
from ..vectors import top_k

__all__ = ["BeirDataset", "RetrievalResult", "evaluate_retrieval", "load_beir", "retrieval_metrics"]


@dataclass
class BeirDataset:
    """A retrieval benchmark: corpus, the judged queries of one split, and their judgements."""

    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    skipped_queries: int = 0
    """Queries in queries.jsonl with no judgement in this split (not evaluated)."""
    missing_queries: int = 0
    """Judged query ids that queries.jsonl lacks (not evaluated)."""


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """BEIR records: objects with a string or integer `_id`, and text fields that are text."""
    rows = []
    for n, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        row = parse_json(line, f"{path}, line {n}")
        if not isinstance(row, dict) or "_id" not in row:
            raise InputError(f"{path}, line {n}: expected an object with an '_id' field")
        if isinstance(row["_id"], bool) or not isinstance(row["_id"], str | int):
            raise InputError(f"{path}, line {n}: '_id' is {row['_id']!r}, not a string")
        for key in ("title", "text"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise InputError(
                    f"{path}, line {n}: {key!r} is {type(row[key]).__name__}, not text"
                )
        rows.append(row)
    return rows


def _find(folder: Path, *names: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"{folder} is not a BEIR-layout folder: it has no {' or '.join(names)}")


def load_beir(folder: str | Path, split: str = "test") -> BeirDataset:
    """Read `corpus.jsonl[.gz]`, `queries.jsonl[.gz]` and `qrels/<split>.tsv` from `folder`."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    corpus = _jsonl(_find(root, "corpus.jsonl", "corpus.jsonl.gz"))
    queries = _jsonl(_find(root, "queries.jsonl", "queries.jsonl.gz"))
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise InputError(
            f"{qrels_path} not found; splits available: {', '.join(available) or 'none'}"
        )
    qrels = _read_qrels(qrels_path)
    doc_ids = [str(d["_id"]) for d in corpus]
    doc_texts = [f"{d.get('title') or ''} {d.get('text') or ''}".strip() for d in corpus]
    judged = {q: rels for q, rels in qrels.items() if any(s > 0 for s in rels.values())}
    query_text = {str(q["_id"]): str(q.get("text") or "") for q in queries}
    query_ids = [q for q in query_text if q in judged]
    return BeirDataset(
        name=root.name,
        doc_ids=doc_ids,
        doc_texts=doc_texts,
        query_ids=query_ids,
        query_texts=[query_text[q] for q in query_ids],
        qrels={q: judged[q] for q in query_ids},
        skipped_queries=len(query_text) - len(query_ids),
        missing_queries=len(set(judged) - set(query_text)),
    )


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """`qrels/<split>.tsv`: query-id, corpus-id, integer score (a header line is skipped)."""
    qrels: dict[str, dict[str, int]] = {}
    raise_csv_field_limit()
    reader = csv.reader(io.StringIO(read_text(path)), delimiter="\t")
    try:
        for n, row in enumerate(reader, start=1):
            if not row or (n == 1 and not row[-1].lstrip("-").isdigit()):
                continue  # blank line or header
            if len(row) < 3:
                raise InputError(f"{path}, line {n}: expected query-id, corpus-id, score")
            try:
                score = int(row[-1])  # thousands of digits: a ValueError too
            except ValueError:
                raise InputError(f"{path}, line {n}: score {row[-1]!r} is not an integer") from None
            qrels.setdefault(row[0], {})[row[-2]] = score
    except csv.Error as exc:
        raise csv_error(path, reader.line_num, exc) from None
    return qrels


def retrieval_metrics(
    ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]
) -> dict[str, float]:
    """Mean nDCG@10, recall@100 and MRR@10 of ranked doc ids against graded judgements."""
    if not ranked:
        raise InputError("no judged queries to evaluate")
    ndcg = recall = mrr = 0.0
    for qid, docs in ranked.items():
        rels = qrels.get(qid, {})
        relevant = {d for d, s in rels.items() if s > 0}
        dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs[:10]))
        ideal = sorted((s for s in rels.values() if s > 0), reverse=True)[:10]
        idcg = sum(s / math.log2(i + 2) for i, s in enumerate(ideal))
        ndcg += dcg / idcg if idcg else 0.0
        recall += len(relevant & set(docs[:100])) / len(relevant) if relevant else 0.0
        first = next((i for i, d in enumerate(docs[:10]) if d in relevant), None)
        mrr += 1.0 / (first + 1) if first is not None else 0.0
    n = len(ranked)
    return {"ndcg@10": ndcg / n, "recall@100": recall / n, "mrr@10": mrr / n}


@dataclass
class RetrievalResult:
    """Metrics of one encoder on one dataset, with the counts and timings behind them."""

    dataset: str
    encoder: str
    metrics: dict[str, float]
    queries: int
    skipped_queries: int
    documents: int
    fitted_on_corpus: bool
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the metric keys at the top level."""
        return {
            **self.metrics,
            "dataset": self.dataset,
            "encoder": self.encoder,
            "queries": self.queries,
            "skipped_queries": self.skipped_queries,
            "documents": self.documents,
            "fitted_on_corpus": self.fitted_on_corpus,
            "seconds": self.seconds,
        }


def evaluate_retrieval(
    encoder: Encoder, data: BeirDataset, *, progress: bool = False
) -> RetrievalResult:
    """Encode the corpus (fitting the encoder on it first if it needs it), rank, and score."""
    if not data.query_ids:
        raise InputError(f"{data.name}: no judged queries in this split")
    t0 = time.perf_counter()
    fitted = fit_if_needed(encoder, data.doc_texts)
    t1 = time.perf_counter()
    doc_vectors = encoder.encode(data.doc_texts, progress=progress)
    t2 = time.perf_counter()
    encode_queries = encoder.encode_queries
    query_vectors = encode_queries(data.query_texts)
    best = top_k(query_vectors, doc_vectors, 100, encoder.metric)
    t3 = time.perf_counter()
    ranked = {
        qid: [data.doc_ids[i] for i in row]
        for qid, row in zip(data.query_ids, best.indices, strict=True)
    }
    return RetrievalResult(
        dataset=data.name,
        encoder=encoder.name,
        metrics=retrieval_metrics(ranked, data.qrels),
        queries=len(data.query_ids),
        skipped_queries=data.skipped_queries + data.missing_queries,
        documents=len(data.doc_ids),
        fitted_on_corpus=fitted,
        seconds={"fit": t1 - t0, "encode_corpus": t2 - t1, "search": t3 - t2},
    )
