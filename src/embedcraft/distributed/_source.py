"""The input of a distributed encode: CSV/TSV/JSONL/Parquet files, streamed in fixed-size shards.

A source is one file or a folder of files of one format, on the local disk or behind any URI
pyarrow's filesystems understand (``file://``, ``s3://``, ``gs://``, ...). Rows are numbered in
file order (files sorted by path), so shard ``i`` is always rows ``[i * R, (i + 1) * R)``: a rerun
plans exactly the same shards. Texts and ids follow `embedcraft.io.read_texts`: the text column
defaults to text/sentence/document/content/body, the id column to id/_id/doc_id/docid, else the
1-based row number.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import csv_error, guard_stream
from ..errors import InputError, missing_dependency
from ..io import (  # the same rules as every reader
    _ID_COLUMNS,
    _TEXT_COLUMNS,
    _json_record,
    csv_dict_reader,
    parquet_rows,
)

__all__ = ["FORMATS", "ShardRows", "Source", "filesystem"]

FORMATS = (".csv", ".tsv", ".jsonl", ".parquet")
_READ_ROWS = 8192
"""Rows per Parquet record batch read."""


def filesystem(location: str | os.PathLike[str]) -> tuple[Any, str]:
    """The pyarrow filesystem and path of a local path or a filesystem URI."""
    try:
        import pyarrow.fs as pafs
    except ImportError:
        raise missing_dependency("pyarrow", "distributed", "distributed encoding") from None
    text = os.fspath(location)
    if "://" in text:
        try:
            return pafs.FileSystem.from_uri(text)
        except (ValueError, OSError) as exc:
            raise InputError(f"{text}: not a usable filesystem URI ({exc})") from None
    return pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())


def _format(path: str) -> str:
    parts = [s.lower() for s in Path(path).suffixes]
    if parts and parts[-1] == ".gz":
        parts = parts[:-1]
    return parts[-1] if parts else ""


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
            files = [f for f in files if _format(f.path) in FORMATS]
            if not files:
                raise InputError(f"{self.location}: the folder holds no {', '.join(FORMATS)} files")
        else:
            files = [info]
        kinds = sorted({_format(f.path) for f in files})
        if len(kinds) > 1:
            raise InputError(
                f"{self.location}: the folder mixes file types ({', '.join(kinds)}); "
                "keep one format per source"
            )
        if kinds[0] not in FORMATS:
            raise InputError(
                f"{self.location}: unsupported file type {kinds[0] or '(none)'}; "
                f"use one of {', '.join(FORMATS)} (optionally .gz for CSV/TSV/JSONL)"
            )
        self.kind = kinds[0]
        self.files = files
        next(self._chunks(False), None)  # bad columns or a bad first record: say so now

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
        for chunk_ids, chunk_texts, chunk_meta in self._chunks(metadata):
            ids += chunk_ids
            texts += chunk_texts
            metas += chunk_meta
            while len(ids) >= shard_rows:
                yield ShardRows(index, ids[:shard_rows], texts[:shard_rows], metas[:shard_rows])
                del ids[:shard_rows], texts[:shard_rows], metas[:shard_rows]
                index += 1
        if ids or index == 0:
            yield ShardRows(index, ids, texts, metas)

    # ------------------------------------------------------------------ reading
    def _chunks(
        self, metadata: bool
    ) -> Iterator[tuple[list[str], list[str], list[dict[str, Any]]]]:
        """(ids, texts, metadata) chunks over every file, row numbers running across files."""
        row = 0
        columns: tuple[str, str | None] | None = None
        for info in self.files:
            records = (
                self._parquet(info.path, metadata)
                if self.kind == ".parquet"
                else self._text_records(info.path)
            )
            for names, batch in records:
                if columns is None:
                    columns = self._columns(names, info.path)
                text_col, id_col = columns
                ids, texts, metas = [], [], []
                for record in batch:
                    row += 1
                    value = record.get(text_col)
                    if value is None:
                        value = ""
                    if not isinstance(value, str):
                        raise InputError(
                            f"{info.path}, row {row}: column {text_col!r} is "
                            f"{type(value).__name__}, not text"
                        )
                    texts.append(value)
                    raw_id = record.get(id_col) if id_col is not None else None
                    ids.append(str(raw_id) if raw_id is not None else str(row))
                    if metadata:
                        metas.append(
                            {k: v for k, v in record.items() if k not in (text_col, id_col)}
                        )
                yield ids, texts, metas

    def _columns(self, names: list[str], path: str) -> tuple[str, str | None]:
        def pick(wanted: str | None, defaults: tuple[str, ...]) -> str | None:
            if wanted is not None:
                if wanted not in names:
                    raise InputError(
                        f"{path}: no column {wanted!r}; columns are {', '.join(names)}"
                    )
                return wanted
            return next((n for n in defaults if n in names), None)

        text_col = pick(self.column, _TEXT_COLUMNS)
        if text_col is None:
            raise InputError(
                f"{path}: no text column found; pass --column (columns are {', '.join(names)})"
            )
        return text_col, pick(self.id_column, _ID_COLUMNS)

    def _parquet(
        self, path: str, metadata: bool
    ) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
        import pyarrow.parquet as pq

        try:
            handle = pq.ParquetFile(self.fs.open_input_file(path))
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        names = handle.schema_arrow.names
        text_col, id_col = self._columns(names, path)
        wanted = None if metadata else [c for c in (text_col, id_col) if c is not None]
        batches = handle.iter_batches(batch_size=_READ_ROWS, columns=wanted)
        first_row = 1
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # a damaged page: pyarrow raises several types
                raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
            if batch is None:
                return
            yield names, parquet_rows(batch, path, first_row)
            first_row += batch.num_rows

    def _text_records(self, path: str) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
        """CSV/TSV (standard quoting; TSV unquoted) or JSONL records, streamed."""
        try:
            stream = self.fs.open_input_stream(path, compression="detect")
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot open ({exc})") from None
        # pyarrow reports damaged compressed data as OSError or ValueError (ArrowInvalid)
        raw = guard_stream(stream, path, catch=(OSError, ValueError, EOFError))
        with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as fh:
            try:
                if self.kind == ".jsonl":
                    yield from _jsonl(fh, path)
                else:
                    yield from _csv(fh, path, tsv=self.kind == ".tsv")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{path}: invalid UTF-8 ({exc.reason}); save it as UTF-8"
                ) from None


def _visible(path: str, root: str) -> bool:
    """False for hidden or marker files (.name, _SUCCESS) anywhere under the root."""
    relative = path[len(root) :].strip("/")
    return not any(part.startswith((".", "_")) for part in relative.split("/"))


def _csv(fh: Any, path: str, *, tsv: bool) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    reader = csv_dict_reader(fh, tsv=tsv)
    batch: list[dict[str, Any]] = []
    try:
        for record in reader:
            batch.append(record)
            if len(batch) >= _READ_ROWS:
                yield list(reader.fieldnames or []), batch
                batch = []
    except csv.Error as exc:
        raise csv_error(path, reader.line_num, exc) from None
    if batch:
        yield list(reader.fieldnames or []), batch


def _jsonl(fh: Any, path: str) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    batch: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    for n, line in enumerate(fh, start=1):
        record = _json_record(line, path, n)
        if record is None:
            continue
        names.update(dict.fromkeys(record))
        batch.append(record)
        if len(batch) >= _READ_ROWS:
            yield list(names), batch
            batch = []
    if batch:
        yield list(names), batch
