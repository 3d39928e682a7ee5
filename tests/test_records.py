"""One record reader under every input path: read_texts, the training corpus and the Ray source
read the same files to the same ids and texts (embedcraft.inputs)."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedcraft.distributed._source import Source
from embedcraft.errors import InputError
from embedcraft.inputs import RecordBatch, file_format, read_records, split_columns
from embedcraft.io import read_texts
from embedcraft.training.corpus import TokenStream

ROWS = [
    ("a1", "Rates rise", "The bank moved, again."),
    ("a2", "Goal!", ""),
    ("a3", "", "Only a description"),
    ("a4", "Ünïcode “quotes”", 'x "y" z'),
]
JOINED = [
    "Rates rise. The bank moved, again.",
    "Goal!",
    "Only a description",
    'Ünïcode “quotes”. x "y" z',
]
HEADER = ["key", "title", "description", "topic"]


def _table_bytes(kind: str) -> bytes:
    records = [[k, t, d, f"t{i}"] for i, (k, t, d) in enumerate(ROWS)]
    if kind == ".txt":
        return "".join(text + "\n" for text in JOINED).encode()
    if kind == ".tsv":
        return "".join("\t".join(r) + "\n" for r in [HEADER, *records]).encode()
    if kind == ".jsonl":
        lines = [json.dumps(dict(zip(HEADER, r, strict=True))) for r in records]
        return "\n".join(lines).encode() + b"\n"
    out: list[str] = []

    class _Lines:
        def write(self, line: str) -> None:
            out.append(line)

    csv.writer(_Lines()).writerows([HEADER, *records])
    return "".join(out).encode()


def _write(folder: Path, name: str) -> Path:
    path = folder / name
    if name.endswith(".parquet"):
        columns = list(zip(*[[k, t, d, f"t{i}"] for i, (k, t, d) in enumerate(ROWS)], strict=True))
        pq.write_table(pa.table(dict(zip(HEADER, map(list, columns), strict=True))), path)
        return path
    kind = "." + name.removesuffix(".gz").rsplit(".", 1)[-1]
    data = _table_bytes(kind)
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


FILES = [
    "t.txt",
    "t.csv",
    "t.tsv",
    "t.jsonl",
    "t.parquet",
    "t.txt.gz",
    "t.csv.gz",
    "t.tsv.gz",
    "t.jsonl.gz",
]


@pytest.mark.parametrize("name", FILES)
def test_every_reader_gives_the_same_ids_and_joined_texts(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name)
    column, id_column = ("title,description", "key") if ".txt" not in name else (None, None)
    table = read_texts(path, column=column, id_column=id_column)
    assert table.texts == JOINED
    ids = [k for k, _, _ in ROWS] if column else ["1", "2", "3", "4"]
    assert table.ids == ids
    assert list(TokenStream(path, column=column).texts()) == JOINED
    shards = list(Source(path, column=column, id_column=id_column).shards(3, metadata=True))
    assert [s.index for s in shards] == [0, 1]
    assert [t for s in shards for t in s.texts] == JOINED
    assert [i for s in shards for i in s.ids] == ids
    assert [m for s in shards for m in s.metadata] == table.metadata


def test_the_source_names_a_missing_joined_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv")
    with pytest.raises(InputError, match="no column 'summary'; columns are key, title"):
        Source(path, column="title,summary")


def test_the_source_reads_a_folder_of_txt_files_numbering_rows_across_files(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("one\ntwo\n", encoding="utf-8")
    (folder / "b.txt.gz").write_bytes(gzip.compress(b"three\nfour\nfive\n"))
    (folder / ".hidden.txt").write_text("not data\n", encoding="utf-8")
    (shard,) = Source(folder).shards(10)
    assert shard.texts == ["one", "two", "three", "four", "five"]
    assert shard.ids == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    "read",
    [
        lambda path: read_texts(path),
        lambda path: list(TokenStream(path)),
        lambda path: list(Source(path).shards(10)),
    ],
    ids=["read_texts", "TokenStream", "Source"],
)
def test_every_reader_gives_the_same_error(tmp_path: Path, read: Callable[[Path], object]) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "ok"}\n\n{"text": 5}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"t\.jsonl, line 3: column 'text' is int, not text$"):
        read(path)
    path.write_bytes(b'{"text": "ok"}\n{"text": "b\xffd"}\n')
    with pytest.raises(InputError, match=r"t\.jsonl, line 2, column 12: invalid UTF-8 \(byte 0xff"):
        read(path)
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,text\n1,ok\n2,a lone\rreturn\n")
    with pytest.raises(InputError, match=r"t\.csv, line 3: new-line character seen in unquoted"):
        read(path)


# ------------------------------------------------------------------------------ read_records
def test_records_come_in_batches_numbered_from_first_row(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}", "n": i}) + "\n" for i in range(10)))
    batches = list(read_records(path, batch_rows=4, first_row=101))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert isinstance(batches[0], RecordBatch)
    assert [i for b in batches for i in b.ids] == [str(i) for i in range(101, 111)]
    assert [t for b in batches for t in b.texts] == [f"t{i}" for i in range(10)]
    assert batches[2].metadata == [{"n": 8}, {"n": 9}]
    bare = list(read_records(path, metadata=False))
    assert bare[0].metadata == [{}] * 10


@pytest.mark.parametrize(
    ("name", "good", "bad", "message"),
    [
        ("t.txt", "line {}\n", b"bad \xff\n", r"line 8, column 5: invalid UTF-8"),
        ("t.csv", "{},x\n", b"8,a\rb\n", r"line 9: new-line character seen in unquoted field"),
        ("t.jsonl", '{{"text": "{}"}}\n', b"{broken\n", r"line 8: invalid JSON"),
    ],
)
def test_records_stream_batches_before_the_end_is_read(
    tmp_path: Path, name: str, good: str, bad: bytes, message: str
) -> None:
    """A damaged end only fails once reached: the first batches come before it is read."""
    header = "text,other\n" if name.endswith(".csv") else ""
    body = header + "".join(good.format(i) for i in range(7))
    path = tmp_path / name
    path.write_bytes(body.encode() + bad)
    batches = read_records(path, batch_rows=3)
    first = next(batches)
    assert len(first) == 3
    with pytest.raises(InputError, match=message):
        list(batches)


def test_jsonl_columns_are_the_keys_of_the_first_batch(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rows = [{"body": "a"}, {"body": "b", "id": "x"}, {"text": "c", "body": "d"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    # the first batch knows only "body" (and "id"): later rows are read by those columns
    (batch,) = list(read_records(path, batch_rows=2))[1:]
    assert (batch.texts, batch.ids, batch.metadata) == (["d"], ["3"], [{"text": "c"}])
    assert read_texts(path).texts == ["", "", "c"]  # one batch: "text" is known


def test_empty_files_hold_no_records_unless_their_header_lacks_the_column(
    tmp_path: Path,
) -> None:
    for name in ("t.txt", "t.csv", "t.tsv", "t.jsonl", "t.jsonl.gz"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"")
        assert list(read_records(path)) == [], name
        assert len(read_texts(path)) == 0
    path = tmp_path / "header.csv"
    path.write_text("id,title\n", encoding="utf-8")
    with pytest.raises(InputError, match="no text column found; pass --column"):
        list(read_records(path))
    assert list(read_records(path, column="title")) == []


def test_a_null_id_is_the_row_number(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n{"id": null, "text": "y"}\n', encoding="utf-8")
    assert read_texts(path).ids == ["a", "2"]


def test_files_on_a_pyarrow_filesystem(tmp_path: Path) -> None:
    import pyarrow.fs as pafs

    for name in FILES:
        _write(tmp_path, name)
    # a filesystem that is not the local one is read through its own streams
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    for name in FILES:
        column = None if ".txt" in name else "title,description"
        batches = list(read_records(name, column=column, filesystem=fs, batch_rows=3))
        assert [t for b in batches for t in b.texts] == JOINED, name
    with pytest.raises(InputError, match="absent.csv: no such file"):
        list(read_records("absent.csv", filesystem=fs))
    with pytest.raises(InputError, match="absent.parquet: no such file"):
        list(read_records("absent.parquet", filesystem=fs))


def test_unsupported_formats_are_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unsupported file type \.xml; use one of \.txt, \.csv"):
        read_records(tmp_path / "absent.xml")  # before any reading: the file need not exist
    assert file_format("A.JSONL.GZ") == ".jsonl" and file_format("README") == ""
    assert split_columns(" title , description,") == ["title", "description"]


def test_the_public_names() -> None:
    import embedcraft.inputs as inputs
    import embedcraft.io as io

    assert all(hasattr(inputs, name) for name in inputs.__all__)
    assert inputs.TEXT_COLUMNS == ("text", "sentence", "document", "content", "body")
    assert inputs.ID_COLUMNS == ("id", "_id", "doc_id", "docid")
    for name in ("TEXT_FORMATS", "csv_dict_reader", "parquet_rows"):  # io keeps its names
        assert getattr(io, name) is getattr(inputs, name)
    assert set(io.__all__) >= {"TEXT_FORMATS", "VECTOR_FORMATS", "TextTable", "read_texts"}
