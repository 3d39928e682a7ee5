"""`encode_dataset`: a corpus encoded on Ray into a resumable folder of Parquet shards."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ..cache import EmbeddingCache, resolve_cache
from ..encoders.base import Encoder
from ..encoders.contract import CacheSetting
from ..errors import InputError
from ._encoder import prepare_encoder
from ._ray import RayOptions, WorkerPool, check_reachable, connect, import_ray
from ._shards import RunKey, ShardStore
from ._source import Source

__all__ = ["EncodeResult", "encode_dataset"]


@dataclass
class EncodeResult:
    """What a run did: shards written and skipped, rows encoded here, timings, workers."""

    output: str
    encoder: str
    rows: int
    dim: int | None
    sparse: bool
    shards: int
    shards_written: int
    shards_skipped: int
    rows_encoded: int
    """Rows the workers encoded in this run (rows of skipped shards are not encoded again)."""
    workers: int
    startup_seconds: float
    """Connecting to Ray plus starting the actors and loading their encoders."""
    seconds: float
    worker_pids: list[int] = field(default_factory=list)
    collection: str | None = None
    collection_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def encode_dataset(
    source: str | os.PathLike[str],
    encoder: str | os.PathLike[str] | Encoder,
    sink: str | os.PathLike[str],
    *,
    column: str | None = None,
    id_column: str | None = None,
    shard_rows: int = 10_000,
    batch_size: int | None = None,
    ray: RayOptions | None = None,
    collection: Any = None,
    overwrite: bool = False,
    progress: bool = False,
    cache: CacheSetting = None,
) -> EncodeResult:
    """Encode the texts of `source` on Ray into Parquet shards in folder `sink`; resumable.

    `source` is a .txt (one text per line), CSV/TSV/JSONL (each optionally gzipped) or Parquet
    file, or a folder of them, a local path or a pyarrow filesystem URI, read as
    `embedcraft.io.read_texts` reads it (`column="title,description"` joins columns);
    `encoder` a catalog name, a saved encoder folder or a fitted encoder.
    Shard ``i`` holds rows ``[i * shard_rows, (i + 1) * shard_rows)``; a rerun keeps every shard
    already written and encodes only the rest. With `collection` (a folder, a
    ``postgresql://`` URL or an open collection) the result is then loaded into it.
    `cache`: a disk `EmbeddingCache` (True: the default one; None: an enclosing `caching`
    block's) that every worker on a machine opens and shares, so a rerun with other shard
    sizes or a restarted job encodes only texts never seen.
    """
    options = ray or RayOptions()
    options.check()
    shared = resolve_cache(cache)
    if shared is not None and not isinstance(shared, EmbeddingCache):
        raise InputError(
            "a distributed encode shares the disk cache between its workers: give cache=True "
            f"or an EmbeddingCache, not a {type(shared).__name__}"
        )
    import_ray()  # a missing extra is said before anything is read or written
    if options.address:
        check_reachable(options.address)  # in seconds, before any output exists
    if shard_rows < 1:
        raise InputError(f"shard_rows must be >= 1, got {shard_rows}")
    started_at = time.perf_counter()
    src = Source(source, column=column, id_column=id_column)
    recipe = prepare_encoder(encoder)
    if collection is not None and recipe.sparse:
        raise InputError(
            f"{recipe.spec['name']} is sparse: a collection makes sparse vectors from the texts "
            "itself; index the source with `embedcraft index` instead"
        )
    store = ShardStore(sink)
    key = RunKey(recipe.spec, recipe.fingerprint, src.location, src.fingerprint, shard_rows)
    store.start(key, overwrite=overwrite)
    counts = {"rows": 0, "shards": 0, "skipped": 0, "written": 0, "encoded": 0}
    bar = _bar(progress)

    def pending() -> Iterator[tuple[int, list[str], list[str]]]:
        for shard in src.shards(shard_rows):
            counts["shards"] += 1
            counts["rows"] += len(shard.ids)
            if store.is_done(shard.index, len(shard.ids), key):
                counts["skipped"] += 1
                if bar is not None:
                    bar.update(1)
                continue
            yield shard.index, shard.ids, shard.texts

    def write(result: tuple[int, int, bytes]) -> None:
        index, encoded, data = result
        store.write_shard(index, data)
        counts["written"] += 1
        counts["encoded"] += encoded
        if bar is not None:
            bar.update(1)

    todo = pending()
    first = next(todo, None)  # Ray starts only when some shard is left to encode
    pool: WorkerPool | None = None
    startup = 0.0
    started_ray = False
    try:
        if first is not None:
            t0 = time.perf_counter()
            started_ray = connect(options)
            pool = WorkerPool(recipe, options, batch_size, key.digest, shared)
            startup = time.perf_counter() - t0
            pool.run(itertools.chain([first], todo), write)
        if bar is not None:
            bar.close()
        dim = _dim_of(store, counts["shards"])
        store.finish(key, counts["rows"], counts["shards"], dim, recipe.sparse)
    finally:
        if pool is not None:
            pool.close()
        if started_ray:
            import_ray().shutdown()
    result = EncodeResult(
        output=store.location,
        encoder=str(recipe.spec["name"]),
        rows=counts["rows"],
        dim=dim,
        sparse=recipe.sparse,
        shards=counts["shards"],
        shards_written=counts["written"],
        shards_skipped=counts["skipped"],
        rows_encoded=counts["encoded"],
        workers=pool.workers if pool is not None else 0,
        startup_seconds=round(startup, 4),
        seconds=0.0,
        worker_pids=pool.pids if pool is not None else [],
    )
    if collection is not None:
        from ._sink import load_collection

        built = recipe.build() if recipe.obj is None else recipe.obj
        result.collection, result.collection_rows = load_collection(
            collection, built, src, store, shard_rows
        )
    result.seconds = round(time.perf_counter() - started_at, 4)
    return result


def _dim_of(store: ShardStore, shards: int) -> int | None:
    """The vector width recorded in the first shard."""
    import pyarrow.parquet as pq

    from ._shards import DIM, shard_name

    if shards == 0:
        return None
    with store.fs.open_input_file(store.path(shard_name(0))) as fh:
        meta = pq.read_metadata(fh).metadata or {}
    return int(meta[DIM]) if DIM in meta else None


def _bar(progress: bool) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(desc="shards", unit="shard")
