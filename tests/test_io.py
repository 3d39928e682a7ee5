"""Reading texts from user files and writing vector files (embedcraft.io, embedcraft._files)."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from embedcraft._files import atomic_directory
from embedcraft.errors import InputError
from embedcraft.io import TextTable, read_texts, write_vectors


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders left beside the targets (names start with '.')."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------ read_texts
class TestReadTxt:
    def test_one_text_per_line_with_line_number_ids(self, tmp_path: Path) -> None:
        path = tmp_path / "t.txt"
        path.write_text("first line\nsecond, with comma\nthird\n", encoding="utf-8")
        table = read_texts(path)
        assert isinstance(table, TextTable)
        assert table.texts == ["first line", "second, with comma", "third"]
        assert table.ids == ["1", "2", "3"]
        assert len(table) == 3
        assert table.metadata == [{}, {}, {}]

    def test_empty_lines_in_the_middle_are_kept(self, tmp_path: Path) -> None:
        path = tmp_path / "t.txt"
        path.write_text("a\n\nb\n\n", encoding="utf-8")
        table = read_texts(path)
        # only the final newline is dropped: line 4 is a real (empty) line
        assert table.texts == ["a", "", "b", ""]
        assert table.ids == ["1", "2", "3", "4"]

    def test_no_final_newline_and_crlf(self, tmp_path: Path) -> None:
        path = tmp_path / "t.txt"
        path.write_bytes(b"one\r\ntwo\r\nthree")
        assert read_texts(path).texts == ["one", "two", "three"]

    def test_empty_file_has_no_texts(self, tmp_path: Path) -> None:
        path = tmp_path / "t.txt"
        path.write_bytes(b"")
        table = read_texts(path)
        assert table.texts == []
        assert table.ids == []

    def test_bom_is_stripped(self, tmp_path: Path) -> None:
        path = tmp_path / "t.txt"
        path.write_bytes("\ufeffhello\nworld\n".encode())
        assert read_texts(path).texts == ["hello", "world"]

    def test_gzip_and_uppercase_suffix(self, tmp_path: Path) -> None:
        path = tmp_path / "T.TXT.gz"
        path.write_bytes(gzip.compress(b"x y\nz\n"))
        assert read_texts(path).texts == ["x y", "z"]

    def test_accepts_str_path(self, tmp_path: Path) -> None:
        path = tmp_path / "t.txt"
        path.write_text("a\n", encoding="utf-8")
        assert read_texts(str(path)).texts == ["a"]


class TestReadCsv:
    def test_default_columns_and_metadata(self, tmp_path: Path) -> None:
        path = tmp_path / "d.csv"
        path.write_text(
            'id,title,text,lang\n7,T1,"hello, world",en\n8,T2,"line one\nline two",fr\n',
            encoding="utf-8",
        )
        table = read_texts(path)
        assert table.texts == ["hello, world", "line one\nline two"]
        assert table.ids == ["7", "8"]
        assert table.metadata == [{"title": "T1", "lang": "en"}, {"title": "T2", "lang": "fr"}]

    def test_explicit_column_and_id_column(self, tmp_path: Path) -> None:
        path = tmp_path / "d.csv"
        path.write_text("sku,review,text\ns1,good value,x\ns2,bad,y\n", encoding="utf-8")
        table = read_texts(path, column="review", id_column="sku")
        assert table.texts == ["good value", "bad"]
        assert table.ids == ["s1", "s2"]
        assert table.metadata == [{"text": "x"}, {"text": "y"}]

    def test_no_id_column_gives_row_numbers(self, tmp_path: Path) -> None:
        path = tmp_path / "d.csv"
        path.write_text("text,score\na,1\nb,2\nc,3\n", encoding="utf-8")
        table = read_texts(path)
        assert table.ids == ["1", "2", "3"]
        assert table.metadata == [{"score": "1"}, {"score": "2"}, {"score": "3"}]

    def test_text_column_priority(self, tmp_path: Path) -> None:
        # documented order: text, sentence, document, content, body (not the file's order)
        path = tmp_path / "d.csv"
        path.write_text("body,content,sentence\nB,C,S\n", encoding="utf-8")
        assert read_texts(path).texts == ["S"]
        path.write_text("body,content\nB,C\n", encoding="utf-8")
        assert read_texts(path).texts == ["C"]

    def test_id_column_detection(self, tmp_path: Path) -> None:
        path = tmp_path / "d.csv"
        path.write_text("doc_id,content\nX1,hello\n", encoding="utf-8")
        table = read_texts(path)
        assert table.ids == ["X1"]
        assert table.texts == ["hello"]

    def test_bom_is_stripped_from_header(self, tmp_path: Path) -> None:
        path = tmp_path / "d.csv"
        path.write_bytes("\ufefftext,id\nhi,a\n".encode())
        table = read_texts(path)
        assert table.texts == ["hi"]
        assert table.ids == ["a"]

    def test_tsv(self, tmp_path: Path) -> None:
        path = tmp_path / "d.tsv"
        path.write_text("id\ttext\nq1\tone, two\nq2\tthree\n", encoding="utf-8")
        table = read_texts(path)
        assert table.texts == ["one, two", "three"]
        assert table.ids == ["q1", "q2"]

    def test_tsv_has_no_quoting(self, tmp_path: Path) -> None:
        # like STS-B: a sentence may start with a quote mark, and it stays part of the text
        path = tmp_path / "q.tsv"
        path.write_text('id\ttext\n1\t"Quoted" start\n2\tan "unbalanced quote\n', encoding="utf-8")
        table = read_texts(path)
        assert table.texts == ['"Quoted" start', 'an "unbalanced quote']
        assert table.ids == ["1", "2"]

    def test_missing_explicit_column_names_the_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "d.csv"
        path.write_text("title,body\nt,b\n", encoding="utf-8")
        with pytest.raises(InputError) as info:
            read_texts(path, column="review")
        message = str(info.value)
        assert "review" in message
        assert "title" in message and "body" in message

    def test_missing_explicit_id_column(self, tmp_path: Path) -> None:
        path = tmp_path / "d.csv"
        path.write_text("text,key\na,k\n", encoding="utf-8")
        with pytest.raises(InputError, match="sku") as info:
            read_texts(path, id_column="sku")
        assert "key" in str(info.value)

    def test_no_text_column_names_the_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "d.csv"
        path.write_text("alpha,beta\n1,2\n", encoding="utf-8")
        with pytest.raises(InputError) as info:
            read_texts(path)
        message = str(info.value)
        assert "alpha" in message and "beta" in message
        assert "--column" in message


class TestReadJsonl:
    def test_objects(self, tmp_path: Path) -> None:
        path = _write_jsonl(
            tmp_path / "d.jsonl",
            [
                {"_id": "d1", "title": "T", "text": "first"},
                {"_id": "d2", "title": "U", "text": "second"},
            ],
        )
        table = read_texts(path)
        assert table.texts == ["first", "second"]
        assert table.ids == ["d1", "d2"]
        assert table.metadata == [{"title": "T"}, {"title": "U"}]

    def test_bare_strings(self, tmp_path: Path) -> None:
        path = _write_jsonl(tmp_path / "d.jsonl", ["alpha", "beta gamma"])
        table = read_texts(path)
        assert table.texts == ["alpha", "beta gamma"]
        assert table.ids == ["1", "2"]

    def test_blank_lines_are_skipped_and_numeric_ids_become_strings(self, tmp_path: Path) -> None:
        path = tmp_path / "d.jsonl"
        path.write_text('{"id": 5, "text": "a"}\n\n{"id": 6, "text": "b"}\n\n', encoding="utf-8")
        table = read_texts(path)
        assert table.texts == ["a", "b"]
        assert table.ids == ["5", "6"]

    def test_null_or_missing_text_is_empty(self, tmp_path: Path) -> None:
        path = _write_jsonl(tmp_path / "d.jsonl", [{"text": None}, {"other": 1}, {"text": "x"}])
        assert read_texts(path).texts == ["", "", "x"]

    def test_explicit_column(self, tmp_path: Path) -> None:
        path = _write_jsonl(
            tmp_path / "d.jsonl",
            [{"key": "k1", "question": "why?", "text": "no"}],
        )
        table = read_texts(path, column="question", id_column="key")
        assert table.texts == ["why?"]
        assert table.ids == ["k1"]
        assert table.metadata == [{"text": "no"}]

    def test_gzip(self, tmp_path: Path) -> None:
        path = tmp_path / "d.jsonl.gz"
        lines = "".join(json.dumps({"id": i, "text": f"t{i}"}) + "\n" for i in range(3))
        path.write_bytes(gzip.compress(lines.encode()))
        table = read_texts(path)
        assert table.texts == ["t0", "t1", "t2"]
        assert table.ids == ["0", "1", "2"]

    def test_bad_gzip(self, tmp_path: Path) -> None:
        path = tmp_path / "d.jsonl.gz"
        path.write_bytes(b"this is not gzip")
        with pytest.raises(InputError, match="gzip"):
            read_texts(path)

    def test_invalid_json_names_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "d.jsonl"
        path.write_text('{"text": "ok"}\n\n{"text": broken}\n', encoding="utf-8")
        with pytest.raises(InputError, match=r"line 3\b") as info:
            read_texts(path)
        assert str(path) in str(info.value)

    def test_non_object_line(self, tmp_path: Path) -> None:
        path = tmp_path / "d.jsonl"
        path.write_text('{"text": "ok"}\n[1, 2]\n', encoding="utf-8")
        with pytest.raises(InputError, match=r"line 2\b"):
            read_texts(path)

    def test_non_string_text_names_the_file_line(self, tmp_path: Path) -> None:
        # the third physical line holds the bad value; a blank line precedes it
        path = tmp_path / "d.jsonl"
        path.write_text('{"text": "ok"}\n\n{"text": 5}\n', encoding="utf-8")
        with pytest.raises(InputError, match="int") as info:
            read_texts(path)
        assert "line 3" in str(info.value)


class TestReadParquet:
    def test_default_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "d.parquet"
        pq.write_table(
            pa.table({"id": [10, 20], "text": ["alpha", None], "score": [0.5, 1.5]}), path
        )
        table = read_texts(path)
        assert table.texts == ["alpha", ""]
        assert table.ids == ["10", "20"]
        assert table.metadata == [{"score": 0.5}, {"score": 1.5}]

    def test_explicit_columns(self, tmp_path: Path) -> None:
        path = tmp_path / "d.parquet"
        pq.write_table(pa.table({"key": ["a", "b"], "sentence2": ["x y", "z"]}), path)
        table = read_texts(path, column="sentence2", id_column="key")
        assert table.texts == ["x y", "z"]
        assert table.ids == ["a", "b"]

    def test_missing_column(self, tmp_path: Path) -> None:
        path = tmp_path / "d.parquet"
        pq.write_table(pa.table({"key": ["a"], "body": ["x"]}), path)
        with pytest.raises(InputError) as info:
            read_texts(path, column="nope")
        assert "key" in str(info.value) and "body" in str(info.value)

    def test_non_text_column(self, tmp_path: Path) -> None:
        path = tmp_path / "d.parquet"
        pq.write_table(pa.table({"text": [1, 2]}), path)
        with pytest.raises(InputError, match="not text"):
            read_texts(path)

    def test_not_a_parquet_file(self, tmp_path: Path) -> None:
        path = tmp_path / "d.parquet"
        path.write_bytes(b"garbage bytes")
        with pytest.raises(InputError, match="Parquet"):
            read_texts(path)

    def test_missing_parquet_file(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="no such file"):
            read_texts(tmp_path / "absent.parquet")


class TestReadErrors:
    def test_invalid_utf8_names_line_and_column(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.txt"
        # line 3 is b"ab\xff": the bad byte is the third byte of line 3
        path.write_bytes(b"ok\nfine\nab\xffcd\nmore\n")
        with pytest.raises(InputError) as info:
            read_texts(path)
        message = str(info.value)
        assert "line 3" in message
        assert "column 3" in message
        assert "UTF-8" in message

    def test_invalid_utf8_in_csv(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.csv"
        path.write_bytes(b"text\nok\n\xe9t\xe9\n")
        with pytest.raises(InputError, match=r"line 3, column 1"):
            read_texts(path)

    def test_unsupported_suffix(self, tmp_path: Path) -> None:
        path = tmp_path / "d.xml"
        path.write_text("<a/>", encoding="utf-8")
        with pytest.raises(InputError, match="unsupported") as info:
            read_texts(path)
        assert ".txt" in str(info.value) and ".jsonl" in str(info.value)

    def test_no_suffix(self, tmp_path: Path) -> None:
        path = tmp_path / "README"
        path.write_text("x", encoding="utf-8")
        with pytest.raises(InputError, match="unsupported"):
            read_texts(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="no such file"):
            read_texts(tmp_path / "absent.txt")

    def test_folder(self, tmp_path: Path) -> None:
        folder = tmp_path / "dir.txt"
        folder.mkdir()
        with pytest.raises(InputError, match="folder"):
            read_texts(folder)


# ------------------------------------------------------------------------------ write_vectors
DENSE = np.array([[1.0, 0.0, 2.5], [0.0, -3.0, 0.5]], dtype=np.float32)
SPARSE = sp.csr_matrix(
    np.array([[0.0, 1.5, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 4.0, 0.0]]),
    dtype=np.float32,
)


class TestWriteVectors:
    def test_npy_dense_round_trip(self, tmp_path: Path) -> None:
        out = write_vectors(tmp_path / "v.npy", DENSE, ["a", "b"])
        assert out == tmp_path / "v.npy"
        loaded = np.load(out)
        np.testing.assert_array_equal(loaded, DENSE)
        assert loaded.dtype == np.float32
        assert _leftovers(tmp_path) == []

    def test_creates_missing_parent_folders(self, tmp_path: Path) -> None:
        out = write_vectors(tmp_path / "a" / "b" / "v.npy", DENSE)
        np.testing.assert_array_equal(np.load(out), DENSE)

    def test_npz_dense_with_ids(self, tmp_path: Path) -> None:
        out = write_vectors(tmp_path / "v.npz", DENSE, ["x", "y"])
        with np.load(out) as data:
            assert set(data.files) == {"vectors", "ids"}
            np.testing.assert_array_equal(data["vectors"], DENSE)
            assert data["ids"].tolist() == ["x", "y"]

    def test_npz_default_ids(self, tmp_path: Path) -> None:
        out = write_vectors(tmp_path / "v.npz", DENSE)
        with np.load(out) as data:
            ids = data["ids"].tolist()
        assert len(ids) == 2
        assert len(set(ids)) == 2

    def test_npz_sparse_loads_with_scipy(self, tmp_path: Path) -> None:
        out = write_vectors(tmp_path / "v.npz", SPARSE, ["d1", "d2", "d3"])
        loaded = sp.load_npz(out)
        assert loaded.shape == (3, 5)
        np.testing.assert_array_equal(loaded.toarray(), SPARSE.toarray())
        with np.load(out) as data:
            assert data["ids"].tolist() == ["d1", "d2", "d3"]

    def test_parquet_dense(self, tmp_path: Path) -> None:
        out = write_vectors(tmp_path / "v.parquet", DENSE.astype(np.float64), ["a", "b"])
        table = pq.read_table(out)
        assert table.column("id").to_pylist() == ["a", "b"]
        vector_type = table.schema.field("vector").type
        assert pa.types.is_fixed_size_list(vector_type)
        assert vector_type.list_size == 3
        np.testing.assert_array_equal(np.array(table.column("vector").to_pylist()), DENSE)

    def test_parquet_sparse(self, tmp_path: Path) -> None:
        out = write_vectors(tmp_path / "v.parquet", SPARSE, ["d1", "d2", "d3"])
        table = pq.read_table(out)
        assert table.num_rows == 3
        assert table.column("id").to_pylist() == ["d1", "d2", "d3"]
        indices = table.column("indices").to_pylist()
        values = table.column("values").to_pylist()
        assert indices[1] == [] and values[1] == []
        rebuilt = np.zeros((3, 5), dtype=np.float32)
        for row, (cols, vals) in enumerate(zip(indices, values, strict=True)):
            rebuilt[row, cols] = vals
        np.testing.assert_array_equal(rebuilt, SPARSE.toarray())

    def test_sparse_to_npy_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match=r"\.npz"):
            write_vectors(tmp_path / "v.npy", SPARSE)
        assert list(tmp_path.iterdir()) == []

    def test_ids_length_mismatch(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="3 ids for 2 vectors"):
            write_vectors(tmp_path / "v.npz", DENSE, ["a", "b", "c"])
        assert list(tmp_path.iterdir()) == []

    def test_unsupported_output_suffix(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="unsupported"):
            write_vectors(tmp_path / "v.csv", DENSE)
        assert list(tmp_path.iterdir()) == []


class _Exploding:
    """Looks like a (2, 3) dense matrix but fails when numpy converts it, mid-write."""

    shape = (2, 3)

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        raise RuntimeError("conversion failed")


class TestFailedWrites:
    @pytest.mark.parametrize("name", ["v.npy", "v.npz"])
    def test_failure_leaves_no_file(self, tmp_path: Path, name: str) -> None:
        with pytest.raises(RuntimeError, match="conversion failed"):
            write_vectors(tmp_path / name, _Exploding())
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("name", ["v.npy", "v.npz"])
    def test_failure_keeps_existing_file(self, tmp_path: Path, name: str) -> None:
        target = tmp_path / name
        target.write_bytes(b"precious old content")
        with pytest.raises(RuntimeError):
            write_vectors(target, _Exploding())
        assert target.read_bytes() == b"precious old content"
        assert [p.name for p in tmp_path.iterdir()] == [name]

    def test_partial_npy_write_leaves_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def half_save(file, arr, **kwargs):  # type: ignore[no-untyped-def]
            file.write(b"\x93NUMPY half a header")
            raise OSError("disk full")

        monkeypatch.setattr(np, "save", half_save)
        target = tmp_path / "v.npy"
        target.write_bytes(b"old")
        with pytest.raises(OSError, match="disk full"):
            write_vectors(target, DENSE)
        assert target.read_bytes() == b"old"
        assert _leftovers(tmp_path) == []

    def test_partial_sparse_npz_write_leaves_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def half_savez(file, **kwargs):  # type: ignore[no-untyped-def]
            file.write(b"PK\x03\x04 truncated")
            raise OSError("disk full")

        monkeypatch.setattr(np, "savez_compressed", half_savez)
        with pytest.raises(OSError, match="disk full"):
            write_vectors(tmp_path / "v.npz", SPARSE)
        assert list(tmp_path.iterdir()) == []

    def test_partial_parquet_write_leaves_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def half_write(table, where, **kwargs):  # type: ignore[no-untyped-def]
            Path(where).write_bytes(b"PAR1 truncated")
            raise OSError("disk full")

        monkeypatch.setattr(pq, "write_table", half_write)
        target = tmp_path / "v.parquet"
        target.write_bytes(b"old")
        with pytest.raises(OSError, match="disk full"):
            write_vectors(target, SPARSE)
        assert target.read_bytes() == b"old"
        assert _leftovers(tmp_path) == []

    def test_success_replaces_existing_file(self, tmp_path: Path) -> None:
        target = tmp_path / "v.npy"
        target.write_bytes(b"old")
        write_vectors(target, DENSE)
        np.testing.assert_array_equal(np.load(target), DENSE)
        assert [p.name for p in tmp_path.iterdir()] == ["v.npy"]


# ------------------------------------------------------------------------------ atomic_directory
class TestAtomicDirectory:
    def test_creates_new_folder(self, tmp_path: Path) -> None:
        target = tmp_path / "enc"
        with atomic_directory(target) as tmp:
            assert tmp != target
            assert tmp.parent == tmp_path
            (tmp / "a.txt").write_text("new", encoding="utf-8")
            assert not target.exists()  # nothing visible until the block succeeds
        assert (target / "a.txt").read_text(encoding="utf-8") == "new"
        assert [p.name for p in tmp_path.iterdir()] == ["enc"]

    def test_replaces_existing_folder_on_success(self, tmp_path: Path) -> None:
        target = tmp_path / "enc"
        target.mkdir()
        (target / "old.txt").write_text("old", encoding="utf-8")
        with atomic_directory(target) as tmp:
            (tmp / "new.txt").write_text("new", encoding="utf-8")
            # the old folder stays in place while the new one is written
            assert (target / "old.txt").read_text(encoding="utf-8") == "old"
        assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
        assert [p.name for p in tmp_path.iterdir()] == ["enc"]

    def test_failure_keeps_old_folder_and_removes_temp(self, tmp_path: Path) -> None:
        target = tmp_path / "enc"
        target.mkdir()
        (target / "old.txt").write_text("old", encoding="utf-8")
        with pytest.raises(ZeroDivisionError), atomic_directory(target) as tmp:
            (tmp / "new.txt").write_text("half", encoding="utf-8")
            _ = 1 / 0
        assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
        assert (target / "old.txt").read_text(encoding="utf-8") == "old"
        assert [p.name for p in tmp_path.iterdir()] == ["enc"]

    def test_failure_without_existing_folder_leaves_nothing(self, tmp_path: Path) -> None:
        target = tmp_path / "enc"
        with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
            (tmp / "x").write_text("x", encoding="utf-8")
            raise RuntimeError("boom")
        assert list(tmp_path.iterdir()) == []

    def test_refuses_to_replace_a_file(self, tmp_path: Path) -> None:
        target = tmp_path / "enc"
        target.write_text("a file", encoding="utf-8")
        with pytest.raises(FileExistsError), atomic_directory(target):
            pass
        assert target.read_text(encoding="utf-8") == "a file"
        assert [p.name for p in tmp_path.iterdir()] == ["enc"]


def test_read_then_write_keeps_ids_aligned(tmp_path: Path) -> None:
    """The ids read from a file travel with the rows into every vector format."""
    path = _write_jsonl(tmp_path / "d.jsonl", [{"id": "q", "text": "a"}, {"id": "r", "text": "b"}])
    table = read_texts(path)
    vectors = np.array([[1.0, math.pi], [2.0, 0.0]], dtype=np.float32)
    out = write_vectors(tmp_path / "v.npz", vectors, table.ids)
    with np.load(out) as data:
        assert data["ids"].tolist() == ["q", "r"]
        np.testing.assert_array_equal(data["vectors"], vectors)


def test_atomic_writes_get_the_mode_a_plain_create_gives(tmp_path: Path) -> None:
    import os
    import stat

    from embedcraft._files import atomic_file

    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "out.txt") as tmp:
            tmp.write_text("x", encoding="utf-8")
        with atomic_directory(tmp_path / "folder") as tmp:
            (tmp / "a").write_text("y", encoding="utf-8")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644  # not tempfile's 0600
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755  # not 0700


def test_several_text_columns_are_joined(tmp_path: Path) -> None:
    path = tmp_path / "news.tsv"
    path.write_text(
        "id\ttitle\tdescription\ttopic\n1\tRates rise\tThe bank moved.\tbiz\n2\tGoal!\t\tsport\n",
        encoding="utf-8",
    )
    table = read_texts(path, column="title,description")
    assert table.texts == ["Rates rise. The bank moved.", "Goal!"]
    assert table.metadata == [{"topic": "biz"}, {"topic": "sport"}]
    with pytest.raises(InputError, match="no column 'summary'"):
        read_texts(path, column="title,summary")


# ------------------------------------------------------------------------------ damaged inputs
# Issue 14: every reader fails on a damaged file with one of embedcraft's errors, naming the file.
def _gzip_with_bad_deflate(data: bytes) -> bytes:
    """gzip data whose first deflate block has the reserved block type: zlib.error on reading."""
    packed = bytearray(gzip.compress(data, mtime=0))
    packed[10] = 0xFF  # first byte after the 10-byte gzip header: BFINAL=1, BTYPE=11 (invalid)
    return bytes(packed)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("t.txt.gz", b"one\ntwo\n"),
        ("t.csv.gz", b"id,text\n1,one\n"),
        ("t.jsonl.gz", b'{"text": "one"}\n'),
    ],
)
def test_damaged_deflate_data_is_an_input_error(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(_gzip_with_bad_deflate(content))
    with pytest.raises(InputError, match=r"damaged gzip data \(.*invalid block type") as info:
        read_texts(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_is_an_input_error(tmp_path: Path) -> None:
    packed = gzip.compress(b"one\ntwo\n" * 100, mtime=0)
    path = tmp_path / "t.txt.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InputError, match="damaged gzip data"):
        read_texts(path)


def test_jsonl_integer_of_thousands_of_digits_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b", "n": ' + "9" * 5000 + "}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 2: unreadable JSON \(Exceeds the limit"):
        read_texts(path)


def test_jsonl_nested_too_deeply_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    deep = "[" * 1500 + "]" * 1500
    path.write_text('{"text": "a"}\n{"text": "b", "m": ' + deep + "}\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2: JSON nested too deeply"):
        read_texts(path)


def test_parquet_with_invalid_utf8_text_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    table = pa.table({"id": ["1", "2"], "text": ["fine", "MARK"]})
    pq.write_table(table, path, compression="none", use_dictionary=False, write_statistics=False)
    data = path.read_bytes()
    assert data.count(b"MARK") == 1
    path.write_bytes(data.replace(b"MARK", b"\xff\xfe\xfd\xfc"))
    with pytest.raises(InputError, match=r"row 2: column 'text' holds a value that cannot be read"):
        read_texts(path)


def test_a_plain_file_named_gz_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    path.write_text('{"text": "a"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="not a valid gzip file"):
        read_texts(path)


# ------------------------------------------------------------------------------ large CSV fields
# The csv module refuses fields over 128 KiB by default; every CSV/TSV reader shares one limit.
BIG = "word " * 200_000  # 1 MB


def test_read_texts_reads_a_field_of_a_megabyte(tmp_path: Path) -> None:
    csv_path = tmp_path / "t.csv"
    csv_path.write_text(f'id,text\n1,"{BIG}"\n2,short\n', encoding="utf-8")
    assert read_texts(csv_path).texts == [BIG, "short"]
    tsv_path = tmp_path / "t.tsv"
    tsv_path.write_text(f"id\ttext\n1\t{BIG}\n", encoding="utf-8")
    assert read_texts(tsv_path).texts == [BIG]


def test_every_csv_reader_reads_a_field_of_a_megabyte(tmp_path: Path) -> None:
    from embedcraft.distributed._source import Source
    from embedcraft.evaluate.retrieval import load_beir
    from embedcraft.evaluate.sts import read_sts_pairs
    from embedcraft.recommend.interactions import read_interactions
    from embedcraft.training.corpus import TokenStream

    sts = tmp_path / "sts.tsv"
    sts.write_text(f"sentence1\tsentence2\tscore\n{BIG}\tshort\t3.5\n", encoding="utf-8")
    first, second, scores = read_sts_pairs(sts)
    assert first == [BIG] and second == ["short"] and scores.tolist() == [3.5]

    corpus = tmp_path / "c.csv"
    corpus.write_text(f'text\n"{BIG}"\n', encoding="utf-8")
    assert sum(len(doc) for doc in TokenStream(corpus)) == 200_000

    shards = list(Source(corpus).shards(10))
    assert shards[0].texts == [BIG]

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n', encoding="utf-8")
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "b"}\n', encoding="utf-8")
    (beir / "qrels" / "test.tsv").write_text(f'q1\td1\t1\n"{BIG}"\td1\t1\n', encoding="utf-8")
    assert load_beir(beir).qrels == {"q1": {"d1": 1}}

    log = tmp_path / "ratings.csv"
    long_item = "i" * 300_000
    log.write_text(f'user,item,rating\n1,"{long_item}",4\n2,b,5\n', encoding="utf-8")
    assert read_interactions(log).items.tolist() == [long_item, "b"]
