"""The main job (`make run`, `embedcraft demo`): every encoder on a small shipped corpus.

The corpus (240 short documents on 12 topics) and the 12 queries were written for embedcraft
and ship inside the package. For each encoder the demo fits, encodes, searches, and reports
the top hits per query with scores, timings, and how many hits share the query's topic.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TextIO

from .catalog import load_encoder
from .search import Hit, MemoryIndex

__all__ = ["DemoResult", "demo_corpus", "run_demo"]

DEMO_ENCODERS = ("onehot", "bow", "tfidf", "bm25", "hashing")


def _jsonl(name: str) -> list[dict[str, str]]:
    text = resources.files("embedcraft").joinpath("data", name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def demo_corpus() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The shipped documents and queries: dicts with `id`, `topic` and `text`."""
    return _jsonl("demo_corpus.jsonl"), _jsonl("demo_queries.jsonl")


@dataclass
class EncoderRun:
    """One encoder's part of the demo."""

    encoder: str
    dim: int
    fit_ms: float
    encode_ms: float
    search_ms: float
    topic_precision: float
    """Share of the top hits, over all queries, whose topic is the query's topic."""
    hits: dict[str, list[Hit]] = field(default_factory=dict)


@dataclass
class DemoResult:
    """Everything the demo measured, ready to print or to dump as JSON."""

    documents: int
    queries: list[dict[str, str]]
    runs: list[EncoderRun]
    k: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "documents": self.documents,
            "k": self.k,
            "encoders": [
                {
                    "encoder": r.encoder,
                    "dim": r.dim,
                    "fit_ms": r.fit_ms,
                    "encode_ms": r.encode_ms,
                    "search_ms": r.search_ms,
                    "topic_precision": r.topic_precision,
                    "hits": {q: [h.to_dict() for h in hs] for q, hs in r.hits.items()},
                }
                for r in self.runs
            ],
        }


def run_demo(encoders: tuple[str, ...] = DEMO_ENCODERS, k: int = 3) -> DemoResult:
    """Fit, encode and search the shipped corpus with each named encoder."""
    docs, queries = demo_corpus()
    topic_of = {d["id"]: d["topic"] for d in docs}
    texts, ids = [d["text"] for d in docs], [d["id"] for d in docs]
    runs = []
    for name in encoders:
        encoder = load_encoder(name)
        t0 = time.perf_counter()
        encoder.fit(texts)
        t1 = time.perf_counter()
        index = MemoryIndex(encoder, ids, texts, encoder.encode(texts))
        t2 = time.perf_counter()
        results = index.search_many([q["text"] for q in queries], k)
        t3 = time.perf_counter()
        hits = {q["id"]: r for q, r in zip(queries, results, strict=True)}
        on_topic = sum(topic_of[h.id] == q["topic"] for q in queries for h in hits[q["id"]])
        runs.append(
            EncoderRun(
                encoder=name,
                dim=encoder.dim,
                fit_ms=(t1 - t0) * 1e3,
                encode_ms=(t2 - t1) * 1e3,
                search_ms=(t3 - t2) * 1e3,
                topic_precision=on_topic / (len(queries) * k),
                hits=hits,
            )
        )
    return DemoResult(documents=len(docs), queries=queries, runs=runs, k=k)


def print_demo(result: DemoResult, out: TextIO) -> None:
    """The side-by-side report a person reads."""
    docs, _ = demo_corpus()
    topic_of = {d["id"]: d["topic"] for d in docs}
    text_of = {d["id"]: d["text"] for d in docs}
    cell = 24
    names = [r.encoder for r in result.runs]
    out.write(
        f"embedcraft demo: {result.documents} documents, {len(result.queries)} queries, "
        f"top {result.k} per encoder (id topic score; * = on the query's topic)\n"
    )
    for query in result.queries:
        out.write(f"\n{query['id']}  {query['text']!r}  [topic: {query['topic']}]\n")
        out.write("     " + "".join(f"{n:<{cell}}" for n in names) + "\n")
        for rank in range(result.k):
            row = []
            for r in result.runs:
                hits = r.hits[query["id"]]
                if rank < len(hits):
                    h = hits[rank]
                    mark = "*" if topic_of[h.id] == query["topic"] else " "
                    row.append(f"{h.id} {topic_of[h.id][:10]:<10} {h.score:5.2f}{mark}")
                else:
                    row.append("-")
            out.write(f"  {rank + 1}  " + "".join(f"{c:<{cell}}" for c in row) + "\n")
        best = next(r for r in result.runs if r.encoder == "bm25") if "bm25" in names else None
        if best and best.hits[query["id"]]:
            top = best.hits[query["id"]][0]
            out.write(f"     bm25's top hit: {text_of[top.id][:110]}\n")
    out.write("\nencoder   width     fit ms  encode ms  search ms  on-topic@k\n")
    for r in result.runs:
        out.write(
            f"{r.encoder:<9} {r.dim:>7} {r.fit_ms:>9.1f} {r.encode_ms:>10.1f} "
            f"{r.search_ms:>10.1f}  {r.topic_precision:>9.0%}\n"
        )
