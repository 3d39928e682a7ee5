"""A million short documents on one small machine: ingest, reopen, search and updates by size.

Issue 17. The corpus is IMDB reviews (../shared/data/imdb_reviews) cut into passages of about
ten words (sentences packed or cut to 8-14 words, words kept in order, repeated texts dropped),
up to 1,000,000 of them; passages of the last 1,000 reviews are held out: the first `--queries`
are the queries, the next 10,000 the documents of the incremental add. The corpus is written
once as JSONL into the work folder (default ~/.cache/embedcraft/bench/scale, `--workdir`) and
reused. For each size in `--sizes` (the first N passages), in a fresh collection folder:

- ingest through the public API with encoders bm25 + minilm-l6-static, each phase timed (read
  the JSONL, encode, store with `Collection.add(vectors=...)`, index build, close), in a child
  process so its peak RSS is that size's own; the folder's size on disk;
- the CLI end to end (`embedcraft index CORPUS.jsonl -c DIR -e bm25 -e minilm-l6-static`), wall
  time and the child's peak RSS (`--skip-cli` to skip);
- reopen and the first hybrid query from a cold process;
- search latency (p50/p99, one query per call, after warm-up queries) in dense, sparse and
  hybrid modes, and with metadata filters admitting ~1% and ~30% of the documents; dense
  recall@10 against exact (numpy) search, unfiltered and 1%-filtered;
- at the largest size: an incremental add of 10,000 documents (encoded by the collection), 1%
  deleted and 1% upserted, then checked from a fresh process (deleted ids never come back,
  added and upserted documents are found by their text).

Then a growth table, a PNG plot in the work folder, PASS/FAIL per goal of the issue at the
largest size, and chromadb (PersistentClient, cosine HNSW) given the same vectors at the
`--chroma` sizes: ingest wall and CPU time, reopen, query p50/p99, recall@10 (a chroma run is
stopped after 20 minutes).

    python bench/scale.py --sizes 10000,100000,1000000 [--queries 1000] [--workdir DIR]
                          [--chroma 100000] [--skip-chroma] [--skip-cli] [--keep]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from _common import SHARED_DATA, machine_report

T = TypeVar("T")
K = 10
ENCODERS = ["bm25", "minilm-l6-static"]
DENSE = "minilm-l6-static"
WORDS_LO, WORDS_HI, WORDS_TARGET = 8, 14, 10
MAX_DOCS = 1_000_000
HOLDOUT_REVIEWS = 1_000
ADD_DOCS = 10_000
SAMPLE = 200
WARMUP = 20
BATCH = 10_000
CHROMA_CAP_S = 20 * 60
CORPUS_VERSION = 1
SENTENCE = re.compile(r"(?<=[.!?])\s+")
GOALS = {
    "ingest_s": 300.0,
    "rss_mb": 4096.0,
    "reopen_s": 2.0,
    "hybrid_p99_ms": 20.0,
    "recall": 0.95,
    "filtered_p99_ms": 30.0,
    "add_share": 0.05,
    "flat_ratio": 1.5,
}


def say(*parts: Any) -> None:
    print(*parts, flush=True)


# ---------------------------------------------------------------------------- corpus
def review_passages(text: str) -> list[list[str]]:
    """A review's words as passages of ~10 words: sentences packed together or cut (8-14)."""
    out: list[list[str]] = []
    buf: list[str] = []
    for sentence in SENTENCE.split(text.replace("<br />", " ")):
        words = sentence.split()
        if not words:
            continue
        if buf and len(buf) + len(words) > WORDS_HI and len(buf) >= WORDS_LO:
            out.append(buf)
            buf = []
        buf = buf + words
        while len(buf) > WORDS_HI:
            out.append(buf[:WORDS_TARGET])
            buf = buf[WORDS_TARGET:]
        if len(buf) >= WORDS_TARGET:
            out.append(buf)
            buf = []
    if buf:
        if out and len(out[-1]) + len(buf) <= WORDS_HI:
            out[-1] = out[-1] + buf
        elif out and len(buf) < WORDS_LO:  # a short tail: share the last two passages' words
            both = out.pop() + buf
            out += [both[: len(both) // 2], both[len(both) // 2 :]]
        else:
            out.append(buf)
    return out


def imdb_reviews() -> Iterator[dict[str, Any]]:
    path = SHARED_DATA / "imdb_reviews" / "imdb.jsonl.gz"
    if not path.is_file():
        raise SystemExit(f"this benchmark needs {path}")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


@dataclass
class Corpus:
    folder: Path
    docs: int
    holdout: int
    reviews: int

    @property
    def path(self) -> Path:
        return self.folder / "corpus.jsonl"

    @property
    def holdout_path(self) -> Path:
        return self.folder / "holdout.jsonl"


def build_corpus(folder: Path) -> Corpus:
    """The passages as JSONL (corpus and held-out), written once and reused."""
    info = folder / "corpus.json"
    if info.is_file():
        saved = json.loads(info.read_text())
        if saved.pop("version", None) == CORPUS_VERSION:
            return Corpus(folder, **saved)
    folder.mkdir(parents=True, exist_ok=True)
    reviews = list(imdb_reviews())
    first_held = len(reviews) - HOLDOUT_REVIEWS
    seen: set[str] = set()
    counts = {"docs": 0, "holdout": 0}
    tmp = {"docs": folder / "corpus.jsonl.tmp", "holdout": folder / "holdout.jsonl.tmp"}
    with tmp["docs"].open("w") as docs, tmp["holdout"].open("w") as held:
        for r, review in enumerate(reviews):
            kind = "holdout" if r >= first_held else "docs"
            if kind == "docs" and counts["docs"] >= MAX_DOCS:
                continue
            for part, words in enumerate(review_passages(review["text"])):
                text = " ".join(words)
                if text in seen or (kind == "docs" and counts["docs"] >= MAX_DOCS):
                    continue
                seen.add(text)
                row = {
                    "id": f"r{r}-p{part}",
                    "text": text,
                    "review": r,
                    "sentiment": review["label"],
                    "length": len(words),
                    "part": part,
                }
                (held if kind == "holdout" else docs).write(json.dumps(row) + "\n")
                counts[kind] += 1
    tmp["docs"].replace(folder / "corpus.jsonl")
    tmp["holdout"].replace(folder / "holdout.jsonl")
    corpus = Corpus(folder, counts["docs"], counts["holdout"], first_held)
    info.write_text(
        json.dumps(
            {
                "version": CORPUS_VERSION,
                "docs": corpus.docs,
                "holdout": corpus.holdout,
                "reviews": first_held,
            }
        )
    )
    return corpus


def read_rows(path: Path, limit: int | None = None, skip: int = 0) -> list[dict[str, Any]]:
    rows = []
    with path.open() as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= skip + limit:
                break
            if i >= skip:
                rows.append(json.loads(line))
    return rows


def columns(rows: list[dict[str, Any]]) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Texts, ids and metadata (every other field) of corpus rows."""
    texts = [r["text"] for r in rows]
    ids = [r["id"] for r in rows]
    meta = [{k: v for k, v in r.items() if k not in ("id", "text")} for r in rows]
    return texts, ids, meta


def corpus_file(corpus: Corpus, n: int) -> Path:
    """A JSONL file of exactly the first n passages (for the CLI), written once."""
    if n == corpus.docs:
        return corpus.path
    path = corpus.folder / f"corpus_{n}.jsonl"
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        with corpus.path.open() as src, tmp.open("w") as dst:
            for i, line in enumerate(src):
                if i >= n:
                    break
                dst.write(line)
        tmp.replace(path)
    return path


# ---------------------------------------------------------------------------- child processes
@dataclass
class Child:
    """A finished child process: exit code, wall and CPU seconds, peak RSS, its JSON result."""

    rc: int
    wall: float
    cpu: float
    peak_mb: float
    timed_out: bool
    result: dict[str, Any] = field(default_factory=dict)


def run_child(
    cmd: list[str], timeout: float | None = None, result: Path | None = None, stdout: Any = None
) -> Child:
    """Run `cmd` (output shown as it comes, unless `stdout` takes it) and measure it with
    wait4: its own peak RSS and CPU seconds. `result`: a JSON file the child writes."""
    sys.stdout.flush()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=stdout)
    timed_out = False
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if timeout is not None and time.perf_counter() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                timed_out = True
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    data = json.loads(result.read_text()) if result and result.is_file() and rc == 0 else {}
    cpu = usage.ru_utime + usage.ru_stime
    return Child(rc, wall, cpu, usage.ru_maxrss / 1024, timed_out, data)


class WorkerFailed(Exception):
    """A worker process exited with an error (its traceback is already on the screen)."""


def run_worker(job: str, spec: dict[str, Any], timeout: float | None = None) -> Child:
    """This script, in a fresh process, running worker `job` on `spec`; its result as JSON."""
    result = Path(spec["run"]) / f"{job}-{os.getpid()}.json"
    result.unlink(missing_ok=True)
    spec = {**spec, "result": str(result)}
    cmd = [sys.executable, "-u", __file__, "--_worker", job, "--_spec", json.dumps(spec)]
    child = run_child(cmd, timeout, result)
    result.unlink(missing_ok=True)
    if child.rc != 0 and not child.timed_out:
        raise WorkerFailed(f"the {job} step failed (exit code {child.rc})")
    return child


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


# ---------------------------------------------------------------------------- workers
class Phases:
    """Wall and CPU seconds of named phases, each printed as it ends."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def run(
        self, name: str, func: Callable[[], T], extra: Callable[[float], str] | None = None
    ) -> T:
        c0, t0 = time.process_time(), time.perf_counter()
        out = func()
        self.wall[name] = time.perf_counter() - t0
        self.cpu[name] = time.process_time() - c0
        note = f"; {extra(self.wall[name])}" if extra else ""
        say(f"    {name:<12} {self.wall[name]:8.2f} s  (CPU {self.cpu[name]:.2f} s{note})")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"wall": self.wall, "cpu": self.cpu}


def build_indexes(col: Any) -> str:
    """Bring every derived index up to date: `build_indexes()` where the library has it."""
    if hasattr(col, "build_indexes"):
        col.build_indexes()
        return "build_indexes()"
    col.rebuild()
    return "rebuild() (no build_indexes yet)"


def update_indexes(col: Any, query: str) -> str:
    """After a write: `build_indexes()`, else one search per mode (indexes update lazily)."""
    if hasattr(col, "build_indexes"):
        col.build_indexes()
        return "build_indexes()"
    for mode in ("dense", "sparse"):
        col.search(query, k=K, mode=mode)
    return "a dense and a sparse search (no build_indexes yet)"


def store_in_chunks(
    col: Any, texts: list[str], ids: list[str], meta: list[dict[str, Any]], vectors: np.ndarray
) -> None:
    """`add` in pieces of 100,000 documents (slices: no copy of the vectors), as a program
    streaming a large file would."""
    for start in range(0, len(texts), 100_000):
        end = start + 100_000
        given = {DENSE: vectors[start:end]}
        col.add(texts[start:end], ids[start:end], meta[start:end], vectors=given, batch_size=BATCH)


def worker_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    from embedcraft.catalog import load_encoder
    from embedcraft.store import Collection

    n, folder = spec["n"], Path(spec["folder"])
    ph = Phases()
    rows = ph.run("read", lambda: read_rows(Path(spec["corpus"]), n))
    texts, ids, meta = columns(rows)
    del rows
    enc = load_encoder(DENSE)
    vectors = ph.run(
        "encode",
        lambda: np.asarray(enc.encode(texts, batch_size=1024)),
        lambda s: f"{n / s:,.0f} texts/s",
    )
    col = ph.run("create", lambda: Collection(folder, encoders=ENCODERS))
    # Writes inside a bulk block leave the indexes to the block's end: entered and left by
    # hand here so that storing and the index build are timed apart.
    bulk = col.bulk()
    bulk.__enter__()
    ph.run(
        "store",
        lambda: store_in_chunks(col, texts, ids, meta, vectors),
        lambda s: f"{n / s:,.0f} docs/s",
    )
    ph.run("index build", lambda: bulk.__exit__(None, None, None))
    how = "the end of Collection.bulk()"
    say(f"    (index build by {how})")
    ph.run("close", col.close)
    np.save(spec["vectors"], vectors.astype(np.float32))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**ph.as_dict(), "index_by": how, "self_peak_mb": peak}


def worker_reopen(spec: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    from embedcraft.store import Collection

    imported = time.perf_counter() - t0
    t0 = time.perf_counter()
    col = Collection(spec["folder"])
    reopen = time.perf_counter() - t0
    t0 = time.perf_counter()
    col.search(spec["query"], k=K)
    first = time.perf_counter() - t0
    col.close()
    return {"import": imported, "reopen": reopen, "first_query": first}


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def exact_top(docs: np.ndarray, queries: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of the exact top K by inner product (among `rows` when given), per query."""
    sub = docs if rows is None else docs[rows]
    k = min(K, len(sub))
    out = []
    for start in range(0, len(queries), 64):
        scores = queries[start : start + 64] @ sub.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        out.append(np.take_along_axis(top, order, 1))
    found = np.concatenate(out)
    return found if rows is None else rows[found]


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth, strict=True)])
    )


def cutoff(reviews: np.ndarray, share: float) -> int:
    """A review number R such that about `share` of the documents have review < R."""
    return int(reviews[min(int(share * len(reviews)), len(reviews) - 1)])


def timed_calls(queries: list[T], call: Callable[[T], list[str]]) -> tuple[np.ndarray, list]:
    """Milliseconds of each call (after WARMUP warm-up calls), and the results."""
    for q in queries[:WARMUP]:
        call(q)
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append(call(q))
        times.append(time.perf_counter() - t0)
    return np.array(times) * 1000, found


def latency(ms: np.ndarray) -> dict[str, float]:
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}


def worker_search(spec: dict[str, Any]) -> dict[str, Any]:
    from embedcraft.catalog import load_encoder
    from embedcraft.store import Collection

    n = spec["n"]
    queries = [r["text"] for r in read_rows(Path(spec["holdout"]), spec["queries"])]
    rows = read_rows(Path(spec["corpus"]), n)
    ids = np.array([r["id"] for r in rows], dtype=object)
    reviews = np.array([r["review"] for r in rows])
    del rows
    docs = unit(np.load(spec["vectors"], mmap_mode="r"))
    qvecs = unit(load_encoder(DENSE).encode_queries(queries))
    filters = {}
    for label, share in (("1%", 0.01), ("30%", 0.30)):
        r = cutoff(reviews, share)
        filters[label] = ({"review": {"$lt": r}}, np.flatnonzero(reviews < r))
        say(f"    filter {label}: review < {r} admits {len(filters[label][1]) / n:.2%} of {n:,}")
    col = Collection(spec["folder"])
    say(f"    {WARMUP} warm-up queries before each series; one query per call, top {K}")
    out: dict[str, Any] = {"filters": {k: len(v[1]) / n for k, v in filters.items()}}
    found: dict[str, list] = {}
    series: list[tuple[str, str, str | None]] = [
        ("dense", "dense", None),
        ("sparse", "sparse", None),
        ("hybrid", "hybrid", None),
        ("hybrid 1%", "hybrid", "1%"),
        ("dense 1%", "dense", "1%"),
        ("hybrid 30%", "hybrid", "30%"),
        ("dense 30%", "dense", "30%"),
    ]
    for name, mode, flt in series:
        where = filters[flt][0] if flt else None
        ms, found[name] = timed_calls(
            queries, lambda q, m=mode, w=where: [h.id for h in col.search(q, k=K, mode=m, where=w)]
        )
        out[name] = latency(ms)
        say(f"    {name:<12} p50 {out[name]['p50']:7.2f} ms   p99 {out[name]['p99']:7.2f} ms")
    ms, _ = timed_calls(list(qvecs), lambda v: col.nearest_ids(v[None], k=K)[0][0])
    out["vector in"] = latency(ms)
    say(
        f"    {'vector in':<12} p50 {out['vector in']['p50']:7.2f} ms   "
        f"p99 {out['vector in']['p99']:7.2f} ms  (nearest_ids, query vector given)"
    )
    col.close()
    truth = exact_top(docs, qvecs)
    out["recall"] = recall(found["dense"], [ids[t].tolist() for t in truth])
    truth = exact_top(docs, qvecs, filters["1%"][1])
    out["recall 1%"] = recall(found["dense 1%"], [ids[t].tolist() for t in truth])
    say(
        f"    dense recall@{K} {out['recall']:.4f}; with the 1% filter {out['recall 1%']:.4f} "
        f"(exact numpy search is the truth)"
    )
    return out


def found_share(col: Any, items: list[tuple[str, str]], mode: str) -> float:
    """Share of (id, text) pairs whose text, searched, returns the id in the top K."""
    return float(np.mean([i in {h.id for h in col.search(t, k=K, mode=mode)} for i, t in items]))


def worker_mutate(spec: dict[str, Any]) -> dict[str, Any]:
    """Incremental add (timed against the full ingest), then 1% deleted and 1% upserted."""
    from embedcraft.store import Collection

    n = spec["n"]
    added = read_rows(Path(spec["holdout"]), ADD_DOCS, skip=spec["queries"])
    texts, ids, meta = columns(added)
    say(f"    {len(added):,} held-out passages to add (not in the corpus, not queries)")
    ph = Phases()
    col = ph.run("reopen", lambda: Collection(spec["folder"]))
    ph.run(
        "add",
        lambda: col.add(texts, ids, meta, batch_size=BATCH),
        lambda s: f"{len(added) / s:,.0f} docs/s, encoded by the collection",
    )
    how = ph.run("index update", lambda: update_indexes(col, texts[0]))
    say(f"    (index update by {how})")
    ph.run("close", col.close)
    col = Collection(spec["folder"])
    sample = random.Random(1).sample(list(zip(ids, texts, strict=True)), min(SAMPLE, len(ids)))
    added_found = found_share(col, sample, "dense")
    say(f"    added docs found by their own text (dense, top {K}): {added_found:.1%}")
    corpus = read_rows(Path(spec["corpus"]), n)
    picked = random.Random(17).sample(range(n), 2 * (n // 100))
    gone, changed = picked[: n // 100], picked[n // 100 :]
    ph.run(
        "delete 1%",
        lambda: col.delete([corpus[i]["id"] for i in gone]),
        lambda s: f"{len(gone):,} docs",
    )
    new_texts = [corpus[(i + n // 2) % n]["text"] + " (updated)" for i in changed]
    new_meta = [
        {**columns([corpus[i]])[2][0], "length": len(t.split())}
        for i, t in zip(changed, new_texts, strict=True)
    ]
    up_ids = [corpus[i]["id"] for i in changed]
    ph.run(
        "upsert 1%",
        lambda: col.upsert(new_texts, up_ids, new_meta, batch_size=BATCH),
        lambda s: f"{len(changed):,} docs, new texts",
    )
    ph.run("index update", lambda: update_indexes(col, new_texts[0]))
    ph.run("close", col.close)
    return {
        **ph.as_dict(),
        "added": len(added),
        "added_found": added_found,
        "added_sample": sample,
        "deleted": [corpus[i]["id"] for i in gone],
        "deleted_sample": [(corpus[i]["id"], corpus[i]["text"]) for i in gone[:SAMPLE]],
        "upserted_sample": list(zip(up_ids, new_texts, strict=True))[:SAMPLE],
        "expected_count": n + len(added) - len(gone),
    }


def worker_verify(spec: dict[str, Any]) -> dict[str, Any]:
    """From a fresh process: deleted ids never come back; added and upserted docs are found."""
    from embedcraft.store import Collection

    done = json.loads(Path(spec["mutated"]).read_text())
    col = Collection(spec["folder"])
    deleted = set(done["deleted"])
    out: dict[str, Any] = {"count_ok": col.count() == done["expected_count"]}
    say(f"    count {col.count():,} (expected {done['expected_count']:,})")
    for mode in ("dense", "sparse", "hybrid"):
        hits = [h.id for _, t in done["deleted_sample"] for h in col.search(t, k=K, mode=mode)]
        back = sum(i in deleted for i in hits)
        out[f"deleted_returned_{mode}"] = back
        say(
            f"    deleted ids returned searching {len(done['deleted_sample'])} deleted texts, "
            f"{mode}: {back}"
        )
    refused = 0
    for doc_id, _ in done["deleted_sample"]:
        try:
            col.get(doc_id)
        except Exception:  # any error is the refusal asked for
            refused += 1
    out["get_refused"] = refused / len(done["deleted_sample"])
    say(f"    get() of a deleted id raises: {refused} of {len(done['deleted_sample'])}")
    upserted = [tuple(p) for p in done["upserted_sample"]]
    stored = col.get([i for i, _ in upserted])
    out["upserted_text_ok"] = all(d.text == t for d, (_, t) in zip(stored, upserted, strict=True))
    out["upserted_found"] = found_share(col, upserted, "dense")
    out["upserted_found_hybrid"] = found_share(col, upserted, "hybrid")
    out["added_found"] = found_share(col, [tuple(p) for p in done["added_sample"]], "dense")
    say(
        f"    upserted docs: get() has the new text {out['upserted_text_ok']}; found by it "
        f"dense {out['upserted_found']:.1%}, hybrid {out['upserted_found_hybrid']:.1%}; "
        f"added docs found (dense) {out['added_found']:.1%}"
    )
    col.close()
    return out


def chroma_vectors(spec: dict[str, Any], texts: list[str]) -> np.ndarray:
    """Our ingest's vectors of the first n passages, or (when that size was not run) encoded."""
    path = Path(spec["vectors"])
    if path.is_file():
        return unit(np.load(path))
    from embedcraft.catalog import load_encoder

    return unit(load_encoder(DENSE).encode(texts, batch_size=1024))


def worker_chroma_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    import chromadb

    texts, ids, meta = columns(read_rows(Path(spec["corpus"]), spec["n"]))
    vectors = chroma_vectors(spec, texts)
    c0, t0 = time.process_time(), time.perf_counter()
    client = chromadb.PersistentClient(path=spec["folder"])
    col = client.create_collection(
        "scale", metadata={"hnsw:space": "cosine"}, embedding_function=None
    )
    most = client.get_max_batch_size() if hasattr(client, "get_max_batch_size") else 5000
    batch = min(BATCH, most)
    for start in range(0, len(texts), batch):
        stop = start + batch
        col.add(
            ids=ids[start:stop],
            embeddings=vectors[start:stop],
            documents=texts[start:stop],
            metadatas=meta[start:stop],
        )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    say(
        f"    chromadb add ({batch:,} per batch): {wall:.2f} s (CPU {cpu:.2f} s), "
        f"{len(texts) / wall:,.0f} docs/s"
    )
    return {"wall": wall, "cpu": cpu, "batch": batch}


def worker_chroma_query(spec: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    import chromadb

    from embedcraft.catalog import load_encoder

    imported = time.perf_counter() - t0
    queries = [r["text"] for r in read_rows(Path(spec["holdout"]), spec["queries"])]
    qvecs = unit(load_encoder(DENSE).encode_queries(queries))
    t0 = time.perf_counter()
    col = chromadb.PersistentClient(path=spec["folder"]).get_collection("scale")
    reopen = time.perf_counter() - t0
    t0 = time.perf_counter()
    col.query(query_embeddings=[qvecs[0]], n_results=K)
    first = time.perf_counter() - t0
    ms, found = timed_calls(
        list(qvecs), lambda v: col.query(query_embeddings=[v], n_results=K)["ids"][0]
    )
    rows = read_rows(Path(spec["corpus"]), spec["n"])
    ids = np.array([r["id"] for r in rows], dtype=object)
    truth = exact_top(chroma_vectors(spec, [r["text"] for r in rows]), qvecs)
    out = {
        "import": imported,
        "reopen": reopen,
        "first_query": first,
        **latency(ms),
        "recall": recall(found, [ids[t].tolist() for t in truth]),
    }
    say(
        f"    chromadb reopen {reopen:.2f} s + first query {first:.3f} s (import {imported:.2f} s)"
        f"; p50 {out['p50']:.2f} ms p99 {out['p99']:.2f} ms; recall@{K} {out['recall']:.4f}"
    )
    return out


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ingest": worker_ingest,
    "reopen": worker_reopen,
    "search": worker_search,
    "mutate": worker_mutate,
    "verify": worker_verify,
    "chroma_ingest": worker_chroma_ingest,
    "chroma_query": worker_chroma_query,
}


# ---------------------------------------------------------------------------- the steps
@dataclass
class Setup:
    corpus: Corpus
    run: Path
    queries: int
    cli: Path | None

    def spec(self, n: int, folder: Path, **extra: Any) -> dict[str, Any]:
        return {
            "n": n,
            "folder": str(folder),
            "corpus": str(self.corpus.path),
            "holdout": str(self.corpus.holdout_path),
            "queries": self.queries,
            "vectors": str(self.run / f"vectors_{n}.npy"),
            "run": str(self.run),
            **extra,
        }


def step_ingest(setup: Setup, n: int) -> dict[str, Any]:
    folder = setup.run / f"col_{n}"
    shutil.rmtree(folder, ignore_errors=True)
    say(f"  ingest through the API ({'+'.join(ENCODERS)}), in a child process:")
    child = run_worker("ingest", setup.spec(n, folder))
    total = sum(child.result["wall"].values())
    out = {
        "total": total,
        "per_1k": total / n * 1000,
        "peak_mb": child.peak_mb,
        "disk_mb": folder_mb(folder),
        "cpu": sum(child.result["cpu"].values()),
        **child.result,
    }
    say(
        f"  ingest total {total:.1f} s = {out['per_1k']:.3f} s per 1,000 docs; peak RSS "
        f"{child.peak_mb:,.0f} MB; folder on disk {out['disk_mb']:,.0f} MB"
    )
    return out


def step_cli(setup: Setup, n: int) -> dict[str, Any] | None:
    if setup.cli is None:
        return None
    source = corpus_file(setup.corpus, n)
    folder = setup.run / f"cli_{n}"
    shutil.rmtree(folder, ignore_errors=True)
    cmd = [str(setup.cli), "index", str(source), "-c", str(folder)]
    cmd += [a for e in ENCODERS for a in ("-e", e)]
    say(f"  CLI: {' '.join(cmd[1:])}")
    printed = setup.run / "cli.json"
    with printed.open("w") as fh:
        child = run_child([*cmd, "--json"], stdout=fh)
    if child.rc != 0:
        say(f"  CLI failed (exit code {child.rc}): {printed.read_text()[-2000:]}")
        return None
    own = json.loads(printed.read_text()).get("seconds")
    indexes = folder / "indexes"
    out = {"wall": child.wall, "cpu": child.cpu, "peak_mb": child.peak_mb}
    out |= {"disk_mb": folder_mb(folder), "index_mb": folder_mb(indexes) if indexes.is_dir() else 0}
    say(
        f"  CLI end to end {child.wall:.1f} s (CPU {child.cpu:.1f} s) = "
        f"{child.wall / n * 1000:.3f} s per 1,000 docs; peak RSS {child.peak_mb:,.0f} MB; "
        f"folder {out['disk_mb']:,.0f} MB; the command's own figure {own:.1f} s"
    )
    if out["index_mb"] < 0.1 * out["disk_mb"]:
        say(
            f"  (the CLI left indexes/ at {out['index_mb']:.1f} MB: it did not build the "
            "indexes, the first search will)"
        )
    printed.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    return out


def step_reopen(setup: Setup, n: int) -> dict[str, Any]:
    query = read_rows(setup.corpus.holdout_path, 1)[0]["text"]
    child = run_worker("reopen", setup.spec(n, setup.run / f"col_{n}", query=query))
    r = child.result
    together = r["reopen"] + r["first_query"]
    say(
        f"  cold process: reopen {r['reopen']:.3f} s, first hybrid query {r['first_query']:.3f}"
        f" s, together {together:.3f} s (import embedcraft {r['import']:.2f} s)"
    )
    return r


def step_search(setup: Setup, n: int) -> dict[str, Any]:
    say(f"  search, {setup.queries:,} held-out queries from one process:")
    return run_worker("search", setup.spec(n, setup.run / f"col_{n}")).result


def step_mutate(setup: Setup, n: int, ingest_total: float) -> dict[str, Any]:
    folder = setup.run / f"col_{n}"
    say(f"  incremental add of {ADD_DOCS:,}, then delete 1% and upsert 1% (fresh process):")
    done = run_worker("mutate", setup.spec(n, folder))
    w = done.result["wall"]
    add_total = w["add"] + w["index update"]
    share = add_total / ingest_total
    say(
        f"  incremental add {add_total:.2f} s (add + index update) = {share:.2%} of the full "
        f"ingest ({ingest_total:.1f} s)"
    )
    saved = setup.run / "mutated.json"
    saved.write_text(json.dumps(done.result))
    say("  checks from a fresh process after reopen:")
    try:
        checks: dict[str, Any] | None = run_worker(
            "verify", setup.spec(n, folder, mutated=str(saved))
        ).result
    except WorkerFailed as exc:
        say(f"  {exc}")
        checks = None
    saved.unlink()
    return {"add_total": add_total, "add_share": share, "mutate": done.result, "checks": checks}


def step_chroma(setup: Setup, n: int, ours: dict[str, Any] | None) -> dict[str, Any] | None:
    if n > setup.corpus.docs:
        say(f"chromadb at {n:,}: the corpus has only {setup.corpus.docs:,} passages; skipped")
        return None
    folder = setup.run / f"chroma_{n}"
    shutil.rmtree(folder, ignore_errors=True)
    say(f"chromadb at {n:,} (same vectors, cosine HNSW, in a child process):")
    child = run_worker("chroma_ingest", setup.spec(n, folder), timeout=CHROMA_CAP_S)
    if child.timed_out:
        say(f"  chromadb ingest did not finish in {CHROMA_CAP_S // 60} min")
        shutil.rmtree(folder, ignore_errors=True)
        return None
    out = {**child.result, "peak_mb": child.peak_mb, "disk_mb": folder_mb(folder)}
    say(f"  chromadb peak RSS {child.peak_mb:,.0f} MB; folder {out['disk_mb']:,.0f} MB")
    try:
        out.update(run_worker("chroma_query", setup.spec(n, folder)).result)
    except WorkerFailed as exc:
        say(f"  {exc}")
        shutil.rmtree(folder, ignore_errors=True)
        return None
    if ours:
        ing = ours["ingest"]
        wall = ing["wall"]["store"] + ing["wall"]["index build"] + ing["wall"]["close"]
        cpu = ing["cpu"]["store"] + ing["cpu"]["index build"] + ing["cpu"]["close"]
        p99 = ours["search"]["vector in"]["p99"]
        say(
            f"  ours/chroma, ingest of the same vectors (store + index build + close vs add): "
            f"wall {wall:.1f}/{out['wall']:.1f} s = {wall / out['wall']:.2f}, "
            f"CPU {cpu:.1f}/{out['cpu']:.1f} s = {cpu / out['cpu']:.2f}"
        )
        say(
            f"  ours/chroma, p99 of a query vector (nearest_ids vs query): "
            f"{p99:.2f}/{out['p99']:.2f} ms = {p99 / out['p99']:.2f}; text query (dense search,"
            f" encoding included) p99 {ours['search']['dense']['p99']:.2f} ms; reopen "
            f"{ours['reopen']['reopen']:.2f}/{out['reopen']:.2f} s; recall@{K} "
            f"{ours['search']['recall']:.4f}/{out['recall']:.4f}"
        )
    else:
        say(f"  (no ratio: size {n:,} is not among --sizes, so ours was not measured there)")
    shutil.rmtree(folder, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------- report
def growth_table(results: dict[int, dict[str, Any]]) -> None:
    modes = ("dense", "sparse", "hybrid", "hybrid 1%", "dense 1%")
    head = f"{'docs':>9} {'ingest s':>9} {'s/1k':>6} {'RSS MB':>7} {'disk MB':>8}"
    head += f" {'reopen':>7} {'1st q':>6}"
    head += "".join(f" {m + ' p50/p99':>20}" for m in modes) + f" {'recall':>7} {'rec 1%':>7}"
    say("\ngrowth (ms for latencies):\n" + head)
    for n, r in results.items():
        i, s, o = r["ingest"], r["search"], r["reopen"]
        line = f"{n:>9,} {i['total']:>9.1f} {i['per_1k']:>6.3f} {i['peak_mb']:>7,.0f}"
        line += f" {i['disk_mb']:>8,.0f} {o['reopen']:>7.3f} {o['first_query']:>6.3f}"
        line += "".join(f" {s[m]['p50']:>9.2f}/{s[m]['p99']:<10.2f}" for m in modes)
        say(line + f" {s['recall']:>7.4f} {s['recall 1%']:>7.4f}")
    for n, r in results.items():
        if r.get("cli"):
            say(f"  CLI at {n:,}: {r['cli']['wall']:.1f} s, peak RSS {r['cli']['peak_mb']:,.0f} MB")


def flat_ratio(results: dict[int, dict[str, Any]]) -> float | None:
    sizes = sorted(results)
    if len(sizes) < 2:
        return None
    small, large = results[sizes[0]]["ingest"]["per_1k"], results[sizes[-1]]["ingest"]["per_1k"]
    say(f"per-document ingest time, {sizes[-1]:,} vs {sizes[0]:,} docs: {large / small:.2f}x")
    return large / small


def plot(results: dict[int, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(sizes, [results[n]["ingest"]["per_1k"] for n in sizes], "o-", label="API ingest")
    cli = [n for n in sizes if results[n].get("cli")]
    if cli:
        left.plot(cli, [results[n]["cli"]["wall"] / n * 1000 for n in cli], "s--", label="CLI")
    left.set(xscale="log", xlabel="documents", ylabel="s per 1,000 docs", title="ingest")
    left.set_ylim(bottom=0)
    for mode in ("dense", "sparse", "hybrid", "hybrid 1%", "dense 1%"):
        right.plot(sizes, [results[n]["search"][mode]["p99"] for n in sizes], "o-", label=mode)
    right.set(xscale="log", xlabel="documents", ylabel="p99 ms", title="search latency p99")
    right.set_ylim(bottom=0)
    for ax in (left, right):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    say(f"plot: {path}")


def goal_rows(r: dict[str, Any], ratio: float | None) -> list[tuple[str, bool | None, str]]:
    """(goal, met or None when not measured, the figure) for one size's results."""
    i, o, s = r["ingest"], r["reopen"], r["search"]
    together = o["reopen"] + o["first_query"]
    filtered = max(s["hybrid 1%"]["p99"], s["dense 1%"]["p99"])
    rows = [
        ("ingest + index < 300 s", i["total"] < GOALS["ingest_s"], f"{i['total']:.1f} s"),
        ("peak RSS < 4 GB", i["peak_mb"] < GOALS["rss_mb"], f"{i['peak_mb']:,.0f} MB"),
        ("reopen < 2 s", o["reopen"] < GOALS["reopen_s"], f"{o['reopen']:.3f} s"),
        ("reopen + first query < 2 s", together < GOALS["reopen_s"], f"{together:.3f} s"),
        ("hybrid p99 < 20 ms", s["hybrid"]["p99"] < GOALS["hybrid_p99_ms"],
         f"{s['hybrid']['p99']:.2f} ms"),
        ("dense recall@10 >= 0.95", s["recall"] >= GOALS["recall"], f"{s['recall']:.4f}"),
        ("filtered (1%) p99 < 30 ms", filtered < GOALS["filtered_p99_ms"],
         f"{filtered:.2f} ms (worse of hybrid and dense)"),
    ]  # fmt: skip
    m = r.get("mutate")
    if m:
        share = m["add_share"]
        rows.append(("incremental add of 10k < 5% of ingest", share < GOALS["add_share"],
                     f"{share:.2%}"))  # fmt: skip
        rows += check_rows(m["checks"])
    flat = None if ratio is None else ratio <= GOALS["flat_ratio"]
    shown = "n/a (one size)" if ratio is None else f"{ratio:.2f}x"
    return [*rows, ("per-doc ingest time largest/smallest <= 1.5", flat, shown)]


def check_rows(c: dict[str, Any] | None) -> list[tuple[str, bool | None, str]]:
    """The correctness checks after add, delete and upsert (all FAIL when they did not run)."""
    names = ("added docs found by their text >= 95%", "deleted ids never returned, get() raises",
             "upserted docs found by new text >= 95%")  # fmt: skip
    if c is None:
        return [(name, False, "the check did not run") for name in names]
    back = sum(c[f"deleted_returned_{x}"] for x in ("dense", "sparse", "hybrid"))
    return [
        (names[0], c["added_found"] >= 0.95, f"{c['added_found']:.1%}"),
        (names[1], back == 0 and c["get_refused"] == 1,
         f"{back} returned, get refused {c['get_refused']:.0%}"),
        (names[2], c["upserted_found"] >= 0.95 and c["upserted_text_ok"],
         f"{c['upserted_found']:.1%}, stored text new: {c['upserted_text_ok']}"),
    ]  # fmt: skip


def verdicts(results: dict[int, dict[str, Any]], ratio: float | None) -> None:
    n = max(results)
    say(f"\ngoals at {n:,} documents:")
    for name, ok, shown in goal_rows(results[n], ratio):
        verdict = "n/a " if ok is None else "PASS" if ok else "FAIL"
        say(f"  {verdict}  {name:<44} {shown}")


# ---------------------------------------------------------------------------- main
def chroma_ready() -> bool:
    try:
        import chromadb  # noqa: F401
    except ImportError:
        say("chromadb not installed: pip install embedcraft[bench]")
        return False
    return True


def find_cli() -> Path | None:
    path = Path(sys.executable).parent / "embedcraft"
    found = path if path.is_file() else shutil.which("embedcraft")
    if not found:
        say("(the embedcraft command is not installed: CLI runs skipped)")
    return Path(found) if found else None


def sizes_arg(text: str) -> list[int]:
    return sorted({int(s.replace("_", "")) for s in text.split(",") if s.strip()})


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes_arg, default=sizes_arg("10000,100000,1000000"))
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries")
    parser.add_argument(
        "--workdir", type=Path, default=Path("~/.cache/embedcraft/bench/scale").expanduser()
    )
    parser.add_argument("--chroma", type=sizes_arg, default=sizes_arg("100000"))
    parser.add_argument("--skip-chroma", action="store_true")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the collection folders")
    parser.add_argument("--_worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--_spec", help=argparse.SUPPRESS)
    return parser.parse_args()


def run_sizes(setup: Setup, sizes: list[int], keep: bool) -> dict[int, dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        say(f"\n== {n:,} documents ==")
        try:
            results[n] = run_size(setup, n, n == sizes[-1])
        except WorkerFailed as exc:
            say(f"  {exc}: size {n:,} left out of the tables")
        if not keep:
            shutil.rmtree(setup.run / f"col_{n}", ignore_errors=True)
    return results


def run_size(setup: Setup, n: int, last: bool) -> dict[str, Any]:
    r: dict[str, Any] = {"ingest": step_ingest(setup, n)}
    r["cli"] = step_cli(setup, n)
    r["reopen"] = step_reopen(setup, n)
    r["search"] = step_search(setup, n)
    if last:
        r["mutate"] = step_mutate(setup, n, r["ingest"]["total"])
    return r


def main() -> None:
    args = parse_args()
    if args._worker:
        spec = json.loads(args._spec)
        result = WORKERS[args._worker](spec)
        Path(spec["result"]).write_text(json.dumps(result))
        return
    say(machine_report())
    t0 = time.perf_counter()
    corpus = build_corpus(args.workdir.expanduser())
    say(
        f"corpus: {corpus.docs:,} passages of ~{WORDS_TARGET} words ({WORDS_LO}-{WORDS_HI}) from "
        f"IMDB reviews 0-{corpus.reviews - 1}, {corpus.holdout:,} held out from the last "
        f"{HOLDOUT_REVIEWS:,} reviews; {corpus.path} ({time.perf_counter() - t0:.1f} s to "
        f"build or find)"
    )
    if corpus.docs < MAX_DOCS:
        say(f"(50,000 reviews give {corpus.docs:,} distinct passages, not {MAX_DOCS:,}: all used)")
    sizes = [n for n in args.sizes if n <= corpus.docs]
    if len(sizes) < len(args.sizes):
        sizes.append(corpus.docs)
        say(f"sizes above {corpus.docs:,} replaced by {corpus.docs:,}")
    if args.queries + ADD_DOCS > corpus.holdout:
        raise SystemExit(f"--queries {args.queries} + {ADD_DOCS} added > {corpus.holdout} held out")
    run = args.workdir.expanduser() / "run"
    run.mkdir(parents=True, exist_ok=True)
    setup = Setup(corpus, run, args.queries, None if args.skip_cli else find_cli())
    try:
        results = run_sizes(setup, sorted(set(sizes)), args.keep)
        if not args.skip_chroma and chroma_ready():
            say("")
            for n in args.chroma:
                step_chroma(setup, n, results.get(n))
        if not results:
            raise SystemExit("no size finished")
        growth_table(results)
        ratio = flat_ratio(results)
        plot(results, args.workdir.expanduser() / "scale.png")
        verdicts(results, ratio)
    finally:
        if not args.keep:
            for path in run.glob("vectors_*.npy"):
                path.unlink()
    say(f"\nall done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
