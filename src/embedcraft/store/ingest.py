"""Documents to index, read from a file (CSV, TSV, JSONL, Parquet, TXT) or a folder of .txt/.md.

Table columns other than the id and text become metadata; a folder's files become documents
whose id is the path relative to the folder and whose metadata holds that path and the suffix.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..inputs.records import read_records
from ..io import TextTable

if TYPE_CHECKING:
    from ._interface import VectorCollection

__all__ = [
    "FOLDER_SUFFIXES",
    "DocumentBatches",
    "IndexCounts",
    "index_documents",
    "index_table",
    "read_documents",
    "typed_metadata",
]

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


class DocumentBatches:
    """Checked batches of documents from a file or folder, read as they are consumed.

    The first batch is read when the object is made, so a source that cannot be read at all
    fails before anything is written; later rows are checked as they come (an empty text, an
    id seen before), which lets a million-row file be indexed without holding it in memory.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        text_column: str | None = None,
        id_column: str | None = None,
        batch_rows: int = 50_000,
    ) -> None:
        self.path = Path(source)
        self.read = 0
        """Documents handed out so far."""
        self._batches = self._checked(text_column, id_column, batch_rows)
        self._first: TextTable | None = next(self._batches)

    def __iter__(self) -> Iterator[TextTable]:
        if self._first is not None:
            first, self._first = self._first, None
            self.read += len(first.texts)
            yield first
        for batch in self._batches:
            self.read += len(batch.texts)
            yield batch

    def _checked(
        self, text_column: str | None, id_column: str | None, batch_rows: int
    ) -> Iterator[TextTable]:
        path = self.path
        if path.is_dir():
            if text_column or id_column:
                raise InputError(f"{path} is a folder: --text-column/--id-column apply to tables")
            yield _read_folder(path)
            return
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_file() and path.stat().st_size == 0:
            raise InputError(f"{path}: the file is empty; there are no documents to index")
        seen: set[str] = set()
        for batch in read_records(
            path, column=text_column, id_column=id_column, batch_rows=batch_rows
        ):
            empty = [batch.ids[i] for i, text in enumerate(batch.texts) if not text.strip()]
            if empty:
                shown = ", ".join(repr(i) for i in empty[:5])
                raise InputError(f"{path}: {len(empty)} row(s) with an empty text (ids {shown})")
            for doc_id in batch.ids:
                if doc_id in seen:
                    raise InputError(f"{path}: id {doc_id!r} appears on more than one row")
                seen.add(doc_id)
            metadata = batch.metadata or [{} for _ in batch.texts]
            yield TextTable(batch.ids, batch.texts, typed_metadata(path, metadata))
        if not seen:
            raise InputError(f"{path}: no documents in this file (no rows with a text)")


def read_documents(
    source: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    id_column: str | None = None,
) -> TextTable:
    """Ids, texts and metadata from `source`, all of them (`DocumentBatches` streams them)."""
    table = TextTable([], [], [])
    for batch in DocumentBatches(source, text_column=text_column, id_column=id_column):
        table.ids += batch.ids
        table.texts += batch.texts
        table.metadata += batch.metadata
    return table


@dataclass
class IndexCounts:
    """What indexing did: documents added (new ids), replaced (text or metadata changed) and
    left as they were (stored with the same text and metadata: not encoded again)."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0

    @property
    def written(self) -> int:
        """Documents encoded and stored (added or replaced)."""
        return self.added + self.replaced

    def __iadd__(self, other: IndexCounts) -> IndexCounts:
        self.added += other.added
        self.replaced += other.replaced
        self.unchanged += other.unchanged
        return self


def index_table(
    collection: VectorCollection,
    table: TextTable,
    *,
    batch_size: int = 256,
    progress: bool = False,
    compare_metadata: bool = True,
) -> IndexCounts:
    """Upsert the documents of `table` that are not stored as they are (same id, text and
    metadata, or text alone without `compare_metadata`); the others are not encoded again."""
    metadata = table.metadata if compare_metadata else None
    states = collection.compare_stored(table.texts, table.ids, metadata)
    write = [i for i, state in enumerate(states) if state != "unchanged"]
    if write:
        collection.upsert(
            [table.texts[i] for i in write],
            [table.ids[i] for i in write],
            [table.metadata[i] for i in write] if table.metadata else None,
            batch_size=batch_size,
            progress=progress,
        )
    added = states.count("new")
    return IndexCounts(added, len(write) - added, len(states) - len(write))


def index_documents(
    collection: VectorCollection,
    batches: DocumentBatches,
    *,
    batch_size: int = 256,
    progress: bool = False,
) -> IndexCounts:
    """Index every document of `batches` into a collection, one read batch at a time, and
    bring its search indexes up to date once at the end.

    Documents stored with the same id, text and metadata are left alone (not encoded again),
    so indexing an unchanged file again writes nothing and an interrupted run resumes; a
    document whose text or metadata changed is encoded again and replaced. A bad row found
    part-way stops the run, saying how many documents were indexed before it.
    """
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="Indexing", unit=" docs")
    counts = IndexCounts()
    try:
        with collection.bulk(progress=progress):
            try:
                for batch in batches:
                    counts += index_table(collection, batch, batch_size=batch_size)
                    if bar is not None:
                        bar.update(len(batch.texts))
            except InputError as exc:
                done = counts.written + counts.unchanged
                if not done:
                    raise
                raise InputError(
                    f"{exc}; the {done:,} documents before it were indexed (indexing again "
                    "skips the documents already stored, so nothing is encoded twice)"
                ) from None
    finally:
        if bar is not None:
            bar.close()
    return counts
