"""The output of a distributed encode: a folder of Parquet shards and the manifest that guards it.

Layout: ``manifest.json`` (the encoder spec and fingerprint, the source fingerprint, the shard
size) and ``shard-000000.parquet``, ... Each shard holds the columns ``id`` and ``vector``
(fixed-size list of float32), or ``id``, ``indices``, ``values`` for sparse encoders, with the
encoder spec in the Parquet schema metadata. Shards are written under a temporary name and
renamed, so a shard file that exists is complete; on a rerun a shard is kept only when its footer
reads back with the planned row count and the run's key, and a manifest from another encoder,
source or shard size is refused instead of silently mixed in.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import CorruptFileError, InputError
from ._source import filesystem

__all__ = ["ShardStore", "read_shards", "shard_bytes"]

MANIFEST = "manifest.json"
FORMAT = "embedcraft.shards"
FORMAT_VERSION = 1
KEY = b"embedcraft.run_key"
SPEC = b"embedcraft.encoder"
DIM = b"embedcraft.dim"


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.parquet"


def shard_bytes(ids: list[str], vectors: Any, spec_json: str, run_key: str) -> bytes:
    """One shard as Parquet bytes: ids and vectors (dense or sparse), with the run's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = int(vectors.shape[1])
    if sp.issparse(vectors):
        m = sp.csr_matrix(vectors, dtype=np.float32)
        offsets = pa.array(m.indptr.astype(np.int32))
        columns = {
            "id": pa.array(ids, pa.string()),
            "indices": pa.ListArray.from_arrays(offsets, pa.array(m.indices.astype(np.int32))),
            "values": pa.ListArray.from_arrays(offsets, pa.array(m.data.astype(np.float32))),
        }
    else:
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
        columns = {
            "id": pa.array(ids, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
        }
    table = pa.table(columns).replace_schema_metadata(
        {KEY: run_key.encode(), SPEC: spec_json.encode(), DIM: str(dim).encode()}
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


@dataclass(frozen=True)
class RunKey:
    """What makes shards reusable: the same encoder, source and shard size."""

    encoder_spec: dict[str, Any]
    encoder_fingerprint: str
    source: str
    source_fingerprint: str
    shard_rows: int

    @property
    def digest(self) -> str:
        return f"{self.encoder_fingerprint}:{self.source_fingerprint}:{self.shard_rows}"

    def manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "encoder": self.encoder_spec,
            "encoder_fingerprint": self.encoder_fingerprint,
            "source": self.source,
            "source_fingerprint": self.source_fingerprint,
            "shard_rows": self.shard_rows,
            "run_key": self.digest,
        }


class ShardStore:
    """The output folder (local or a filesystem URI): checks, writes and lists shards."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        import pyarrow.fs as pafs

        self.location = os.fspath(location)
        self.fs, self.root = filesystem(location)
        info = self.fs.get_file_info(self.root)
        if info.type == pafs.FileType.File:
            raise InputError(
                f"{self.location} is a file; the ray engine writes a folder of Parquet shards"
            )

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    # ------------------------------------------------------------------ the manifest
    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when the folder has none yet."""
        import pyarrow.fs as pafs

        path = self.path(MANIFEST)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        try:
            with self.fs.open_input_stream(path) as fh:
                manifest = json.loads(fh.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise CorruptFileError(f"{path} is corrupt: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise CorruptFileError(f"{path} is not an embedcraft shard manifest")
        return manifest

    def start(self, key: RunKey, *, overwrite: bool) -> None:
        """Claim the folder for this run: refuse (or, with `overwrite`, clear) other shards."""
        old = self.read_manifest()
        if old is not None and old.get("run_key") != key.digest:
            if not overwrite:
                raise InputError(f"{self.location} holds shards of another run: {_diff(old, key)}; "
                                 "write to a new folder, or pass overwrite=True (--overwrite) "
                                 "to discard them")  # fmt: skip
            self.clear()
        elif old is None and self._names(".parquet") and not overwrite:
            raise InputError(
                f"{self.location} holds Parquet files but no {MANIFEST}: not a shard folder "
                "of embedcraft; write to a new folder, or pass overwrite=True (--overwrite)"
            )
        elif old is None and overwrite:
            self.clear()
        self.fs.create_dir(self.root, recursive=True)
        for name in self._names(".tmp"):
            self.fs.delete_file(self.path(name))  # left by a run that was killed mid-write
        self.write_manifest({**key.manifest(), "complete": False})

    def finish(self, key: RunKey, rows: int, shards: int, dim: int | None, sparse: bool) -> None:
        """Record that every shard is written."""
        self.write_manifest(
            {**key.manifest(), "complete": True, "rows": rows, "shards": shards, "dim": dim,
             "sparse": sparse}
        )  # fmt: skip

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self._write(MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))

    def clear(self) -> None:
        """Remove every shard, temporary file and the manifest (other files are left alone)."""
        for name in self._names(".parquet") + self._names(".tmp") + self._names(".json"):
            if name.startswith("shard-") or name == MANIFEST or name.endswith(".tmp"):
                self.fs.delete_file(self.path(name))

    # ------------------------------------------------------------------ shards
    def is_done(self, index: int, rows: int, key: RunKey) -> bool:
        """True when shard `index` exists, reads back, has `rows` rows and this run's key."""
        import pyarrow.parquet as pq

        path = self.path(shard_name(index))
        try:
            with self.fs.open_input_file(path) as fh:
                meta = pq.read_metadata(fh)
        except (FileNotFoundError, OSError, ValueError):
            return False  # missing, truncated or not Parquet at all: encode it again
        found = (meta.metadata or {}).get(KEY)
        return meta.num_rows == rows and found == key.digest.encode()

    def write_shard(self, index: int, data: bytes) -> None:
        """Write one shard's bytes under a temporary name, then rename it into place."""
        self._write(shard_name(index), data)

    def shard_names(self) -> list[str]:
        return sorted(n for n in self._names(".parquet") if n.startswith("shard-"))

    def _write(self, name: str, data: bytes) -> None:
        tmp = self.path(f".{name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with self.fs.open_output_stream(tmp) as fh:
                fh.write(data)
            self.fs.move(tmp, self.path(name))
        finally:
            with contextlib.suppress(FileNotFoundError, OSError):
                self.fs.delete_file(tmp)

    def _names(self, suffix: str) -> list[str]:
        import pyarrow.fs as pafs

        if self.fs.get_file_info(self.root).type != pafs.FileType.Directory:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.root))
        names = [i.base_name for i in infos if i.type == pafs.FileType.File]
        return [n for n in names if n.endswith(suffix)]


def _diff(old: dict[str, Any], key: RunKey) -> str:
    changes = []
    if old.get("encoder_fingerprint") != key.encoder_fingerprint:
        name = (old.get("encoder") or {}).get("name", "?")
        changes.append(f"encoder {name!r} (now {key.encoder_spec.get('name')!r})")
    if old.get("source_fingerprint") != key.source_fingerprint:
        changes.append(f"source {old.get('source')!r} as it was then (now {key.source!r})")
    if old.get("shard_rows") != key.shard_rows:
        changes.append(f"shard size {old.get('shard_rows')} (now {key.shard_rows})")
    return ", ".join(changes) or "a different run"


def read_shards(location: str | os.PathLike[str]) -> tuple[list[str], Any]:
    """The ids and vectors of a finished shard folder, in source order.

    Dense vectors come back as a float32 (n, dim) array, sparse ones as a float32 CSR matrix.
    """
    import pyarrow.parquet as pq

    store = ShardStore(location)
    manifest = store.read_manifest()
    if manifest is None:
        raise InputError(f"{store.location}: no {MANIFEST}; not a shard folder of embedcraft")
    if not manifest.get("complete"):
        raise InputError(
            f"{store.location}: the run that writes it has not finished; rerun it to complete"
        )
    ids: list[str] = []
    parts: list[Any] = []
    for index in range(int(manifest["shards"])):
        path = store.path(shard_name(index))
        try:
            with store.fs.open_input_file(path) as fh:
                table = pq.read_table(fh)
        except (FileNotFoundError, OSError, ValueError) as exc:
            raise CorruptFileError(
                f"{path} is missing or corrupt ({exc}); rerun to redo it"
            ) from None
        ids += table.column("id").to_pylist()
        parts.append(_vectors(table))
    dim = int(manifest.get("dim") or 0)
    if manifest.get("sparse"):
        return ids, sp.vstack(parts, format="csr", dtype=np.float32) if parts else sp.csr_matrix(
            (0, dim), dtype=np.float32
        )
    return ids, np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)


def _vectors(table: Any) -> Any:
    """A shard table's vectors: (n, dim) float32, or CSR for the sparse layout."""
    dim = int(table.schema.metadata[DIM])
    if "vector" in table.column_names:
        column = table.column("vector").combine_chunks()
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(column), dim).astype(np.float32, copy=False)
    indices = table.column("indices").combine_chunks()
    values = table.column("values").combine_chunks()
    indptr = indices.offsets.to_numpy()
    indptr = indptr - indptr[0]
    return sp.csr_matrix(
        (values.flatten().to_numpy(), indices.flatten().to_numpy(), indptr),
        shape=(len(indices), dim),
        dtype=np.float32,
    )
