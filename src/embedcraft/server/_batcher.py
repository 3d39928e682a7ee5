"""Dynamic micro-batching: many small concurrent requests for one model become few large encodes.

Each served model has one worker thread that runs every encode of that model, so encodes of the
same model never run at once (they are CPU-bound and would only fight for the cores), and the
thread goes from one encode straight to the next without waiting for the event loop, which
meanwhile reads requests and writes responses. Requests wait in a queue per `MicroBatcher`
(documents, and queries for asymmetric models); the worker answers each through its future.

A batcher batches in one of two ways:

* **whole requests** (sparse, static and word-vector models, image models): the requests queued
  when the worker turns to the batcher, up to `max_batch` inputs, share one encode, and every
  request gets its rows;
* **by length** (text transformers, `EncoderKind.CONTEXTUAL` reading text): a transformer pads
  every text of a model run to the run's longest, so what a run costs is its padded size. A
  single client's `encode` sorts all its texts by length and pads almost nothing; a server
  sees the texts a few requests at a time, and a micro-batch of 256 STS-B texts in runs of 32
  padded ~10% more tokens than one sorted encode. So the worker keeps a pool (the pending texts
  of the oldest queued requests, up to `max_batch`), counts each text's tokens once when its
  request joins (the count the response's `usage` reports anyway), and encodes one run at a time:
  texts of similar length around a pending text of the oldest request (so no request is passed
  over by newer ones), up to `transformer_batch_size` texts and `TOKEN_BUDGET` padded tokens,
  chosen to waste the least (`pick_run`). Requests that arrive meanwhile join the pool before the
  next run, and a request is answered when its last text is encoded.

When the worker was idle, it first waits `max_wait_ms` for the requests arriving right then to
join (unless `max_batch` inputs are already queued); requests that arrive while it encodes join
the next encode without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cache import VectorCache, cached_rows
from ..encoders.base import BaseEncoder
from ..encoders.contract import Encoder, EncoderKind, InputKind, Vectors
from ..encoders.transformer import TOKEN_BUDGET
from ._config import Batching, count_tokens
from ._inputs import warm_up_inputs

__all__ = [
    "RUN_OVERHEAD_TOKENS",
    "EncodeResult",
    "MicroBatcher",
    "ModelWorker",
    "ServerClosingError",
    "pick_run",
]

RUN_OVERHEAD_TOKENS = 32
"""What one model run costs beyond its padded tokens, in tokens: `pick_run`'s trade-off between
padding and more, smaller runs. Measured on minilm-l6 on 2 cores, a run of 8-64 texts costs
~2.7 ms plus ~0.06 ms of wall time (~0.11 ms of CPU) per padded token: 24 tokens of CPU, ~48 of
wall time. Between 16 and 48, STS-B served through the server came within 1% either way."""


@dataclass(frozen=True)
class EncodeResult:
    """The rows of one request (dense array or CSR) and the tokens counted in each input."""

    vectors: Vectors
    tokens: list[int]


@dataclass(eq=False)
class _Request:
    texts: list[Any]
    """The request's inputs (texts, for a text encoder)."""
    future: asyncio.Future[EncodeResult] = field(repr=False)
    loop: asyncio.AbstractEventLoop = field(repr=False)
    # By-length batching only: filled in by the worker thread.
    tokens: list[int] | None = None
    """Tokens counted in each input (None until the request joins the pool)."""
    lengths: list[int] | None = None
    """Each input's padded length in a model run (its tokens, capped at the model's limit)."""
    pending: list[int] | None = None
    """The positions of the inputs still to be encoded."""
    rows: np.ndarray | None = None
    done: bool = False
    """Answered (rows or an error): the worker drops it from the queue."""
    arrival: int = 0
    """Its place in the order requests reached the model (oldest first)."""

    def gone(self) -> bool:
        """Answered already, or the client went away (its handler was cancelled)."""
        return self.done or self.future.done()


class ServerClosingError(RuntimeError):
    """The server stopped before a queued request ran."""


def _settle(request: _Request, outcome: EncodeResult | BaseException) -> None:
    """Resolve the request's future (on its event loop's thread)."""
    if request.future.done():
        return
    if isinstance(outcome, BaseException):
        request.future.set_exception(outcome)
    else:
        request.future.set_result(outcome)


def _settle_all(answers: list[tuple[_Request, EncodeResult | BaseException]]) -> None:
    for request, outcome in answers:
        _settle(request, outcome)


def pick_run(
    lengths: np.ndarray,
    anchors: np.ndarray,
    max_rows: int,
    budget: int = TOKEN_BUDGET,
    overhead: float = RUN_OVERHEAD_TOKENS,
) -> np.ndarray:
    """Positions (into `lengths`) of the texts of the next model run.

    The run is a stretch of the texts sorted by length (ties in pool order) that holds at least
    one text where `anchors` is True, at most `max_rows` texts and, unless it is one text, at
    most `budget` padded tokens (its size times its longest). Among those, the one with the most
    real tokens per unit of cost (padded tokens + `overhead` per run) wins; of equals, the one
    of the shortest, earliest texts.
    """
    order = np.argsort(lengths, kind="stable")
    ranked = lengths[order].astype(np.int64)
    total = np.concatenate(([0], np.cumsum(ranked)))
    anchored = np.concatenate(([0], np.cumsum(anchors[order])))
    n = len(order)
    sizes = np.arange(1, min(max_rows, n) + 1)
    low = np.arange(n)[:, None]
    high = np.minimum(low + sizes, n)  # (start, size) -> end; past the end is masked below
    padded = sizes * ranked[high - 1]
    fits = (
        (low + sizes <= n) & (anchored[high] > anchored[low]) & ((padded <= budget) | (sizes == 1))
    )
    score = np.where(fits, (total[high] - total[low]) / (padded + overhead), -1.0)
    start, size = np.unravel_index(int(np.argmax(score)), score.shape)
    return order[int(start) : int(start) + int(sizes[size])]


class MicroBatcher:
    """One queue of requests for a model (documents or queries) and how its encodes are made.

    The queue is guarded by the worker's condition; only the worker thread takes from it.
    """

    def __init__(
        self,
        worker: ModelWorker,
        encode: Callable[[list[Any]], Vectors],
        batching: Batching,
        *,
        by_length: bool,
    ) -> None:
        self._worker = worker
        self._encode = encode
        self._max_batch = int(batching.max_batch)
        self._run_rows = int(batching.transformer_batch_size)
        self.by_length = by_length
        """Batch by length (one model run per step) rather than whole requests."""
        self._waiting: deque[_Request] = deque()
        self.batches = 0
        """Encodes run so far (model runs, when batching by length)."""
        self.requests = 0
        """Requests answered so far (requests / batches: what batching gained)."""
        self.texts = 0
        self.busy_seconds = 0.0
        """Time spent encoding and counting tokens (busy / wall time: how much the model worked)."""

    async def submit(self, texts: Sequence[Any]) -> EncodeResult:
        """Encode `texts` (inputs of the encoder's kind) with whatever else is queued; returns this
        request's rows in order."""
        loop = asyncio.get_running_loop()
        request = _Request(list(texts), loop.create_future(), loop)
        self._worker.enqueue(self._waiting, request)
        return await request.future

    # ------------------------------------------------------------ with the worker's lock held
    def queued_inputs(self) -> int:
        return sum(len(r.texts) for r in self._waiting)

    def first_arrival(self) -> int | None:
        """The arrival number of the oldest queued request (None: nothing queued)."""
        while self._waiting and self._waiting[0].gone():
            self._waiting.popleft()
        return self._waiting[0].arrival if self._waiting else None

    def take(self) -> list[_Request]:
        """The requests of the next step: the oldest live ones, up to `max_batch` inputs still
        to encode (always at least one). Whole-request batching takes them off the queue;
        by-length batching leaves them there until they are answered."""
        batch: list[_Request] = []
        size = 0
        if not self.by_length:
            while self._waiting:
                request = self._waiting[0]
                if not request.gone():
                    if batch and size + len(request.texts) > self._max_batch:
                        break
                    batch.append(request)
                    size += len(request.texts)
                self._waiting.popleft()
            return batch
        for request in self._waiting:
            if request.gone():
                continue
            left = len(request.texts if request.pending is None else request.pending)
            if batch and size + left > self._max_batch:
                break
            batch.append(request)
            size += left
        return batch

    def drop_answered(self) -> None:
        if any(r.gone() for r in self._waiting):
            self._waiting = deque(r for r in self._waiting if not r.gone())

    def fail_all(self, error: BaseException) -> None:
        """Answer every queued request with `error` (on the event loop's thread)."""
        while self._waiting:
            request = self._waiting.popleft()
            request.done = True
            _settle(request, error)

    # ------------------------------------------------------------ in the worker thread
    def step(self, batch: list[_Request]) -> None:
        """Encode the next batch of whole requests, or the next run of texts by length."""
        started = time.perf_counter()
        try:
            if self.by_length:
                self._next_run(batch)
            else:
                self._whole(batch)
        finally:
            self.busy_seconds += time.perf_counter() - started

    def _whole(self, batch: list[_Request]) -> None:
        texts = [t for r in batch for t in r.texts]
        try:
            vectors = self._encode(texts)
            tokens = count_tokens(self._worker.encoder, texts)
        except Exception as exc:
            if len(batch) == 1:
                self._worker.answer(batch[0], exc)
                return
            # One request's inputs failed the whole batch: run each alone so only it fails.
            for request in batch:
                self._whole([request])
            return
        self.batches += 1
        self.requests += len(batch)
        self.texts += len(texts)
        start = 0
        for request in batch:
            stop = start + len(request.texts)
            self._worker.answer(request, EncodeResult(vectors[start:stop], tokens[start:stop]))
            start = stop

    def _admit(self, batch: list[_Request]) -> None:
        """Count the tokens of the requests new to the pool, in one call; a request whose texts
        cannot be counted is answered with the error."""
        new = [r for r in batch if r.tokens is None and not r.gone()]
        if not new:
            return
        try:
            counted = count_tokens(self._worker.encoder, [t for r in new for t in r.texts])
        except Exception as exc:
            if len(new) == 1:
                self._worker.answer(new[0], exc)
            else:
                for request in new:
                    self._admit([request])
            return
        limit = self._worker.token_limit() or max(counted, default=0)
        start = 0
        for request in new:
            stop = start + len(request.texts)
            request.tokens = counted[start:stop]
            request.lengths = [min(n, limit) for n in request.tokens]
            request.pending = list(range(len(request.texts)))
            start = stop
            if not request.texts:  # nothing to encode: the encoder's empty result
                self._worker.answer(request, EncodeResult(self._encode([]), []))
            elif self._worker.cache is not None:
                self._from_cache(request, self._worker.cache)

    def _from_cache(self, request: _Request, cache: VectorCache) -> None:
        """Fill the rows the cache holds, so that model runs take only texts to encode; answer
        the request when it holds them all."""
        encoder = self._worker.encoder
        assert isinstance(encoder, BaseEncoder) and request.pending is not None
        found = cached_rows(encoder, request.texts, cache)
        if found:
            where = sorted(found)
            self._fill(request, where, np.stack([found[p] for p in where]))

    def _next_run(self, batch: list[_Request]) -> None:
        self._admit(batch)
        live = [r for r in batch if not r.gone()]
        if not live:
            return
        owners: list[int] = []
        places: list[int] = []
        lengths: list[int] = []
        for k, request in enumerate(live):
            assert request.pending is not None and request.lengths is not None
            owners += [k] * len(request.pending)
            places += request.pending
            lengths += [request.lengths[p] for p in request.pending]
        owner = np.array(owners)
        run = pick_run(np.array(lengths), owner == 0, self._run_rows).tolist()
        mine: dict[int, list[int]] = {}
        for i in sorted(run, key=owners.__getitem__):
            mine.setdefault(owners[i], []).append(places[i])
        shares = [(live[k], where) for k, where in mine.items()]
        # Answer the requests the last run completed now, in one call, so that the event loop
        # writes their responses while the model runs (this thread holds no GIL then) rather
        # than while this thread needs it (answering each as it completed waited ~0.08 s for
        # the GIL in 4.8 s of STS-B; this way ~0.01 s).
        self._worker.flush()
        try:
            vectors = np.asarray(self._encode([r.texts[p] for r, where in shares for p in where]))
        except Exception as exc:
            if len(shares) == 1:
                self._worker.answer(shares[0][0], exc)
                return
            # One request's texts failed the run: run each request's share alone.
            for request, where in shares:
                self._run_share(request, where)
            return
        self.batches += 1
        self.texts += len(run)
        start = 0
        for request, where in shares:
            self._fill(request, where, vectors[start : start + len(where)])
            start += len(where)

    def _run_share(self, request: _Request, where: list[int]) -> None:
        """Encode one request's share of a failed run alone; an error answers that request."""
        try:
            vectors = np.asarray(self._encode([request.texts[p] for p in where]))
        except Exception as exc:
            self._worker.answer(request, exc)
            return
        self.batches += 1
        self.texts += len(where)
        self._fill(request, where, vectors)

    def _fill(self, request: _Request, where: list[int], vectors: np.ndarray) -> None:
        """Put a request's rows in place; answer it when its last text is encoded."""
        assert request.pending is not None and request.tokens is not None
        if request.rows is None:
            request.rows = np.empty((len(request.texts), vectors.shape[1]), dtype=vectors.dtype)
        request.rows[where] = vectors
        done = set(where)
        request.pending = [p for p in request.pending if p not in done]
        if not request.pending:
            self.requests += 1
            self._worker.answer(request, EncodeResult(request.rows, request.tokens))


class ModelWorker:
    """One served encoder: its worker thread and a batcher for documents and one for queries.

    Queries differ from documents only for asymmetric encoders (BM25 weighs query terms alone);
    both batchers share the one thread, so the encoder never runs twice at once, and the thread
    serves first the batcher whose oldest request came first.
    """

    def __init__(
        self, name: str, encoder: Encoder, batching: Batching, cache: VectorCache | None = None
    ) -> None:
        self.name = name
        self.encoder = encoder
        self.cache = cache if isinstance(encoder, BaseEncoder) else None
        self._cached: dict[str, Any] = {} if cache is None else {"cache": cache}
        """`encode`'s cache argument, given only with a cache (duck-typed encoders need not
        take it)."""
        by_length = encoder.kind == EncoderKind.CONTEXTUAL and encoder.input_kind == InputKind.TEXT
        self._wait = float(batching.max_wait_ms) / 1000.0
        self._max_batch = int(batching.max_batch)
        self._cond = threading.Condition()
        self._open = False
        self._thread: threading.Thread | None = None
        self._arrivals = 0
        self._limit = 0
        self._answers: list[tuple[_Request, EncodeResult | BaseException]] = []
        self.documents = MicroBatcher(self, self._encode_documents, batching, by_length=by_length)
        self.queries = MicroBatcher(self, self._encode_queries, batching, by_length=by_length)

    # By length, the texts are one run already: one model run of them all. Whole requests run
    # in the encoder's own batches.
    def _encode_documents(self, texts: list[Any]) -> Vectors:
        size = len(texts) if self.documents.by_length else None
        return self.encoder.encode(texts, batch_size=size, **self._cached)

    def _encode_queries(self, texts: list[Any]) -> Vectors:
        size = len(texts) if self.queries.by_length else None
        return self.encoder.encode_queries(texts, batch_size=size, **self._cached)

    def answer(self, request: _Request, outcome: EncodeResult | BaseException) -> None:
        """From the worker thread: answer `request` at the next `flush`."""
        request.done = True
        self._answers.append((request, outcome))

    def flush(self) -> None:
        """From the worker thread: hand the answers so far to their event loops, one call each."""
        if not self._answers:
            return
        answers, self._answers = self._answers, []
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Request, Any]]] = {}
        for request, outcome in answers:
            by_loop.setdefault(request.loop, []).append((request, outcome))
        for loop, some in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle_all, some)

    def token_limit(self) -> int:
        """The model's token limit (0: not known yet), from the report of its last encode."""
        if not self._limit:
            report = getattr(self.encoder, "last_report", None)
            self._limit = int(getattr(report, "max_tokens", 0) or 0)
        return self._limit

    # ------------------------------------------------------------ the event loop's side
    def start(self) -> None:
        """Start the worker thread."""
        with self._cond:
            self._open = True
        self._thread = threading.Thread(target=self._serve, name=f"encode-{self.name}")
        self._thread.daemon = True
        self._thread.start()

    def enqueue(self, queue: deque[_Request], request: _Request) -> None:
        """Queue `request` on `queue` (a batcher's) and wake the worker."""
        with self._cond:
            if not self._open:
                raise ServerClosingError("the server is shutting down")
            self._arrivals += 1
            request.arrival = self._arrivals
            queue.append(request)
            self._cond.notify()

    async def warm_up(self) -> None:
        """Encode one input so lazily loaded models (ONNX sessions, word vectors) load now."""
        await self.documents.submit(warm_up_inputs(self.name, self.encoder))

    async def stop(self) -> None:
        """Stop the worker thread (after the encode in flight, if any); requests still queued
        fail with ServerClosingError."""
        with self._cond:
            self._open = False
            self._cond.notify_all()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
        with self._cond:
            for batcher in (self.documents, self.queries):
                batcher.fail_all(ServerClosingError("the server is shutting down"))

    # ------------------------------------------------------------ the worker thread
    def _queued_inputs(self) -> int:
        return self.documents.queued_inputs() + self.queries.queued_inputs()

    def _next(self) -> MicroBatcher | None:
        """The batcher whose oldest queued request arrived first (None: nothing queued)."""
        best: tuple[int, MicroBatcher] | None = None
        for batcher in (self.documents, self.queries):
            first = batcher.first_arrival()
            if first is not None and (best is None or first < best[0]):
                best = (first, batcher)
        return best[1] if best else None

    def _serve(self) -> None:
        try:
            self._serve_until_stopped()
        finally:
            self.flush()

    def _serve_until_stopped(self) -> None:
        idle = True
        while True:
            with self._cond:
                if self._next() is None:
                    self.flush()
                while self._open and self._next() is None:
                    idle = True
                    self._cond.wait()
                if not self._open:
                    return
                if idle and self._wait > 0:  # let the requests arriving right now join
                    deadline = time.monotonic() + self._wait
                    while self._open and self._queued_inputs() < self._max_batch:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                    if not self._open:
                        return
                idle = False
                batcher = self._next()
                batch = batcher.take() if batcher is not None else []
            if batcher is None or not batch:
                continue
            try:
                batcher.step(batch)
            except BaseException as exc:  # a bug here must not leave requests waiting forever
                for request in batch:
                    if not request.gone():
                        self.answer(request, exc)
            if not batcher.by_length:
                self.flush()
            with self._cond:
                batcher.drop_answered()
