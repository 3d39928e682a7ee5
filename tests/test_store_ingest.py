"""Documents read for `index`: CSV metadata typed without losing a character, and inputs with no
documents refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from embedcraft.errors import InputError
from embedcraft.store import read_documents
from embedcraft.store.ingest import DocumentBatches

# cell text -> the metadata value it must become (text unless the number prints back the same)
CELLS = {
    "42": 42,
    "-3": -3,
    "0": 0,
    "9223372036854775807": 2**63 - 1,
    "-9223372036854775808": -(2**63),
    "2.5": 2.5,
    "-0.125": -0.125,
    "1e-07": 1e-07,
    "007": "007",
    "+5": "+5",
    "-0": "-0",
    "1.10": "1.10",
    "1e5": "1e5",
    "1E5": "1E5",
    ".5": ".5",
    " 42": " 42",
    "12345678901234567890": "12345678901234567890",
    "9223372036854775808": "9223372036854775808",
    "1e400": "1e400",
    "-1e400": "-1e400",
    "nan": "nan",
    "inf": "inf",
    "1_000": "1_000",
    "\u0663": "\u0663",  # an Arabic-Indic digit: int() reads it, but it is text
    "9" * 5000: "9" * 5000,  # beyond int()'s 4,300-digit limit
}


def _csv(path: Path, cells: list[str]) -> Path:
    rows = ["id,text,value"] + [f'{i},doc {i},"{cell}"' for i, cell in enumerate(cells)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_csv_metadata_is_typed_only_when_nothing_is_lost(tmp_path: Path) -> None:
    """It made "007" 7.0, "12345678901234567890" 1.2345678901234567e+19, "1.10" 1.1."""
    table = read_documents(_csv(tmp_path / "docs.csv", list(CELLS)))
    got = [m["value"] for m in table.metadata]
    assert got == list(CELLS.values())
    for value, expected in zip(got, CELLS.values(), strict=True):
        assert type(value) is type(expected)
    json.dumps(table.metadata, allow_nan=False)  # "1e400" made the whole file fail to store


def test_tsv_and_gzip_tables_follow_the_same_rule(tmp_path: Path) -> None:
    tsv = tmp_path / "docs.tsv.gz"
    with gzip.open(tsv, "wt", encoding="utf-8") as fh:
        fh.write("id\ttext\tcode\tyear\n1\ta doc\t007\t2001\n")
    assert read_documents(tsv).metadata == [{"code": "007", "year": 2001}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("id,text\n", "no documents in this file"),
    ],
)
def test_a_file_without_documents_is_an_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "docs.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_documents(path)


def test_a_folder_of_empty_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("", encoding="utf-8")
    (tmp_path / "b.md").write_text("  \n", encoding="utf-8")
    with pytest.raises(InputError, match="every .txt or .md file here is empty"):
        read_documents(tmp_path)


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_documents_are_read_in_batches_and_checked_as_they_come(tmp_path: Path) -> None:
    rows = [{"id": f"d{i}", "text": f"text number {i}", "n": i} for i in range(5)]
    batches = DocumentBatches(_jsonl(tmp_path / "a.jsonl", rows), batch_rows=2)
    assert [b.ids for b in batches] == [["d0", "d1"], ["d2", "d3"], ["d4"]]
    assert batches.read == 5
    rows.append({"id": "d1", "text": "the same id again"})
    later = DocumentBatches(_jsonl(tmp_path / "b.jsonl", rows), batch_rows=2)
    seen = []
    with pytest.raises(InputError, match="id 'd1' appears on more than one row"):
        for batch in later:
            seen += batch.ids
    assert seen == ["d0", "d1", "d2", "d3"]  # the batches before the bad one came through


def test_indexing_a_file_streams_it_and_a_bad_row_says_what_was_indexed(tmp_path: Path) -> None:
    from embedcraft.store import Collection
    from embedcraft.store.ingest import index_documents

    rows = [{"id": f"d{i}", "text": f"cats and dogs {i}", "n": i} for i in range(7)]
    rows.insert(5, {"id": "bad", "text": "   "})
    source = _jsonl(tmp_path / "docs.jsonl", rows)
    with Collection(tmp_path / "c", encoders=["bm25"]) as col:
        with pytest.raises(InputError, match=r"empty text.*the 4 documents before it were indexed"):
            index_documents(col, DocumentBatches(source, batch_rows=2), batch_size=3)
        assert col.count() == 4 and col.search("dogs", k=10)  # what was indexed is searchable
        del rows[5]
        fixed = _jsonl(tmp_path / "docs.jsonl", rows)
        counts = index_documents(col, DocumentBatches(fixed, batch_rows=2), batch_size=3)
        assert (counts.added, counts.replaced, counts.unchanged) == (3, 0, 4)  # resumed
        assert col.count() == 7 and col.get("d6")[0].metadata == {"n": 6}
