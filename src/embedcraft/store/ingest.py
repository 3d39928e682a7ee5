"""Documents to index, read from a file (CSV, TSV, JSONL, Parquet, TXT) or a folder of .txt/.md.

Table columns other than the id and text become metadata; a folder's files become documents
whose id is the path relative to the folder and whose metadata holds that path and the suffix.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import TextTable, read_texts
from ._base import first_duplicate

__all__ = ["FOLDER_SUFFIXES", "read_documents", "typed_metadata"]

FOLDER_SUFFIXES = (".txt", ".md")
_INT = re.compile(r"^-?[0-9]{1,19}$")
_FLOAT = re.compile(r"^-?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?$")
_INT64 = (-(2**63), 2**63 - 1)


def _typed(value: Any) -> Any:
    """A CSV cell as a number when it reads as one (so range filters work), else as is.

    Nothing is lost: a cell becomes a number only when that number prints back as exactly the
    same text. "42" and "-3" become ints (within 64 bits, what SQLite stores); "2.5" and "1e-07"
    floats; "007", "+5", "1.10", "1e5", " 42", "12345678901234567890" and "1e400" stay text.
    """
    if not isinstance(value, str):
        return value
    if _INT.match(value):
        number = int(value)
        if _INT64[0] <= number <= _INT64[1] and str(number) == value:
            return number
        return value
    if len(value) <= 32 and _FLOAT.match(value):
        real = float(value)
        if math.isfinite(real) and repr(real) == value:
            return real
    return value


def typed_metadata(path: Path, metadata: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A table's metadata, with CSV/TSV cells that read as numbers made numbers (see `_typed`);
    other formats keep their own types."""
    if path.name.lower().endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
        return [{k: _typed(v) for k, v in m.items()} for m in metadata]
    return metadata


def _read_folder(folder: Path) -> TextTable:
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES
    )
    files = [p for p in files if not any(s.startswith(".") for s in p.relative_to(folder).parts)]
    if not files:
        raise InputError(f"{folder}: no {' or '.join(FOLDER_SUFFIXES)} files in this folder")
    table = TextTable([], [], [])
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}: not valid UTF-8 at byte {exc.start}; re-encode the file as UTF-8"
            ) from None
        if not text.strip():
            continue  # an empty file is not a document
        rel = path.relative_to(folder).as_posix()
        table.ids.append(rel)
        table.texts.append(text)
        table.metadata.append({"path": rel, "suffix": path.suffix.lower()})
    if not table.texts:
        raise InputError(f"{folder}: every {' or '.join(FOLDER_SUFFIXES)} file here is empty")
    return table


def read_documents(
    source: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    id_column: str | None = None,
) -> TextTable:
    """Ids, texts and metadata from `source`; rows with an empty text are an error naming them."""
    path = Path(source)
    if path.is_dir():
        if text_column or id_column:
            raise InputError(f"{path} is a folder: --text-column/--id-column apply to tables")
        return _read_folder(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty; there are no documents to index")
    table = read_texts(path, column=text_column, id_column=id_column)
    if not table.texts:
        raise InputError(f"{path}: no documents in this file (no rows with a text)")
    empty = [table.ids[i] for i, text in enumerate(table.texts) if not text.strip()]
    if empty:
        shown = ", ".join(repr(i) for i in empty[:5])
        raise InputError(f"{path}: {len(empty)} row(s) with an empty text (ids {shown})")
    if not table.metadata:
        table.metadata = [{} for _ in table.texts]
    table.metadata = typed_metadata(path, table.metadata)
    dup = first_duplicate(table.ids)
    if dup is not None:
        raise InputError(f"{path}: id {dup!r} appears on more than one row")
    return table
