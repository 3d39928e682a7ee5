"""Input files read as a stream of records (ids, texts, the other columns), batch by batch.

Formats: .txt (one text per line), .csv, .tsv (no quoting), .jsonl (objects or bare strings) and
.parquet; all but Parquet optionally gzipped. Every reader of users' files goes through here (the
local and the Ray `encode`, training corpora, collections), so a file and its options mean the same
everywhere. Nothing holds a whole file: memory is that of one batch. Errors name file and line.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .._files import (
    csv_error,
    guard_stream,
    open_input,
    parse_json,
    raise_csv_field_limit,
    read_text,
)
from ..errors import InputError, missing_dependency

__all__ = [
    "ID_COLUMNS",
    "READ_ROWS",
    "TEXT_COLUMNS",
    "TEXT_FORMATS",
    "RecordBatch",
    "csv_dict_reader",
    "file_format",
    "parquet_rows",
    "read_records",
    "read_text_file",
    "split_columns",
]

TEXT_FORMATS = (".txt", ".csv", ".tsv", ".jsonl", ".parquet")
TEXT_COLUMNS = ("text", "sentence", "document", "content", "body")
"""The text column when none is named: the first of these that a file has (in this order)."""
ID_COLUMNS = ("id", "_id", "doc_id", "docid")
"""The id column when none is named; without one, ids are the 1-based row numbers."""
READ_ROWS = 8192
"""Records per batch. A JSONL file's columns are the keys met in its first batch."""


@dataclass
class RecordBatch:
    """Consecutive records of one file: their ids and texts, and their other columns as
    metadata (one dict per record; empty dicts when the metadata was not asked for)."""

    ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


def file_format(path: str | os.PathLike[str]) -> str:
    """The format a file's name gives: its last suffix, lower-cased, after a final .gz."""
    suffixes = [s.lower() for s in Path(os.fspath(path)).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def split_columns(column: str | None) -> list[str]:
    """The names in a column option: "title,description" -> ["title", "description"]."""
    return [c.strip() for c in (column or "").split(",") if c.strip()]


def read_text_file(path: str | os.PathLike[str]) -> str:
    """A whole (small) file decoded as UTF-8, gunzipped when gzipped; failures are InputErrors."""
    return read_text(path)


def csv_dict_reader(lines: Iterable[str], *, tsv: bool) -> csv.DictReader[str]:
    """A DictReader for CSV (standard quoting) or TSV (no quoting: a leading quote is text),
    reading fields up to `embedcraft._files.CSV_FIELD_LIMIT`."""
    raise_csv_field_limit()
    if tsv:
        return csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.DictReader(lines)


def parquet_rows(table: Any, path: str | os.PathLike[str], first_row: int = 1) -> list[Any]:
    """A pyarrow table's (or record batch's) rows as dicts; values Python cannot hold (invalid
    UTF-8 in a string column, dates out of range) are an InputError naming column and row."""
    try:
        return table.to_pylist()  # type: ignore[no-any-return]
    except (ValueError, OverflowError) as exc:  # UnicodeDecodeError is a ValueError
        for name in table.column_names:
            column = table.column(name)
            for row in range(len(column)):
                try:
                    column[row].as_py()
                except (ValueError, OverflowError) as cell_exc:
                    raise InputError(
                        f"{path}, row {first_row + row}: column {name!r} holds a value that "
                        f"cannot be read ({cell_exc})"
                    ) from None
        raise InputError(f"{path}: unreadable values ({exc})") from None


def read_records(
    path: str | os.PathLike[str],
    *,
    column: str | None = None,
    id_column: str | None = None,
    metadata: bool = True,
    filesystem: Any = None,
    fmt: str | None = None,
    first_row: int = 1,
    batch_rows: int = READ_ROWS,
) -> Iterator[RecordBatch]:
    """Stream the records of one file in batches of up to `batch_rows`.

    `column` names the text column, or several joined with ". " ("title,description"); by
    default the first of `TEXT_COLUMNS` the file has. `id_column` defaults to the first of
    `ID_COLUMNS`; without one (and in .txt files, whose lines are the texts and which take no
    columns) a record's id is its row number, counted from `first_row` (so the files of a
    folder can number on). `filesystem` is a pyarrow filesystem holding `path` (None: the local
    disk); `fmt` overrides the format the name gives. The format is checked now; the file is
    opened when the first batch is read.
    """
    where = os.fspath(path)
    kind = fmt or file_format(where)
    if kind not in TEXT_FORMATS:
        raise InputError(
            f"{where}: unsupported file type {kind or '(none)'}; use one of "
            f"{', '.join(TEXT_FORMATS)} (optionally .gz, except .parquet)"
        )
    if batch_rows < 1:
        raise InputError(f"batch_rows must be >= 1, got {batch_rows}")
    request = _Request(where, column, id_column, metadata, filesystem, first_row, batch_rows)
    if kind == ".txt":
        return _txt_batches(request)
    if kind == ".parquet":
        return _parquet_batches(request)
    chunks = _jsonl_chunks(request) if kind == ".jsonl" else _csv_chunks(request, kind == ".tsv")
    return _table_batches(chunks, request)


# ---------------------------------------------------------------------------------------------
# columns and records


@dataclass(frozen=True)
class _Request:
    """What `read_records` was asked for."""

    where: str
    column: str | None
    id_column: str | None
    metadata: bool
    filesystem: Any
    first_row: int
    batch_rows: int


@dataclass(frozen=True)
class _Columns:
    """The text column(s) and id column chosen for a file, from its column names."""

    text: tuple[str, ...]
    id: str | None

    @classmethod
    def choose(cls, names: list[str], request: _Request) -> _Columns:
        """The asked-for columns, or the usual ones; a name the file lacks is an InputError."""
        where, listed = request.where, ", ".join(str(n) for n in names)

        def named(name: str) -> str:
            if name not in names:
                raise InputError(f"{where}: no column {name!r}; columns are {listed}")
            return name

        wanted = split_columns(request.column)
        if wanted:
            text = tuple(named(name) for name in wanted)
        else:
            guess = next((n for n in TEXT_COLUMNS if n in names), None)
            if guess is None:
                raise InputError(
                    f"{where}: no text column found; pass --column (columns are {listed})"
                )
            text = (guess,)
        if request.id_column is not None:
            return cls(text, named(request.id_column))
        return cls(text, next((n for n in ID_COLUMNS if n in names), None))

    @staticmethod
    def _values(
        name: str, records: list[tuple[int, dict[Any, Any]]], unit: str, request: _Request
    ) -> list[str]:
        """One text column of the records: a missing or null value is the empty text, any
        other non-string an error naming the line (or row)."""
        values: list[Any] = [record.get(name) for _, record in records]
        if set(map(type, values)) <= {str}:
            return values
        for i, value in enumerate(values):
            if value is None:
                values[i] = ""
            elif not isinstance(value, str):
                raise InputError(
                    f"{request.where}, {unit} {records[i][0]}: column {name!r} is "
                    f"{type(value).__name__}, not text"
                )
        return values

    def batch(
        self,
        records: list[tuple[int, dict[Any, Any]]],
        first_row: int,
        unit: str,
        request: _Request,
    ) -> RecordBatch:
        """Records, each with its line (or Parquet row) in the file, as a batch whose rows
        are numbered from `first_row`."""
        columns = [self._values(name, records, unit, request) for name in self.text]
        # several text columns (title,description) are joined into one text
        texts = (
            columns[0]
            if len(columns) == 1
            else [". ".join(filter(None, row)) for row in zip(*columns, strict=True)]
        )
        ids = [str(first_row + i) for i in range(len(records))]
        if self.id is not None:
            for i, (_, record) in enumerate(records):
                value = record.get(self.id)
                if value is not None:
                    ids[i] = str(value)
        metas: list[dict[str, Any]] = [{} for _ in records]
        if request.metadata:
            skip = tuple(dict.fromkeys((*self.text, self.id)))
            for i, (_, record) in enumerate(records):
                metas[i] = meta = record.copy()
                for name in skip:
                    meta.pop(name, None)
        return RecordBatch(ids, texts, metas)


_Chunks = Iterator[tuple[list[str], list[tuple[int, dict[Any, Any]]]]]
"""(the file's column names, records with their line numbers), the first possibly empty."""


def _table_batches(chunks: _Chunks, request: _Request) -> Iterator[RecordBatch]:
    """CSV/TSV/JSONL chunks as batches, the columns chosen from the first chunk's names."""
    columns: _Columns | None = None
    row = request.first_row
    for names, records in chunks:
        if columns is None:
            columns = _Columns.choose(names, request)
        if records:
            yield columns.batch(records, row, "line", request)
            row += len(records)


# ---------------------------------------------------------------------------------------------
# the formats


@contextlib.contextmanager
def _open(request: _Request) -> Iterator[IO[bytes]]:
    """The file's bytes, gunzipped when gzipped; failures are InputErrors naming the file."""
    fs = request.filesystem
    if fs is None or _is_local(fs):
        with open_input(request.where) as local:
            yield local
        return
    try:  # another pyarrow filesystem (s3://, gs://, ...): it gunzips files named .gz
        stream = fs.open_input_stream(request.where, compression="detect")
    except FileNotFoundError:
        raise InputError(f"{request.where}: no such file") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{request.where}: cannot be opened ({exc})") from None
    # pyarrow reports damaged compressed data as OSError or ValueError (ArrowInvalid)
    with guard_stream(stream, request.where, catch=(OSError, ValueError, EOFError)) as remote:
        yield remote


def _is_local(fs: Any) -> bool:
    """True for pyarrow's filesystem of the local disk (read like any local path)."""
    import pyarrow.fs as pafs

    return isinstance(fs, pafs.LocalFileSystem)


class _Lines:
    """The lines of a byte stream (endings kept), each decoded as strict UTF-8, a byte-order
    mark at the start dropped; `line` is the number of the last one handed out (the csv
    module's own count lags by one when it fails)."""

    def __init__(self, stream: IO[bytes], where: str) -> None:
        self._stream = stream
        self._where = where
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        for n, raw in enumerate(self._stream, start=1):
            self.line = n
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{self._where}, line {n}, column {exc.start + 1}: invalid UTF-8 "
                    f"(byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
                ) from None
            yield text.removeprefix("\ufeff") if n == 1 else text


def _txt_batches(request: _Request) -> Iterator[RecordBatch]:
    """One text per line (a final newline ends the last line; CRLF endings are dropped)."""
    texts: list[str] = []
    row = request.first_row
    with _open(request) as stream:
        for line in _Lines(stream, request.where):
            texts.append(line.removesuffix("\n").removesuffix("\r"))
            if len(texts) >= request.batch_rows:
                yield _numbered(texts, row)
                row += len(texts)
                texts = []
    if texts:
        yield _numbered(texts, row)


def _numbered(texts: list[str], first_row: int) -> RecordBatch:
    ids = [str(first_row + i) for i in range(len(texts))]
    return RecordBatch(ids, texts, [{} for _ in texts])


def _csv_chunks(request: _Request, tsv: bool) -> _Chunks:
    """CSV or TSV records with the file line each ends on; the header alone comes first."""
    chunk: list[tuple[int, dict[Any, Any]]] = []
    with _open(request) as stream:
        lines = _Lines(stream, request.where)
        reader = csv_dict_reader(lines, tsv=tsv)
        try:
            if reader.fieldnames is None:  # an empty file
                return
            names = list(reader.fieldnames)
            yield names, []
            for record in reader:
                chunk.append((lines.line, record))
                if len(chunk) >= request.batch_rows:
                    yield names, chunk
                    chunk = []
        except csv.Error as exc:
            raise csv_error(request.where, lines.line, exc) from None
    if chunk:
        yield names, chunk


def _jsonl_chunks(request: _Request) -> _Chunks:
    """JSONL records (a bare string is {"text": ...}) with their lines; blank lines skipped.
    The names are the keys met so far in the first chunk."""
    names: dict[str, None] = {}
    first = True
    chunk: list[tuple[int, dict[Any, Any]]] = []
    with _open(request) as stream:
        lines = _Lines(stream, request.where)
        for line in lines:
            if not line.strip():
                continue
            n = lines.line
            record = parse_json(line, f"{request.where}, line {n}")
            if isinstance(record, str):
                record = {"text": record}
            elif not isinstance(record, dict):
                raise InputError(f"{request.where}, line {n}: expected a JSON object or string")
            if first:
                names.update(dict.fromkeys(record))
            chunk.append((n, record))
            if len(chunk) >= request.batch_rows:
                yield list(names), chunk
                chunk, first = [], False
    if chunk:
        yield list(names), chunk


def _parquet_batches(request: _Request) -> Iterator[RecordBatch]:
    """Parquet record batches; without metadata only the text and id columns are read."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_dependency("pyarrow", "parquet", "reading Parquet") from None
    where = request.where
    with contextlib.ExitStack() as stack:
        try:
            source = where
            if request.filesystem is not None:
                source = stack.enter_context(request.filesystem.open_input_file(where))
            handle = stack.enter_context(pq.ParquetFile(source))
        except FileNotFoundError:
            raise InputError(f"{where}: no such file") from None
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InputError(f"{where}: not a readable Parquet file ({exc})") from None
        names = handle.schema_arrow.names
        columns = _Columns.choose(names, request)
        wanted = None
        if not request.metadata:
            wanted = list(dict.fromkeys(c for c in (*columns.text, columns.id) if c is not None))
        batches = handle.iter_batches(batch_size=request.batch_rows, columns=wanted)
        position, row = 1, request.first_row
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # a damaged page: pyarrow raises several types
                raise InputError(f"{where}: not a readable Parquet file ({exc})") from None
            if batch is None:
                return
            rows = parquet_rows(batch, where, position)
            yield columns.batch(list(enumerate(rows, start=position)), row, "row", request)
            position += len(rows)
            row += len(rows)
