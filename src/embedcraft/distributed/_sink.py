"""Loading finished shards into a Collection folder or a pgvector table.

The shards carry ids and vectors; the texts and other columns come from the source again, shard
by shard, so memory stays that of one shard. Documents are upserted, so loading twice (after a
crash, say) leaves one copy of each.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..encoders.contract import Encoder
from ..errors import InputError
from ._shards import ShardStore, _vectors, shard_name
from ._source import Source

if TYPE_CHECKING:
    from ..store import VectorCollection

__all__ = ["load_collection"]


def load_collection(
    target: str | os.PathLike[str] | VectorCollection,
    encoder: Encoder,
    source: Source,
    store: ShardStore,
    shard_rows: int,
) -> tuple[str, int]:
    """Upsert every shard's texts, metadata and vectors into `target`; (where, rows loaded).

    `target` is a collection folder, a ``postgresql://`` URL or an open collection. The encoder
    is registered under its name when the collection is new; an existing collection must
    already have an encoder of that name (and width).
    """
    import pyarrow.parquet as pq

    from ..store import is_collection_folder, open_collection

    collection: VectorCollection
    if isinstance(target, str | os.PathLike):
        where = os.fspath(target)
        # PostgreSQL: naming the encoder creates the tables if need be and is a no-op for an
        # encoder already there; a folder is only given encoders when it is new
        known = is_collection_folder(where)
        collection = open_collection(where, encoders=None if known else [encoder])
        owned = True
    else:
        collection, where, owned = target, repr(target), False
    try:
        name = encoder.name
        if name not in collection.encoder_names:
            raise InputError(
                f"the collection {where} has no encoder {name!r} (it has "
                f"{', '.join(collection.encoder_names)}); load into a new collection instead"
            )
        loaded = 0
        for shard in source.shards(shard_rows, metadata=True):
            if not shard.ids:
                continue
            with store.fs.open_input_file(store.path(shard_name(shard.index))) as fh:
                table = pq.read_table(fh)
            if table.column("id").to_pylist() != shard.ids:
                raise InputError(
                    f"{shard_name(shard.index)} does not match the source rows it was made "
                    "from; rerun the encode with --overwrite"
                )
            collection.upsert(
                shard.texts, shard.ids, shard.metadata, vectors={name: _vectors(table)}
            )
            loaded += len(shard.ids)
        return where, loaded
    finally:
        if owned:
            collection.close()
