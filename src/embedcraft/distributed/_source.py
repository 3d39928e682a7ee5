"""The input of a distributed encode: files of texts, streamed in fixed-size shards.

A source is one file or a folder of files of one format (.txt, CSV/TSV, JSONL, each optionally
gzipped, or Parquet), on the local disk or behind any URI pyarrow's filesystems understand
(``file://``, ``s3://``, ``gs://``, ...). Rows are numbered in file order (files sorted by path),
so shard ``i`` is always rows ``[i * R, (i + 1) * R)``: a rerun plans exactly the same shards.
Each file is read by `embedcraft.inputs.read_records`, as `embedcraft encode` reads it locally:
the same columns (``title,description`` joined), ids (else the 1-based row number, counted on
across the files of a folder) and errors.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, missing_dependency
from ..inputs import TEXT_FORMATS, RecordBatch, file_format, read_records

__all__ = ["FORMATS", "ShardRows", "Source", "filesystem"]

FORMATS = TEXT_FORMATS


def filesystem(location: str | os.PathLike[str]) -> tuple[Any, str]:
    """The pyarrow filesystem and path of a local path or a filesystem URI."""
    try:
        import pyarrow.fs as pafs
    except ImportError:
        raise missing_dependency("pyarrow", "distributed", "distributed encoding") from None
    text = os.fspath(location)
    if "://" in text:
        try:
            found: tuple[Any, str] = pafs.FileSystem.from_uri(text)
            return found
        except (ValueError, OSError) as exc:
            raise InputError(f"{text}: not a usable filesystem URI ({exc})") from None
    return pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())


@dataclass
class ShardRows:
    """The rows of one planned shard: its number, ids, texts (and other columns, when asked)."""

    index: int
    ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)


class Source:
    """Files to encode, resolved once: where they are, their format, and a fingerprint."""

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        column: str | None = None,
        id_column: str | None = None,
    ) -> None:
        import pyarrow.fs as pafs

        self.location = os.fspath(location)
        self.column = column
        self.id_column = id_column
        self.fs, root = filesystem(location)
        info = self.fs.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            raise InputError(f"{self.location}: no such file or folder")
        if info.type == pafs.FileType.Directory:
            found = self.fs.get_file_info(pafs.FileSelector(root, recursive=True))
            files = sorted(
                (f for f in found if f.type == pafs.FileType.File and _visible(f.path, root)),
                key=lambda f: f.path,
            )
            files = [f for f in files if file_format(f.path) in FORMATS]
            if not files:
                raise InputError(f"{self.location}: the folder holds no {', '.join(FORMATS)} files")
        else:
            files = [info]
        kinds = sorted({file_format(f.path) for f in files})
        if len(kinds) > 1:
            raise InputError(
                f"{self.location}: the folder mixes file types ({', '.join(kinds)}); "
                "keep one format per source"
            )
        if kinds[0] not in FORMATS:
            raise InputError(
                f"{self.location}: unsupported file type {kinds[0] or '(none)'}; "
                f"use one of {', '.join(FORMATS)} (optionally .gz, except .parquet)"
            )
        self.kind = kinds[0]
        self.files = files
        next(self._batches(False), None)  # bad columns or a bad first record: say so now

    @property
    def fingerprint(self) -> str:
        """A digest of the files (paths, sizes, modification times) and the columns chosen."""
        listing = [(f.path, f.size, f.mtime_ns) for f in self.files]
        key = json.dumps([listing, self.column, self.id_column], default=str)
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def shards(self, shard_rows: int, *, metadata: bool = False) -> Iterator[ShardRows]:
        """The rows in shards of `shard_rows` (the last may be shorter), in order."""
        if shard_rows < 1:
            raise InputError(f"shard_rows must be >= 1, got {shard_rows}")
        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        index = 0
        for batch in self._batches(metadata):
            ids += batch.ids
            texts += batch.texts
            if metadata:
                metas += batch.metadata
            while len(ids) >= shard_rows:
                yield ShardRows(index, ids[:shard_rows], texts[:shard_rows], metas[:shard_rows])
                del ids[:shard_rows], texts[:shard_rows], metas[:shard_rows]
                index += 1
        if ids or index == 0:
            yield ShardRows(index, ids, texts, metas)

    # ------------------------------------------------------------------ reading
    def _batches(self, metadata: bool) -> Iterator[RecordBatch]:
        """Every file's records, in order, row numbers (the default ids) running across files."""
        row = 1
        for info in self.files:
            for batch in read_records(
                info.path,
                column=self.column,
                id_column=self.id_column,
                metadata=metadata,
                filesystem=self.fs,
                fmt=self.kind,
                first_row=row,
            ):
                row += len(batch)
                yield batch


def _visible(path: str, root: str) -> bool:
    """False for hidden or marker files (.name, _SUCCESS) anywhere under the root."""
    relative = path[len(root) :].strip("/")
    return not any(part.startswith((".", "_")) for part in relative.split("/"))
