"""Documents to index, read from a file (CSV, TSV, JSONL, Parquet, TXT) or a folder of .txt/.md.

Table columns other than the id and text become metadata; a folder's files become documents
whose id is the path relative to the folder and whose metadata holds that path and the suffix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import TextTable, read_texts
from ._base import first_duplicate

__all__ = ["FOLDER_SUFFIXES", "read_documents"]

FOLDER_SUFFIXES = (".txt", ".md")
_INT = re.compile(r"^[+-]?\d{1,18}$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def _typed(value: Any) -> Any:
    """A CSV cell as a number when it reads as one (so range filters work), else as is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _INT.match(text) and not (len(text) > 1 and text.lstrip("+-").startswith("0")):
        return int(text)  # ids like "007" stay text
    if _FLOAT.match(text):
        return float(text)
    return value


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
    table = read_texts(path, column=text_column, id_column=id_column)
    empty = [table.ids[i] for i, text in enumerate(table.texts) if not text.strip()]
    if empty:
        shown = ", ".join(repr(i) for i in empty[:5])
        raise InputError(f"{path}: {len(empty)} row(s) with an empty text (ids {shown})")
    if not table.metadata:
        table.metadata = [{} for _ in table.texts]
    if path.name.lower().endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
        table.metadata = [{k: _typed(v) for k, v in m.items()} for m in table.metadata]
    dup = first_duplicate(table.ids)
    if dup is not None:
        raise InputError(f"{path}: id {dup!r} appears on more than one row")
    return table
