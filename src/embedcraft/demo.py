"""The main job (`make run`, `embedcraft demo`): every encoder on a small shipped corpus.

The corpus (240 short documents on 12 topics) and the 12 queries were written for embedcraft
and ship inside the package. For each encoder the demo fits, encodes, searches, and reports
the top hits per query with scores, timings, and how many hits share the query's topic.
Then the same documents go into a collection (BM25 + minilm-l6 in a temporary folder) for
hybrid search, a metadata filter, and an explanation of why the top hit matched. Last, a
synthetic reading log shipped with the package (80 users, each reading mostly two of the topics)
trains item2vec, which recommends documents to one user with "because you liked" reasons.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any, TextIO

import numpy as np

from .catalog import load_encoder
from .encoders.pooling import WordPoolingEncoder
from .errors import MissingDependencyError
from .search import Hit, MemoryIndex
from .words.sources import load_word_vectors

__all__ = ["DemoResult", "demo_corpus", "run_demo"]

DEMO_ENCODERS = (
    "onehot",
    "bow",
    "tfidf",
    "bm25",
    "hashing",
    "glove-6b-50d-mean",
    "glove-6b-50d-sif",
    "minilm-l6-static",
    "minilm-l3",
    "minilm-l6",
)
BANK_SENTENCES = (
    "I sat on the bank of the river.",
    "We fished from the grassy bank.",
    "I deposited cash at the bank.",
    "The bank raised interest rates.",
)
DEMO_WORD_VECTORS = "glove-6b-50d"


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
class WordSection:
    """Word-level results from pretrained word vectors."""

    vectors: str
    neighbors: dict[str, list[tuple[str, float]]]
    analogies: list[tuple[tuple[str, str, str], list[tuple[str, float]]]]


@dataclass
class ContextSection:
    """How one word's contextual vector moves with its sentence."""

    encoder: str
    word: str
    sentences: tuple[str, ...]
    cosine: list[list[float]]


@dataclass
class CollectionSection:
    """Hybrid search over a persisted collection of the demo documents."""

    encoders: list[str]
    ingest_ms: float
    topic_precision: dict[str, float]
    """Share of on-topic hits per search mode (sparse, dense, hybrid)."""
    hybrid_hits: dict[str, list[Hit]]
    filtered_query: str
    filtered_topic: str
    filtered_hits: list[Hit]


@dataclass
class RecommendSection:
    """Item2vec on the shipped reading log, against popularity."""

    user: str
    history: list[str]
    recommendations: list[tuple[str, str]]
    """(document id, reason) best first."""
    on_topic: dict[str, float]
    """Share of top-5 recommendations, over all users, on a topic the user already reads."""


@dataclass
class DemoResult:
    """Everything the demo measured, ready to print or to dump as JSON."""

    documents: int
    queries: list[dict[str, str]]
    runs: list[EncoderRun]
    k: int
    words: WordSection | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    """Encoders left out, with the reason (e.g. a model package not installed)."""
    context: ContextSection | None = None
    collection: CollectionSection | None = None
    recommend: RecommendSection | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        words = None
        if self.words is not None:
            words = {
                "vectors": self.words.vectors,
                "neighbors": self.words.neighbors,
                "analogies": [{"question": list(q), "answers": a} for q, a in self.words.analogies],
            }
        return {
            "documents": self.documents,
            "k": self.k,
            "skipped": self.skipped,
            "words": words,
            "context": None if self.context is None else asdict(self.context),
            "collection": None if self.collection is None else asdict(self.collection),
            "recommend": None if self.recommend is None else asdict(self.recommend),
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
    runs, skipped = [], {}
    for name in encoders:
        try:
            encoder = load_encoder(name)
            if isinstance(encoder, WordPoolingEncoder):
                _ = encoder.word_vectors  # load the word vectors before timing
        except MissingDependencyError as exc:
            skipped[name] = str(exc)
            continue
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
    return DemoResult(
        len(docs), queries, runs, k, _word_section(), skipped, _context_section(),
        _collection_section(docs, queries, k), _recommend_section(docs),
    )  # fmt: skip


def _recommend_section(docs: list[dict[str, str]]) -> RecommendSection | None:
    """Item2vec and popularity on the shipped log; one user's recommendations, explained."""
    from .recommend import Item2VecRecommender, PopularityRecommender, read_interactions

    text = resources.files("embedcraft").joinpath("data", "demo_interactions.tsv")
    rows = [line.split("\t") for line in text.read_text(encoding="utf-8").splitlines()[1:] if line]
    log = read_interactions(
        {
            "user": [r[0] for r in rows],
            "item": [r[1] for r in rows],
            "timestamp": [r[2] for r in rows],
        }
    )
    topic_of = {d["id"]: d["topic"] for d in docs}
    try:
        item2vec = Item2VecRecommender(dim=32, epochs=20, workers=1).fit(log)
    except MissingDependencyError:
        return None
    popularity = PopularityRecommender().fit(log)
    histories = log.histories()
    on_topic = {}
    for name, model in (("item2vec", item2vec), ("popularity", popularity)):
        good = total = 0
        for history in histories.values():
            read = {topic_of[i] for i in history}
            for item, _ in model.recommend(history, k=5):
                good += topic_of[item] in read
                total += 1
        on_topic[name] = good / total
    user = sorted(histories)[0]
    history = histories[user]
    recs = [(item, item2vec.explain(history, item)) for item, _ in item2vec.recommend(history, 3)]
    return RecommendSection(user, history[-3:], recs, on_topic)


def _collection_section(
    docs: list[dict[str, str]], queries: list[dict[str, str]], k: int
) -> CollectionSection | None:
    """Index the documents (topic as metadata) into a collection; search it three ways."""
    from .store import Collection

    encoders = ["bm25", "minilm-l6"]
    with tempfile.TemporaryDirectory(prefix="embedcraft-demo-") as folder:
        try:
            col = Collection(folder, encoders=encoders)
            t0 = time.perf_counter()
            col.add(
                [d["text"] for d in docs],
                [d["id"] for d in docs],
                [{"topic": d["topic"]} for d in docs],
            )
            ingest_ms = (time.perf_counter() - t0) * 1e3
        except MissingDependencyError:
            return None
        with col:
            texts = [q["text"] for q in queries]
            precision, hybrid = {}, {}
            for mode in ("sparse", "dense", "hybrid"):
                results = col.search_many(texts, k, mode=mode)
                on_topic = sum(
                    h.metadata["topic"] == q["topic"]
                    for q, hits in zip(queries, results, strict=True)
                    for h in hits
                )
                precision[mode] = on_topic / (len(queries) * k)
                if mode == "hybrid":
                    hybrid = {q["id"]: r for q, r in zip(queries, results, strict=True)}
            query, topic = queries[0]["text"], queries[0]["topic"]
            filtered = col.search(query, k, where={"topic": topic}, explain=True)
    return CollectionSection(encoders, ingest_ms, precision, hybrid, query, topic, filtered)


def _context_section(encoder: str = "minilm-l6", word: str = "bank") -> ContextSection | None:
    """The same word in river and money sentences, compared by its contextual vectors."""
    try:
        model = load_encoder(encoder)
        found = [model.encode_tokens(s).word_vector(word) for s in BANK_SENTENCES]
    except MissingDependencyError:
        return None
    unit = np.vstack(found)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    return ContextSection(encoder, word, BANK_SENTENCES, (unit @ unit.T).round(4).tolist())


def _word_section() -> WordSection | None:
    """Neighbours and analogies from the pretrained word vectors, when installed."""
    try:
        wv = load_word_vectors(DEMO_WORD_VECTORS)
    except MissingDependencyError:
        return None
    neighbors = {w: wv.most_similar(w, 5) for w in ("cat", "python", "bank")}
    questions = [("man", "king", "woman"), ("paris", "france", "tokyo"), ("walk", "walked", "swim")]
    analogies = [(q, wv.analogy(*q, k=3)) for q in questions]
    return WordSection(wv.name, neighbors, analogies)


def print_demo(result: DemoResult, out: TextIO) -> None:
    """The side-by-side report a person reads."""
    docs, _ = demo_corpus()
    topic_of = {d["id"]: d["topic"] for d in docs}
    text_of = {d["id"]: d["text"] for d in docs}
    width = max(len(r.encoder) for r in result.runs) + 2
    out.write(
        f"embedcraft demo: {result.documents} documents on 12 topics, {len(result.queries)} "
        f"queries; top {result.k} per encoder as id/topic/score, * = on the query's topic\n"
    )
    for name, reason in result.skipped.items():
        out.write(f"(skipped {name}: {reason})\n")
    for query in result.queries:
        out.write(f"\n{query['id']}  {query['text']!r}  [topic: {query['topic']}]\n")
        for r in result.runs:
            cells = []
            for h in r.hits[query["id"]]:
                mark = "*" if topic_of[h.id] == query["topic"] else " "
                cells.append(f"{h.id} {topic_of[h.id][:10]:<10} {h.score:6.2f}{mark}")
            out.write(f"  {r.encoder:<{width}}" + "  ".join(cells) + "\n")
        best = result.runs[-1].hits[query["id"]]
        if best:
            out.write(f"  {result.runs[-1].encoder}'s top hit: {text_of[best[0].id][:100]}\n")
    out.write(
        f"\n{'encoder':<{width}} {'width':>8} {'fit ms':>8} {'encode ms':>10} "
        f"{'search ms':>10}  on-topic@{result.k}\n"
    )
    for r in result.runs:
        out.write(
            f"{r.encoder:<{width}} {r.dim:>8} {r.fit_ms:>8.1f} {r.encode_ms:>10.1f} "
            f"{r.search_ms:>10.1f}  {r.topic_precision:>10.0%}\n"
        )
    if result.words is not None:
        w = result.words
        out.write(f"\nwords ({w.vectors}): nearest neighbours\n")
        for word, hits in w.neighbors.items():
            out.write(f"  {word:<8} " + ", ".join(f"{n} {s:.2f}" for n, s in hits) + "\n")
        out.write("analogies (a : b :: c : ?)\n")
        for (a, b, c), answers in w.analogies:
            shown = ", ".join(f"{n} {s:.2f}" for n, s in answers)
            out.write(f"  {a} : {b} :: {c} : ?   -> {shown}\n")
    if result.collection is not None:
        _print_collection(result.collection, out)
    if result.recommend is not None:
        _print_recommend(result.recommend, out)
    if result.context is not None:
        ctx = result.context
        out.write(f"\ncontext ({ctx.encoder}): cosine of {ctx.word!r} across sentences\n")
        for i, sentence in enumerate(ctx.sentences):
            row = " ".join(f"{x:5.2f}" for x in ctx.cosine[i])
            out.write(f"  [{i + 1}] {row}   {sentence}\n")


def _print_collection(c: CollectionSection, out: TextIO) -> None:
    out.write(
        f"\ncollection ({' + '.join(c.encoders)}): ingested in {c.ingest_ms:.0f} ms; on-topic "
        + ", ".join(f"{mode} {p:.0%}" for mode, p in c.topic_precision.items())
        + "\n"
    )
    out.write(f"  filtered search {c.filtered_query!r} where topic = {c.filtered_topic!r}:\n")
    for h in c.filtered_hits:
        out.write(f"    {h.rank}. {h.id} {h.score:.4f}  {h.text[:70]}\n")
        why = h.explanation or {}
        terms = ", ".join(t["term"] for t in why.get("bm25", {}).get("terms", []))
        words = ", ".join(w["word"] for w in why.get("minilm-l6", {}).get("words", []))
        out.write(f"       matched terms: {terms or '-'}; closest words: {words or '-'}\n")


def _print_recommend(r: RecommendSection, out: TextIO) -> None:
    docs, _ = demo_corpus()
    about = {d["id"]: f"[{d['topic']}] {d['text'][:60]}" for d in docs}
    out.write(
        "\nrecommendations (item2vec on a reading log of 80 users): on a topic the user reads, "
        + ", ".join(f"{name} {share:.0%}" for name, share in r.on_topic.items())
        + f"\n  {r.user} recently read: "
        + "; ".join(about[i][:40] for i in r.history)
        + "\n"
    )
    for item, reason in r.recommendations:
        liked = reason.removeprefix("because you liked ")
        why = f"because you read {about.get(liked, liked)[:40]}" if liked != reason else reason
        out.write(f"    {item} {about[item]}  ({why})\n")
