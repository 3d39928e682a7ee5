"""Dynamic micro-batching: many small concurrent requests for one model become few large encodes.

Each served model has one worker thread, so encodes of the same model never run at once (they are
CPU-bound and would only fight for the cores). Its `MicroBatcher` gathers the requests that arrive
within a few milliseconds of each other (or while the previous encode runs), up to a maximum
number of texts, runs one encode in the worker thread, and gives every request its own rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..encoders.contract import Encoder, EncoderKind, Vectors
from ._config import Batching, count_tokens
from ._inputs import warm_up_inputs

__all__ = ["EncodeResult", "MicroBatcher", "ModelWorker", "ServerClosingError"]


@dataclass(frozen=True)
class EncodeResult:
    """The rows of one request (dense array or CSR) and the tokens counted in each input."""

    vectors: Vectors
    tokens: list[int]


EncodeFn = Callable[[list[Any]], EncodeResult]


@dataclass
class _Request:
    texts: list[Any]
    """The request's inputs (texts, for a text encoder)."""
    future: asyncio.Future[EncodeResult] = field(repr=False)


class ServerClosingError(RuntimeError):
    """The server stopped before a queued request ran."""


class MicroBatcher:
    """Collects requests into batches and runs each batch once in the model's worker thread."""

    def __init__(self, run: EncodeFn, executor: ThreadPoolExecutor, batching: Batching) -> None:
        self._run = run
        self._executor = executor
        self._max_batch = int(batching.max_batch)
        self._wait = float(batching.max_wait_ms) / 1000.0
        self._waiting: deque[_Request] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        """Encodes run so far (the number of requests served divided by this = batching gain)."""
        self.requests = 0
        self.texts = 0
        self.busy_seconds = 0.0
        """Time spent encoding (busy / wall time shows how much of the time the model worked)."""

    def start(self) -> None:
        """Start the collecting task on the running event loop."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop collecting; requests still queued fail with ServerClosingError."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._waiting:
            request = self._waiting.popleft()
            if not request.future.done():
                request.future.set_exception(ServerClosingError("the server is shutting down"))

    async def submit(self, texts: Sequence[Any]) -> EncodeResult:
        """Encode `texts` (inputs of the encoder's kind) as part of the next batch; returns this
        request's rows in order."""
        if self._wakeup is None:
            raise ServerClosingError("the batcher is not running")
        future: asyncio.Future[EncodeResult] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Request(list(texts), future))
        self._wakeup.set()
        return await future

    async def _loop(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self._wait > 0 and self._queued_texts() < self._max_batch:
                await asyncio.sleep(self._wait)  # let the requests arriving right now join
            batch = self._take()
            if batch:
                await self._run_batch(loop, batch)

    def _queued_texts(self) -> int:
        return sum(len(r.texts) for r in self._waiting)

    def _take(self) -> list[_Request]:
        """The next batch: queued live requests up to max_batch texts (always at least one)."""
        batch: list[_Request] = []
        size = 0
        while self._waiting:
            request = self._waiting[0]
            if request.future.done():  # the client went away
                self._waiting.popleft()
                continue
            if batch and size + len(request.texts) > self._max_batch:
                break
            batch.append(self._waiting.popleft())
            size += len(request.texts)
        return batch

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Request]) -> None:
        texts = [t for r in batch for t in r.texts]
        started = time.perf_counter()
        try:
            result = await loop.run_in_executor(self._executor, self._run, texts)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            # One request's texts failed the whole batch: run each alone so only it fails.
            for request in batch:
                await self._run_batch(loop, [request])
            return
        self.busy_seconds += time.perf_counter() - started
        self.batches += 1
        self.requests += len(batch)
        self.texts += len(texts)
        start = 0
        for request in batch:
            stop = start + len(request.texts)
            _settle(request, EncodeResult(result.vectors[start:stop], result.tokens[start:stop]))
            start = stop


def _settle(request: _Request, outcome: EncodeResult | BaseException) -> None:
    if request.future.done():
        return
    if isinstance(outcome, BaseException):
        request.future.set_exception(outcome)
    else:
        request.future.set_result(outcome)


class ModelWorker:
    """One served encoder: its worker thread and a batcher for documents and one for queries.

    Queries differ from documents only for asymmetric encoders (BM25 weighs query terms alone);
    both batchers share the one thread, so the encoder never runs twice at once.
    """

    def __init__(self, name: str, encoder: Encoder, batching: Batching) -> None:
        self.name = name
        self.encoder = encoder
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"encode-{name}")
        contextual = encoder.kind == EncoderKind.CONTEXTUAL
        self.batch_size = int(batching.transformer_batch_size) if contextual else None
        """Rows per model run inside one micro-batch (None: the encoder's own default)."""
        self.documents = MicroBatcher(self._encode_documents, self.executor, batching)
        self.queries = MicroBatcher(self._encode_queries, self.executor, batching)

    def _encode_documents(self, texts: list[Any]) -> EncodeResult:
        vectors = self.encoder.encode(texts, batch_size=self.batch_size)
        return EncodeResult(vectors, count_tokens(self.encoder, texts))

    def _encode_queries(self, texts: list[Any]) -> EncodeResult:
        vectors = self.encoder.encode_queries(texts, batch_size=self.batch_size)
        return EncodeResult(vectors, count_tokens(self.encoder, texts))

    def start(self) -> None:
        """Start both batchers on the running loop."""
        self.documents.start()
        self.queries.start()

    async def warm_up(self) -> None:
        """Encode one input so lazily loaded models (ONNX sessions, word vectors) load now."""
        await self.documents.submit(warm_up_inputs(self.name, self.encoder))

    async def stop(self) -> None:
        """Stop the batchers and the worker thread (after the encode in flight, if any)."""
        await self.documents.stop()
        await self.queries.stop()
        self.executor.shutdown(wait=True)
