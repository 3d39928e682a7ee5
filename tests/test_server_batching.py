"""How the server batches: text transformers in model runs of texts of about one length, chosen
from the texts of every queued request; other models in whole-request batches. Driven through a
`ModelWorker` with a stand-in encoder whose first encode holds the worker until the requests of
the test are queued (so what is batched together never depends on timing)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from embedcraft.encoders.contract import EncoderKind, InputKind
from embedcraft.errors import InputError
from embedcraft.server import Batching
from embedcraft.server._batcher import ModelWorker, ServerClosingError, pick_run

GATE = "gate"


class StandIn:
    """An encoder that records its calls: a text's vector is (its words, its characters' sum).

    Its tokens are its words plus 2 (like a transformer's [CLS] and [SEP]). Encoding GATE holds
    the worker until `release` is set; a call holding `poison` fails."""

    name = "stand-in"
    sparse = False
    dim = 2

    def __init__(self, kind: EncoderKind = EncoderKind.CONTEXTUAL) -> None:
        self.kind = kind
        self.input_kind = InputKind.TEXT
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.poison: str | None = None

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) + 2 for t in texts]

    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        self.calls.append(list(texts))
        if GATE in texts:
            self.entered.set()
            assert self.release.wait(60), "the test never released the worker"
        if self.poison is not None and self.poison in texts:
            raise InputError("poisoned")
        return vectors(texts)

    encode_queries = encode


def vectors(texts: list[str]) -> np.ndarray:
    rows = [[len(t.split()), sum(map(ord, t))] for t in texts]
    return np.array(rows, dtype=np.float32).reshape(len(texts), 2)


def held(
    encoder: StandIn, *requests: list[str], batching: Batching | None = None
) -> tuple[ModelWorker, list[Any]]:
    """Queue `requests` while the worker encodes GATE, then let it go; returns the worker (stopped)
    and each request's outcome (its EncodeResult or its exception)."""
    worker = ModelWorker("stand-in", encoder, batching or Batching())  # type: ignore[arg-type]

    async def scenario() -> list[Any]:
        loop = asyncio.get_running_loop()
        worker.start()
        gate = asyncio.ensure_future(worker.documents.submit([GATE]))
        assert await loop.run_in_executor(None, encoder.entered.wait, 60)
        tasks = [asyncio.ensure_future(worker.documents.submit(r)) for r in requests]
        loop.call_soon(encoder.release.set)  # after the tasks above have queued (FIFO)
        outcomes = await asyncio.gather(gate, *tasks, return_exceptions=True)
        await worker.stop()
        return list(outcomes[1:])

    return worker, asyncio.run(scenario())


def words(word: str, n: int) -> str:
    return " ".join([word] * n)


SHORT = [words(w, 1) for w in ("cat", "dog", "sun", "car", "tree", "book", "fish", "bird")]
LONG = [words(w, 30) for w in ("sea", "sky", "map", "pen", "cup", "hat", "box", "key")]


def test_queued_requests_are_encoded_in_runs_of_one_length() -> None:
    encoder = StandIn()
    a = [SHORT[i // 2] if i % 2 else LONG[i // 2] for i in range(16)]  # short and long mixed
    b = [LONG[i // 2] if i % 2 else SHORT[i // 2] for i in range(16)]
    worker, (got_a, got_b) = held(encoder, a, b)
    runs = encoder.calls[1:]  # after the gate
    lengths = [{len(t.split()) for t in run} for run in runs]
    assert lengths == [{30}, {1}]  # two runs of one length each, both requests in each
    assert sorted(len(run) for run in runs) == [16, 16]
    np.testing.assert_array_equal(got_a.vectors, vectors(a))  # every text back in its place
    np.testing.assert_array_equal(got_b.vectors, vectors(b))
    assert got_a.tokens == [len(t.split()) + 2 for t in a]
    assert worker.documents.requests == 3 and worker.documents.batches == 3  # with the gate


def test_runs_respect_the_row_limit_and_serve_the_oldest_request_first() -> None:
    encoder = StandIn()
    old = [LONG[0]] * 3
    newer = [SHORT[i % 8] for i in range(40)]
    eight = Batching(transformer_batch_size=8)
    _, (got_old, got_newer) = held(encoder, old, newer, batching=eight)
    runs = encoder.calls[1:]
    assert runs[0] == old  # the oldest request's texts first, though the short ones are more
    assert all(len(run) <= 8 for run in runs)
    assert sum(len(run) for run in runs) == 43
    np.testing.assert_array_equal(got_old.vectors, vectors(old))
    np.testing.assert_array_equal(got_newer.vectors, vectors(newer))


def test_a_run_that_fails_fails_only_the_request_of_the_bad_text() -> None:
    encoder = StandIn()
    encoder.poison = SHORT[3]
    good, bad = SHORT[:3] + LONG[:2], [SHORT[4], SHORT[3]]
    _, (got_good, got_bad) = held(encoder, good, bad)
    np.testing.assert_array_equal(got_good.vectors, vectors(good))
    assert isinstance(got_bad, InputError) and "poisoned" in str(got_bad)


def test_other_models_share_one_encode_of_whole_requests() -> None:
    encoder = StandIn(kind=EncoderKind.STATIC)
    a, b = [SHORT[0], LONG[0]], [LONG[1], SHORT[1], SHORT[2]]
    worker, (got_a, got_b) = held(encoder, a, b)
    assert encoder.calls[1:] == [a + b]
    np.testing.assert_array_equal(got_a.vectors, vectors(a))
    np.testing.assert_array_equal(got_b.vectors, vectors(b))
    assert worker.documents.batches == 2


def test_stop_answers_the_encode_in_flight_and_fails_what_is_queued() -> None:
    encoder = StandIn()
    worker = ModelWorker("stand-in", encoder, Batching())  # type: ignore[arg-type]

    async def scenario() -> list[Any]:
        loop = asyncio.get_running_loop()
        worker.start()
        gate = asyncio.ensure_future(worker.documents.submit([GATE]))
        assert await loop.run_in_executor(None, encoder.entered.wait, 60)
        queued = asyncio.ensure_future(worker.documents.submit(SHORT))
        stopping = asyncio.ensure_future(worker.stop())
        loop.call_soon(encoder.release.set)  # once the stop has begun
        outcomes = await asyncio.gather(gate, queued, return_exceptions=True)
        await stopping
        with pytest.raises(ServerClosingError):
            await worker.documents.submit(["late"])
        return list(outcomes)

    gate, queued = asyncio.run(scenario())
    np.testing.assert_array_equal(gate.vectors, vectors([GATE]))
    assert isinstance(queued, ServerClosingError)


# ---------------------------------------------------------------------- pick_run
def test_pick_run_takes_texts_of_one_length_around_the_anchor() -> None:
    lengths = np.array([10, 40, 10, 40, 10, 12, 40])
    anchors = np.array([False, True, False, False, False, False, False])
    assert sorted(pick_run(lengths, anchors, 8).tolist()) == [1, 3, 6]
    anchors = np.array([True] + [False] * 6)
    assert sorted(pick_run(lengths, anchors, 8).tolist()) == [0, 2, 4, 5]  # 12 pads little


def test_pick_run_keeps_to_the_row_limit_and_the_token_budget() -> None:
    lengths = np.full(100, 20)
    anchors = np.zeros(100, dtype=bool)
    anchors[70] = True
    run = pick_run(lengths, anchors, 64)
    assert len(run) == 51 and 70 in run  # 51 * 20 <= 1024 tokens
    assert len(pick_run(lengths, anchors, 16)) == 16
    huge = pick_run(np.array([5000, 3]), np.array([True, False]), 64)
    assert huge.tolist() == [0]  # a text over the budget runs alone


def test_a_request_of_no_texts_gets_no_rows() -> None:
    encoder = StandIn()
    _, (empty, one) = held(encoder, [], [SHORT[0]])
    assert empty.vectors.shape == (0, 2) and empty.tokens == []
    np.testing.assert_array_equal(one.vectors, vectors([SHORT[0]]))
