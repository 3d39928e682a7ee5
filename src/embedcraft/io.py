"""Reading texts from the files users have (.txt, CSV/TSV, JSONL, Parquet) and writing vectors.

Every reader returns a `TextTable`: ids, texts and the other columns as metadata. Errors name the
file and line. Vector files are written aside and renamed, so a failed write leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._files import atomic_file, csv_error, parse_json, raise_csv_field_limit, read_text
from .errors import InputError, missing_dependency

__all__ = ["TEXT_FORMATS", "VECTOR_FORMATS", "TextTable", "read_texts", "write_vectors"]

TEXT_FORMATS = (".txt", ".csv", ".tsv", ".jsonl", ".parquet")
VECTOR_FORMATS = (".npy", ".npz", ".parquet")
_TEXT_COLUMNS = ("text", "sentence", "document", "content", "body")
_ID_COLUMNS = ("id", "_id", "doc_id", "docid")


@dataclass
class TextTable:
    """Texts read from a file, with their ids and any other columns as metadata."""

    ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _read_text_file(path: Path) -> str:
    """The file decoded as UTF-8 (gzip when gzipped); damage and bad bytes are InputErrors."""
    return read_text(path)


def _json_record(line: str, path: str | os.PathLike[str], n: int) -> dict[str, Any] | None:
    """One JSONL line as a record (a bare string is {"text": ...}); None for a blank line."""
    if not line.strip():
        return None
    record = parse_json(line, f"{path}, line {n}")
    if isinstance(record, str):
        record = {"text": record}
    if not isinstance(record, dict):
        raise InputError(f"{path}, line {n}: expected a JSON object or string")
    return record


def csv_dict_reader(lines: Any, *, tsv: bool) -> csv.DictReader[str]:
    """A DictReader for CSV (standard quoting) or TSV (no quoting: a leading quote is text),
    reading fields up to `CSV_FIELD_LIMIT`."""
    raise_csv_field_limit()
    if tsv:
        return csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.DictReader(lines)


def _pick(
    columns: list[str], wanted: str | None, defaults: tuple[str, ...], what: str, path: Path
) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise InputError(f"{path}: no column {wanted!r}; columns are {', '.join(columns)}")
        return wanted
    for name in defaults:
        if name in columns:
            return name
    if what == "text":
        raise InputError(
            f"{path}: no text column found; pass --column (columns are {', '.join(columns)})"
        )
    return None


def _from_records(
    records: list[dict[str, Any]],
    columns: list[str],
    path: Path,
    column: str | None,
    id_column: str | None,
    line_numbers: list[int],
) -> TextTable:
    wanted = [c.strip() for c in column.split(",") if c.strip()] if column else [None]
    text_cols = [_pick(columns, c, _TEXT_COLUMNS, "text", path) for c in wanted]
    id_col = _pick(columns, id_column, _ID_COLUMNS, "id", path)
    ids, texts, metadata = [], [], []
    for n, record in enumerate(records):
        parts = []
        for text_col in text_cols:
            value = record.get(text_col)
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise InputError(
                    f"{path}, line {line_numbers[n]}: column {text_col!r} is "
                    f"{type(value).__name__}, not text"
                )
            parts.append(value)
        # several text columns (e.g. title,description) are joined into one text
        texts.append(parts[0] if len(parts) == 1 else ". ".join(p for p in parts if p))
        ids.append(str(record[id_col]) if id_col is not None and id_col in record else str(n + 1))
        metadata.append({k: v for k, v in record.items() if k not in (*text_cols, id_col)})
    return TextTable(ids, texts, metadata)


def read_texts(
    path: str | os.PathLike[str], *, column: str | None = None, id_column: str | None = None
) -> TextTable:
    """Read texts from .txt (one per line), .csv/.tsv, .jsonl or .parquet (optionally .gz).

    The text column defaults to the first of text/sentence/document/content/body present
    (`column="title,description"` joins several with ". "); the id column to id/_id/doc_id,
    else the row number (1-based).
    """
    p = Path(path)
    kind = _suffix(p)
    if kind == ".parquet":
        return _read_parquet(p, column, id_column)
    if kind not in TEXT_FORMATS:
        raise InputError(
            f"{p}: unsupported file type {kind or '(none)'}; use one of {', '.join(TEXT_FORMATS)}"
        )
    content = _read_text_file(p)
    if kind == ".txt":
        lines = content.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        texts = [line.removesuffix("\r") for line in lines]
        return TextTable([str(i + 1) for i in range(len(texts))], texts, [{} for _ in texts])
    if kind in (".csv", ".tsv"):
        reader = csv_dict_reader(io.StringIO(content), tsv=kind == ".tsv")
        records, lines = [], []
        try:
            for record in reader:
                records.append(record)
                lines.append(reader.line_num)
        except csv.Error as exc:
            raise csv_error(p, reader.line_num, exc) from None
        return _from_records(records, list(reader.fieldnames or []), p, column, id_column, lines)
    records, lines = [], []
    columns: dict[str, None] = {}
    for n, line in enumerate(content.split("\n"), start=1):
        record = _json_record(line, p, n)
        if record is None:
            continue
        columns.update(dict.fromkeys(record))
        records.append(record)
        lines.append(n)
    return _from_records(records, list(columns), p, column, id_column, lines)


def _read_parquet(path: Path, column: str | None, id_column: str | None) -> TextTable:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_dependency("pyarrow", "parquet", "reading Parquet") from None
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    rows = parquet_rows(table, path)
    return _from_records(
        rows, table.column_names, path, column, id_column, list(range(1, len(rows) + 1))
    )


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


def write_vectors(path: str | os.PathLike[str], vectors: Any, ids: list[str] | None = None) -> Path:
    """Write vectors to .npy (dense), .npz (dense or sparse, with ids) or .parquet (with ids).

    Sparse .npz files use scipy's layout (`scipy.sparse.load_npz` reads them) plus an `ids` array.
    """
    p = Path(path)
    kind = p.suffix.lower()
    if kind not in VECTOR_FORMATS:
        raise InputError(f"{p}: unsupported output type; use one of {', '.join(VECTOR_FORMATS)}")
    n = vectors.shape[0]
    id_array = np.array(ids if ids is not None else [str(i) for i in range(n)], dtype=str)
    if len(id_array) != n:
        raise InputError(f"{len(id_array)} ids for {n} vectors")
    if kind == ".npy" and sp.issparse(vectors):
        raise InputError(f"{p}: sparse vectors cannot go to .npy; write .npz or .parquet instead")
    if kind == ".parquet":
        table = _vectors_table(vectors, id_array)
    with atomic_file(p) as tmp:
        with open(tmp, "wb") as fh:
            if kind == ".npy":
                np.save(fh, np.asarray(vectors), allow_pickle=False)
            elif kind == ".npz" and sp.issparse(vectors):
                m = sp.csr_matrix(vectors)
                np.savez_compressed(
                    fh,
                    format=b"csr",
                    shape=np.array(m.shape),
                    data=m.data,
                    indices=m.indices,
                    indptr=m.indptr,
                    ids=id_array,
                )
            elif kind == ".npz":
                np.savez_compressed(fh, vectors=np.asarray(vectors), ids=id_array)
        if kind == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
    return p


def _vectors_table(vectors: Any, ids: np.ndarray) -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise missing_dependency("pyarrow", "parquet", "writing Parquet") from None
    dim = vectors.shape[1]
    if sp.issparse(vectors):
        m = sp.csr_matrix(vectors)
        offsets = pa.array(m.indptr.astype(np.int32))
        indices = pa.ListArray.from_arrays(offsets, pa.array(m.indices.astype(np.int32)))
        values = pa.ListArray.from_arrays(offsets, pa.array(m.data.astype(np.float32)))
        table = pa.table({"id": pa.array(ids.tolist()), "indices": indices, "values": values})
    else:
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
        column = pa.FixedSizeListArray.from_arrays(flat, dim)
        table = pa.table({"id": pa.array(ids.tolist()), "vector": column})
    return table.replace_schema_metadata({"embedcraft.dim": str(dim)})
