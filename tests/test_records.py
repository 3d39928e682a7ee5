"""One record reader under every input path: read_texts, the training corpus and the Ray source
read the same files to the same ids and texts (embedcraft.inputs)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedcraft.distributed._source import Source
from embedcraft.errors import InputError
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
