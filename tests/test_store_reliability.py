"""Crash safety and concurrency of collections, with real processes: a writer killed with SIGKILL
at random moments loses at most its batch in flight, and readers keep working during ingest."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedcraft.errors import InputError
from embedcraft.store import Collection
from embedcraft.words import WordVectors

BATCH = 20

WRITER = textwrap.dedent(
    """
    import sys, time
    from embedcraft.encoders.pooling import MeanPoolingEncoder
    from embedcraft.store import Collection, HnswSettings

    path, vectors, first, last, pause = sys.argv[1:6]
    print("started", flush=True)
    enc = MeanPoolingEncoder(vectors, name="tiny-mean")
    col = Collection(path, encoders=["bm25", enc], hnsw=HnswSettings(threshold=100))
    words = ["cat", "dog", "market", "bank", "soup", "pasta", "planet", "star"]
    for b in range(int(first), int(last)):
        texts = [f"{words[(b + j) % 8]} {words[j % 8]} text {b} {j}" for j in range(BATCH)]
        ids = [f"b{b}-{j}" for j in range(BATCH)]
        col.add(texts, ids, [{"batch": b}] * BATCH, batch_size=BATCH)
        print(f"committed {b}", flush=True)
        if b % 3 == 0:
            col.search("cat", k=5)  # rebuilds and saves the indexes, so kills land there too
            col.close()
            col = Collection(path)
        time.sleep(float(pause))
    """
).replace("BATCH", str(BATCH))


DELETER = textwrap.dedent(
    """
    import sys
    from embedcraft.encoders.pooling import MeanPoolingEncoder
    from embedcraft.store import Collection, HnswSettings

    path, vectors, first = sys.argv[1:4]
    enc = MeanPoolingEncoder(vectors, name="tiny-mean")
    col = Collection(path, encoders=[enc], hnsw=HnswSettings(threshold=60))
    words = ["cat", "dog", "market", "bank", "soup", "pasta", "planet", "star"]
    for b in range(int(first), int(first) + 1000):
        texts = [f"{words[(b + j) % 8]} {words[j % 8]} text {b} {j}" for j in range(BATCH)]
        col.add(texts, [f"e{b}-{j}" for j in range(BATCH)])
        print(f"committed {b}", flush=True)
        col.search("cat", k=5)  # the index catches up with the commit
        col.delete([f"e{b}-{j}" for j in range(1, BATCH, 2)])
        print(f"deleted {b}", flush=True)
        if b % 2 == 0:
            col.close()  # saves the caught-up index, deletions and all
            col = Collection(path)
            col.search("dog", k=5)
    """
).replace("BATCH", str(BATCH))


@pytest.fixture
def vectors(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    words = ["cat", "dog", "market", "bank", "soup", "pasta", "planet", "star", "text"]
    folder = tmp_path / "wv"
    WordVectors(words, rng.normal(size=(len(words), 8)).astype(np.float32)).save(folder)
    return folder


def _writer(path: Path, vectors: Path, first: int, last: int, pause: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(vectors), str(first), str(last), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _check_whole_batches(col: Collection) -> int:
    """Every batch present is complete and batches are 0..m-1; returns m."""
    batches: dict[int, int] = {}
    for doc_id in col.ids():
        b = int(doc_id[1:].split("-")[0])
        batches[b] = batches.get(b, 0) + 1
    assert all(n == BATCH for n in batches.values()), batches
    assert sorted(batches) == list(range(len(batches)))
    return len(batches)


class Reports:
    """The lines a child prints, read by a thread so that waiting for one can time out."""

    def __init__(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._reader.start()
        self.seen: list[str] = []

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line.strip())

    def wait(self, count: int) -> None:
        """Until `count` lines have come (120 s at most for each)."""
        while len(self.seen) < count:
            try:
                self.seen.append(self._lines.get(timeout=120))
            except queue.Empty:
                raise AssertionError("the child reported nothing for 120 s") from None

    def rest(self) -> list[str]:
        """Every line, once the child has ended and its pipe is read to the end."""
        self._reader.join(timeout=120)
        while not self._lines.empty():
            self.seen.append(self._lines.get())
        return self.seen


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_during_ingest_loses_at_most_the_batch_in_flight(
    tmp_path: Path, vectors: Path
) -> None:
    """Kills land at moments the writer reports (started, or after its n-th commit) plus a
    random few milliseconds, so they fall in imports, encoding, commits, index saves and
    reopens, however slow the machine is; the first lands before the first commit."""
    path = tmp_path / "col"
    rng = random.Random(7)
    committed = 0
    for round_ in range(11):
        proc = _writer(path, vectors, committed, committed + 1000, 0.0)
        reports = Reports(proc)
        reports.wait(1 if round_ == 0 else rng.randint(2, 5))
        time.sleep(rng.uniform(0, 0.05))  # where the kill lands, not a wait for the child
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
        assert proc.returncode == -signal.SIGKILL, err
        printed = [int(line.split()[1]) for line in reports.rest() if "committed" in line]
        try:
            col = Collection(path)
        except InputError as exc:  # killed before the collection was made: not one yet
            assert not printed and committed == 0, exc
            assert "no collection here" in str(exc) or "has no encoders" in str(exc)
            continue  # the next writer, naming its encoders, creates it in the same folder
        with col:
            present = _check_whole_batches(col)
            # what was reported committed is there; at most one more (committed, not yet printed)
            last_reported = printed[-1] + 1 if printed else committed
            assert last_reported <= present <= last_reported + 1
            count = col.count()
            assert count == present * BATCH
            if count:
                dense = col.search("cat dog", k=count, mode="dense")
                sparse_ids = {h.id for h in col.search("text", k=count, mode="sparse")}
                assert len(dense) == count and len(sparse_ids) == count
                assert {h.id for h in dense} == set(col.ids())
        committed = present
    assert committed >= 10  # the kills really landed during ingest, not before it


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_between_writes_and_deletes_never_resurrects_a_row(
    tmp_path: Path, vectors: Path
) -> None:
    """Deleted rows stay deleted through kills and reopens, in the saved indexes too."""
    path = tmp_path / "col"
    rng = random.Random(11)
    first = 0
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", DELETER, str(path), str(vectors), str(first)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        reports = Reports(proc)
        reports.wait(rng.randint(2, 7))
        time.sleep(rng.uniform(0, 0.05))  # where the kill lands, not a wait for the child
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
        done = {line for line in reports.rest()}
        with Collection(path) as col:
            ids = set(col.ids())
            batches = {int(i[1:].split("-")[0]) for i in ids}
            for b in batches:  # a batch is whole, or has lost exactly its odd documents
                kept = {i for i in ids if i.startswith(f"e{b}-")}
                assert len(kept) in (BATCH, BATCH // 2)
                if f"deleted {b}" in done:
                    assert len(kept) == BATCH // 2
            hits = col.search("cat dog", k=len(ids), mode="dense")
            assert {h.id for h in hits} == ids
            query = col.encoder("tiny-mean").encode(["cat dog"])[0]
            found, scores = col.nearest_ids(query, k=len(ids))
            assert set(found[0]) == ids and np.isfinite(scores).all()
        first = max(batches) + 1
    assert first >= 6


def test_readers_keep_working_while_a_writer_ingests(tmp_path: Path, vectors: Path) -> None:
    path = tmp_path / "col"
    proc = _writer(path, vectors, 0, 1, 0.0)
    proc.communicate(timeout=60)
    reader = Collection(path)
    proc = _writer(path, vectors, 1, 25, 0.05)
    seen = []
    try:
        while proc.poll() is None:
            count = reader.count()
            hits = reader.search("planet star", k=1000, mode="dense")
            assert len(hits) >= count  # everything counted before the search is found
            assert len({h.id for h in hits}) == len(hits)
            seen.append(count)
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert seen == sorted(seen) and len(set(seen)) > 1  # it saw the collection grow
    assert reader.count() == 25 * BATCH
    assert len(reader.search("text", k=1000, mode="sparse")) == 25 * BATCH
