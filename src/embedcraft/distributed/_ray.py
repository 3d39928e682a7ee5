"""Ray underneath: connect to a cluster (or start a local one) and run a pool of encoder actors.

Each actor builds the encoder once and then encodes whole shards, returning them as Parquet
bytes, so the driver only streams the source in and writes finished shards out. Actors ask for a
fraction of a CPU by default: on a 2-core machine whole-CPU actors starved everything else and
hung. Ray is imported only here, inside functions (the optional extra `distributed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from ..errors import EmbedcraftError, InputError, missing_dependency
from ._encoder import EncoderRecipe, set_threads
from ._shards import shard_bytes

__all__ = ["RayOptions", "WorkerPool", "import_ray"]


def import_ray() -> ModuleType:
    """The `ray` module, or the error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise missing_dependency("ray", "distributed", "encoding on Ray") from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run: cluster address, worker count, CPUs and threads per worker.

    `address` None starts a local Ray (or uses the one this process already started);
    "auto" or "HOST:PORT" (or "ray://HOST:PORT") joins an existing cluster. `workers` defaults to
    the cluster's CPU count. `cpus_per_worker` is what each actor reserves (fractional by
    default, see the module note); `threads_per_worker` caps an ONNX model's threads (default:
    the whole CPUs reserved, at least 1).
    """

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 0.5
    threads_per_worker: int | None = None

    def check(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise InputError(f"workers must be >= 1, got {self.workers}")
        if self.cpus_per_worker <= 0:
            raise InputError(f"cpus_per_worker must be > 0, got {self.cpus_per_worker}")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise InputError(f"threads_per_worker must be >= 1, got {self.threads_per_worker}")


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A clear error within seconds when a HOST:PORT (or ray://HOST:PORT) address does not answer.

    `ray.init` itself retries an unreachable cluster for minutes before it fails. Addresses
    without a port ("auto", a bare host) are left to Ray.
    """
    import socket

    target = address.removeprefix("ray://").rstrip("/")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(
            f"cannot reach the Ray cluster at {address} ({reason}); check the address "
            "(`ray start --head` prints it) or leave out --address for a local Ray"
        ) from None


def connect(options: RayOptions) -> bool:
    """Make sure Ray is up; True when this call started (and so must stop) it."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if options.address:
        check_reachable(options.address)
    try:
        if options.address:
            ray.init(address=options.address, **quiet)
        else:
            ray.init(include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = options.address or "a local Ray"
        raise InputError(f"cannot start or reach {where}: {exc}") from None
    return True


class _ShardEncoder:
    """A Ray actor: one encoder, loaded once, encoding one shard per call."""

    def __init__(self, recipe: EncoderRecipe, obj: Any, threads: int, batch_size: int | None,
                 run_key: str, cache: Any = None) -> None:  # fmt: skip
        import json

        self.cache = cache  # an EmbeddingCache: unpickled here, it opens the same file
        self.encoder = obj if obj is not None else recipe.build()
        set_threads(self.encoder, threads)
        self.spec_json = json.dumps(recipe.spec)
        self.batch_size = batch_size
        self.run_key = run_key

    def ready(self) -> int:
        """Warm the encoder (first batch loads models) and return this worker's process id."""
        import os

        self.encoder.encode(["warm up"], batch_size=self.batch_size)
        return os.getpid()

    def encode(self, index: int, ids: list[str], texts: list[str]) -> tuple[int, int, bytes]:
        """Shard `index` encoded: (index, rows encoded, Parquet bytes)."""
        vectors = self.encoder.encode(texts, batch_size=self.batch_size, cache=self.cache or False)
        if len(ids) == 0:
            vectors = vectors[:0]
        return index, len(texts), shard_bytes(ids, vectors, self.spec_json, self.run_key)


class WorkerPool:
    """A pool of `_ShardEncoder` actors with a bounded number of shards in flight."""

    def __init__(self, recipe: EncoderRecipe, options: RayOptions, batch_size: int | None,
                 run_key: str, cache: Any = None) -> None:  # fmt: skip
        ray = import_ray()
        from ray.util import ActorPool

        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        self.workers = options.workers or max(1, int(cpus))
        threads = options.threads_per_worker or max(1, int(options.cpus_per_worker))
        # the object goes to the store once; as a top-level argument each actor gets its value
        obj = None if recipe.obj is None else ray.put(recipe.obj)
        light = replace(recipe, obj=None)
        actor = ray.remote(num_cpus=options.cpus_per_worker, max_restarts=0)(_ShardEncoder)
        self.actors = [
            actor.remote(light, obj, threads, batch_size, run_key, cache)
            for _ in range(self.workers)
        ]
        self.pids: list[int] = self._get([a.ready.remote() for a in self.actors])
        self._pool = ActorPool(self.actors)
        self._in_flight = 0

    def run(
        self, shards: Iterator[tuple[int, list[str], list[str]]], write: Callable[[Any], None]
    ) -> None:
        """Encode every shard, calling `write(result)` as each finishes (any order)."""
        for index, ids, texts in shards:
            while self._in_flight >= 2 * self.workers:
                write(self._next())
            self._pool.submit(lambda a, v: a.encode.remote(*v), (index, ids, texts))
            self._in_flight += 1
        while self._in_flight:
            write(self._next())

    def _next(self) -> Any:
        result = self._get(None)
        self._in_flight -= 1
        return result

    def _get(self, refs: list[Any] | None) -> Any:
        """Results, with a worker's own error raised as itself (not wrapped by Ray)."""
        ray = import_ray()
        try:
            return ray.get(refs) if refs is not None else self._pool.get_next_unordered()
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, EmbedcraftError | TypeError):
                raise cause from None
            raise EmbedcraftError(f"a worker failed: {cause or exc}") from None
        except ray.exceptions.RayActorError as exc:
            raise EmbedcraftError(
                f"a worker died ({exc.__class__.__name__}); finished shards are kept: "
                "rerun the same command to resume"
            ) from None

    def close(self) -> None:
        """Stop the actors (their encoders and memory go with them)."""
        ray = import_ray()
        for a in self.actors:
            ray.kill(a)
