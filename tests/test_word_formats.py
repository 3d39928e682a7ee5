"""Word-vector files: gensim interoperability, gzip, limits, format detection and clear errors."""

from __future__ import annotations

import gzip
import logging
import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedcraft.errors import CorruptFileError, InputError
from embedcraft.words import formats
from embedcraft.words.formats import (
    detect_format,
    read_word_vectors,
    write_word_vectors,
)

WORDS = ["the", "café", "日本", "naïve", "x", "Ünïcödé", "🙂", "end"]


def _vectors(n: int = len(WORDS), dim: int = 7, seed: int = 0) -> np.ndarray:
    """Random float32 vectors with awkward values mixed in: zeros, integers, tiny and huge."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v[0, 0], v[0, 1], v[0, 2] = 0.0, -0.0, -1.0
    v[1, 0], v[1, 1], v[1, 2] = 1e-20, 3.4e38, -2.5e-7
    v[2, :] = rng.standard_normal(dim).astype(np.float32) * 1e6
    return v


def _write(path: Path, content: str | bytes) -> Path:
    """Write test content as UTF-8 text or raw bytes."""
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def _binary(
    words: list[str], vectors: np.ndarray, newline: bool, header: str | None = None
) -> bytes:
    """Build a word2vec binary file by hand, with or without a newline after each vector."""
    n, dim = vectors.shape
    out = [(header if header is not None else f"{n} {dim}\n").encode()]
    for word, row in zip(words, vectors, strict=True):
        out.append(word.encode() + b" " + row.astype("<f4").tobytes() + (b"\n" if newline else b""))
    return b"".join(out)


def _text(n: int, dim: int = 3, header: bool = True) -> list[str]:
    """Lines of a small valid text file: words w1..wn with simple values."""
    lines = [f"{n} {dim}"] if header else []
    lines += [f"w{i} " + " ".join(f"{i}.{j}" for j in range(dim)) for i in range(1, n + 1)]
    return lines


# ---------------------------------------------------------------------------------------------
# gensim interoperability

gensim_models = pytest.importorskip("gensim.models")


def _kv(words: list[str], vectors: np.ndarray):  # -> gensim KeyedVectors
    """Gensim KeyedVectors holding `words` and `vectors` in that order."""
    kv = gensim_models.KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(words, vectors)
    return kv


@pytest.fixture(autouse=True)
def _quiet_gensim(caplog: pytest.LogCaptureFixture) -> None:
    """Gensim logs a warning for every save of vectors without counts; keep the output clean."""
    caplog.set_level(logging.ERROR, logger="gensim")


@pytest.mark.parametrize(
    ("fmt", "binary", "no_header"),
    [("word2vec", False, False), ("word2vec-binary", True, False), ("glove", False, True)],
)
def test_gensim_reads_what_we_write(
    tmp_path: Path, fmt: formats.WordFileFormat, binary: bool, no_header: bool
) -> None:
    vectors = _vectors()
    path = tmp_path / "out.txt"
    write_word_vectors(path, WORDS, vectors, format=fmt)
    kv = gensim_models.KeyedVectors.load_word2vec_format(path, binary=binary, no_header=no_header)
    assert kv.index_to_key == WORDS
    assert kv.vectors.dtype == np.float32
    np.testing.assert_array_equal(kv.vectors, vectors)  # exact, text included (shortest repr)


@pytest.mark.parametrize(
    ("fmt", "binary", "header"),
    [("word2vec", False, True), ("word2vec-binary", True, True), ("glove", False, False)],
)
def test_we_read_what_gensim_writes(
    tmp_path: Path, fmt: formats.WordFileFormat, binary: bool, header: bool
) -> None:
    vectors = _vectors()
    path = tmp_path / "gensim.out"
    _kv(WORDS, vectors).save_word2vec_format(path, binary=binary, write_header=header)
    words, read = read_word_vectors(path, format=fmt)
    assert words == WORDS
    assert read.dtype == np.float32 and read.shape == vectors.shape
    if binary:
        np.testing.assert_array_equal(read, vectors)
    else:
        np.testing.assert_allclose(read, vectors, rtol=1e-6, atol=0)
    assert detect_format(path) == fmt


def test_our_text_matches_gensim_text_except_integral_values(tmp_path: Path) -> None:
    vectors = np.random.default_rng(1).standard_normal((20, 5)).astype(np.float32)
    words = [f"w{i}" for i in range(20)]
    ours, theirs = tmp_path / "ours.txt", tmp_path / "theirs.txt"
    write_word_vectors(ours, words, vectors)
    _kv(words, vectors).save_word2vec_format(theirs, binary=False)
    assert ours.read_text("utf-8") == theirs.read_text("utf-8")


def test_text_round_trip_is_exact(tmp_path: Path) -> None:
    vectors = _vectors(n=300, dim=16, seed=3)
    words = [f"w{i}" for i in range(300)]
    for fmt in ("word2vec", "glove", "fasttext", "word2vec-binary"):
        path = tmp_path / f"v.{fmt}"
        write_word_vectors(path, words, vectors, format=fmt)
        read_words, read = read_word_vectors(path, format=fmt)
        assert read_words == words
        np.testing.assert_array_equal(read, vectors)
        np.testing.assert_array_equal(np.signbit(read), np.signbit(vectors))  # -0.0 kept


# ---------------------------------------------------------------------------------------------
# binary layout, gzip, limit, detection


@pytest.mark.parametrize("newline", [True, False])
def test_binary_with_and_without_newline(tmp_path: Path, newline: bool) -> None:
    vectors = _vectors()
    path = _write(tmp_path / "v.bin", _binary(WORDS, vectors, newline))
    words, read = read_word_vectors(path)
    assert words == WORDS
    np.testing.assert_array_equal(read, vectors)


def test_binary_written_like_the_c_tool(tmp_path: Path) -> None:
    vectors = _vectors()
    path = tmp_path / "v.bin"
    write_word_vectors(path, WORDS, vectors, format="word2vec-binary")
    assert path.read_bytes() == _binary(WORDS, vectors, newline=True)


def test_gzip_text_and_binary(tmp_path: Path) -> None:
    vectors = _vectors()
    for name, fmt in [("v.txt.gz", "word2vec"), ("v.bin.gz", "word2vec-binary"), ("g.gz", "glove")]:
        path = tmp_path / name
        write_word_vectors(path, WORDS, vectors, format=fmt)
        assert path.read_bytes()[:2] == b"\x1f\x8b"
        assert detect_format(path) == fmt
        words, read = read_word_vectors(path)
        assert words == WORDS
        np.testing.assert_array_equal(read, vectors)
    # gzip is recognized by content, and gensim reads our .gz too
    plain = gzip.decompress((tmp_path / "v.txt.gz").read_bytes())
    assert plain.startswith(f"{len(WORDS)} 7\n".encode())
    kv = gensim_models.KeyedVectors.load_word2vec_format(tmp_path / "v.txt.gz")
    assert kv.index_to_key == WORDS


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt.gz", tmp_path / "b.txt.gz"
    write_word_vectors(a, WORDS, _vectors())
    write_word_vectors(b, WORDS, _vectors())
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("fmt", ["word2vec", "word2vec-binary", "glove"])
def test_limit(tmp_path: Path, fmt: formats.WordFileFormat) -> None:
    vectors = _vectors()
    path = tmp_path / "v"
    write_word_vectors(path, WORDS, vectors, format=fmt)
    words, read = read_word_vectors(path, format=fmt, limit=3)
    assert words == WORDS[:3]
    np.testing.assert_array_equal(read, vectors[:3])
    words, read = read_word_vectors(path, format=fmt, limit=0)
    assert words == [] and read.shape == (0, 7) and read.dtype == np.float32
    words, read = read_word_vectors(path, format=fmt, limit=100)
    assert words == WORDS


def test_limit_stops_before_damage(tmp_path: Path) -> None:
    lines = _text(5)
    lines[5] = "w5 oops 1 2"
    path = _write(tmp_path / "v.txt", "\n".join(lines))
    assert read_word_vectors(path, limit=4)[0] == ["w1", "w2", "w3", "w4"]
    with pytest.raises(CorruptFileError, match="line 6"):
        read_word_vectors(path)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_limit(tmp_path: Path, bad: object) -> None:
    path = _write(tmp_path / "v.txt", "\n".join(_text(2)))
    with pytest.raises(InputError, match="limit"):
        read_word_vectors(path, limit=bad)  # type: ignore[arg-type]


def test_detect_format(tmp_path: Path) -> None:
    w2v = "\n".join(_text(2)) + "\n"
    glove = "\n".join(_text(2, header=False)) + "\n"
    binary = _binary(["a", "b"], np.ones((2, 3), dtype=np.float32), newline=False)
    cases: list[tuple[str, str | bytes, str]] = [
        ("x.bin", w2v, "word2vec-binary"),  # the suffix decides
        ("x.BIN.gz", gzip.compress(binary), "word2vec-binary"),
        ("x.vec", w2v, "fasttext"),
        ("x.vec.gz", gzip.compress(w2v.encode()), "fasttext"),
        ("x.txt", w2v, "word2vec"),
        ("x.txt", glove, "glove"),
        ("glove.6B.50d.txt", glove, "glove"),
        ("x.txt.gz", gzip.compress(w2v.encode()), "word2vec"),
        ("x.gz", gzip.compress(glove.encode()), "glove"),
        ("noext", binary, "word2vec-binary"),  # header, then bytes that are not text
        ("x.txt", binary, "word2vec-binary"),
        ("noext", w2v, "word2vec"),
        ("one_line.txt", "2 3", "word2vec"),
    ]
    for name, content, expected in cases:
        path = _write(tmp_path / name, content)
        assert detect_format(path) == expected, name
        path.unlink()


def test_detect_format_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        detect_format(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="no such file"):
        read_word_vectors(tmp_path / "missing.bin")
    with pytest.raises(CorruptFileError, match="empty"):
        detect_format(_write(tmp_path / "empty.txt", ""))
    with pytest.raises(InputError, match="folder"):
        read_word_vectors(tmp_path, format="glove")
    with pytest.raises(InputError, match="unknown word-vector format 'csv'"):
        read_word_vectors(tmp_path / "x.txt", format="csv")  # type: ignore[arg-type]


def test_tolerated_text_variants(tmp_path: Path) -> None:
    # CRLF, a byte-order mark, trailing spaces (the C tool's text output), blank lines at the end
    content = "\ufeff2 3\r\nw1 1 2 3 \r\nw2 4  5\t6\r\n\r\n\n"
    words, read = read_word_vectors(_write(tmp_path / "v.txt", content))
    assert words == ["w1", "w2"]
    np.testing.assert_array_equal(read, [[1, 2, 3], [4, 5, 6]])
    # a GloVe file without a final newline; a word with a non-breaking space inside is kept
    words, _ = read_word_vectors(_write(tmp_path / "g.txt", "a\xa0b 1 2\nc 3 4"), format="glove")
    assert words == ["a\xa0b", "c"]


def test_many_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files far larger than one read: boundaries must not lose lines or shift line numbers."""
    monkeypatch.setattr(formats, "_CHUNK_BYTES", 64)
    monkeypatch.setattr(formats, "_WRITE_ROWS", 7)
    words = [f"wörd{i}" if i % 3 else f"日本{i}" for i in range(200)]  # multi-byte at boundaries
    vectors = _vectors(n=200, dim=5, seed=2)
    for fmt in ("word2vec", "glove", "word2vec-binary"):
        path = tmp_path / f"big.{fmt}"
        write_word_vectors(path, words, vectors, format=fmt)
        read_words, read = read_word_vectors(path, format=fmt)
        assert read_words == words
        np.testing.assert_array_equal(read, vectors)
        assert read_word_vectors(path, format=fmt, limit=123)[0] == words[:123]
    lines = _text(200)
    lines[150] = lines[150].replace("150.1", "abc")
    with pytest.raises(CorruptFileError, match=re.escape("line 151: 'abc' is not a number")):
        read_word_vectors(_write(tmp_path / "bad.txt", "\n".join(lines)))
    lines = _text(200)
    lines[180] = "w12 1 2 3"
    with pytest.raises(
        CorruptFileError, match=re.escape("line 181: 'w12' already appeared on line 13")
    ):
        read_word_vectors(_write(tmp_path / "dup.txt", "\n".join(lines)))
    binary = _binary([*words[:150], "wörd4", *words[151:]], vectors, newline=False)
    with pytest.raises(
        CorruptFileError, match=re.escape("word #151 'wörd4' already appeared as word #5")
    ):
        read_word_vectors(_write(tmp_path / "dup.bin", binary))


# ---------------------------------------------------------------------------------------------
# errors in text files


@pytest.mark.parametrize("fmt", ["word2vec", "glove", "word2vec-binary"])
def test_empty_file(tmp_path: Path, fmt: formats.WordFileFormat) -> None:
    for content in ("", "\n\n  \n"):
        path = _write(tmp_path / "empty", content)
        with pytest.raises(CorruptFileError, match=re.escape(f"{path}: the file is empty")):
            read_word_vectors(path, format=fmt)


@pytest.mark.parametrize(
    ("header", "hint"),
    [("abc def", ""), ("3", ""), ("0 5", ""), ("-1 5", ""), ("3 2.5", ""), ("w 1 2 3", "glove")],
)
def test_bad_header(tmp_path: Path, header: str, hint: str) -> None:
    path = _write(tmp_path / "v.txt", header + "\nw1 1 2 3\n")
    with pytest.raises(
        CorruptFileError, match=re.escape(f"{path}, line 1: bad header {header!r}")
    ) as info:
        read_word_vectors(path, format="word2vec")
    assert "two positive integers" in str(info.value)
    assert hint in str(info.value)


def test_truncated_and_extra_lines(tmp_path: Path) -> None:
    lines = _text(3)
    path = _write(tmp_path / "short.txt", "\n".join(["5 3", *lines[1:]]) + "\n")
    with pytest.raises(
        CorruptFileError, match=re.escape("truncated: the header says 5 vectors, found 3")
    ):
        read_word_vectors(path)
    assert read_word_vectors(path, limit=3)[0] == ["w1", "w2", "w3"]  # the limit is met
    path = _write(tmp_path / "long.txt", "\n".join(["2 3", *lines[1:]]) + "\n")
    with pytest.raises(
        CorruptFileError, match=re.escape("line 4: the header says 2 vectors, but more lines")
    ):
        read_word_vectors(path)
    assert read_word_vectors(path, limit=2)[0] == ["w1", "w2"]


def test_wrong_width(tmp_path: Path) -> None:
    lines = _text(5)
    lines[3] = "w3 1 2"
    path = _write(tmp_path / "v.txt", "\n".join(lines))
    with pytest.raises(
        CorruptFileError, match=re.escape(f"{path}, line 4 has 2 values after the word 'w3'")
    ) as info:
        read_word_vectors(path)
    assert "expected 3 (the header's dimension)" in str(info.value)
    glove = _text(5, header=False)
    glove[2] += " 9"
    path = _write(tmp_path / "g.txt", "\n".join(glove))
    with pytest.raises(CorruptFileError, match=re.escape("line 3 has 4 values")) as info:
        read_word_vectors(path, format="glove")
    assert "expected 3 (the width of line 1)" in str(info.value)


def test_glove_reader_on_a_file_with_a_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.txt", "\n".join(_text(3)))
    with pytest.raises(CorruptFileError, match="line 2 has 3 values") as info:
        read_word_vectors(path, format="glove")
    assert "line 1 looks like a word2vec header" in str(info.value)


def test_not_a_number(tmp_path: Path) -> None:
    lines = _text(20)
    lines[16] = "w16 0.5 abc 1"
    path = _write(tmp_path / "v.txt", "\n".join(lines))
    with pytest.raises(
        CorruptFileError, match=re.escape(f"{path}, line 17: 'abc' is not a number")
    ):
        read_word_vectors(path)
    for bad in ("1_0", "0x1p3", "1,5", "--1", "١"):
        lines[16] = f"w16 0.5 {bad} 1"
        path = _write(tmp_path / "v.txt", "\n".join(lines))
        with pytest.raises(CorruptFileError, match=re.escape(f"line 17: {bad!r} is not a number")):
            read_word_vectors(path)


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity", "1e39"])
def test_non_finite_values_are_refused(tmp_path: Path, bad: str) -> None:
    lines = _text(4)
    lines[2] = f"w2 1 {bad} 3"
    path = _write(tmp_path / "v.txt", "\n".join(lines))
    with pytest.raises(
        CorruptFileError, match=re.escape(f"line 3: {bad!r} is not a finite float32 number")
    ):
        read_word_vectors(path)


def test_duplicate_word(tmp_path: Path) -> None:
    lines = _text(45)
    lines[39] = "w11 1 2 3"
    path = _write(tmp_path / "v.txt", "\n".join(lines))
    with pytest.raises(
        CorruptFileError, match=re.escape(f"{path}, line 40: 'w11' already appeared on line 12")
    ):
        read_word_vectors(path)


def test_blank_line_and_bad_separators(tmp_path: Path) -> None:
    lines = _text(4)
    path = _write(tmp_path / "v.txt", "\n".join([*lines[:3], "", *lines[3:]]))
    with pytest.raises(CorruptFileError, match=re.escape("line 4 is empty")):
        read_word_vectors(path)
    path = _write(tmp_path / "g.txt", "a 1 2\n b 3 4\n")
    with pytest.raises(CorruptFileError, match=re.escape("line 2 starts with a space")):
        read_word_vectors(path, format="glove")
    path = _write(tmp_path / "t.txt", "a\t1 2\nb\t3 4\n")
    with pytest.raises(
        CorruptFileError, match=re.escape("line 1: the word 'a\\t1' contains a tab")
    ):
        read_word_vectors(path, format="glove")
    path = _write(tmp_path / "w.txt", "a\nb 1\n")
    with pytest.raises(CorruptFileError, match=re.escape("line 1: no values after the word 'a'")):
        read_word_vectors(path, format="glove")


def test_text_not_utf8(tmp_path: Path) -> None:
    lines = [line.encode() for line in _text(6)]
    lines[5] = b"caf\xe9 1 2 3"  # Latin-1
    path = _write(tmp_path / "v.txt", b"\n".join(lines))
    with pytest.raises(CorruptFileError, match=re.escape(f"{path}, line 6: not valid UTF-8")):
        read_word_vectors(path)
    binary = _write(tmp_path / "v.bin2", _binary(["a"], np.full((1, 4), -0.7, np.float32), True))
    with pytest.raises(CorruptFileError, match="line 2: not valid UTF-8") as info:
        read_word_vectors(binary, format="word2vec")
    assert "format='word2vec-binary'" in str(info.value)


def test_damaged_gzip(tmp_path: Path) -> None:
    data = gzip.compress(("\n".join(_text(500)) + "\n").encode())
    path = _write(tmp_path / "v.txt.gz", data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="damaged gzip data"):
        read_word_vectors(path)


# ---------------------------------------------------------------------------------------------
# errors in binary files


def test_binary_truncated_vector(tmp_path: Path) -> None:
    vectors = _vectors(n=3, dim=4)
    data = _binary(["a", "b", "foo"], vectors, newline=True)
    path = _write(tmp_path / "v.bin", data[:-6])
    with pytest.raises(
        CorruptFileError,
        match=re.escape(f"{path}: unexpected end of file in the vector of word #3 'foo'"),
    ):
        read_word_vectors(path)
    path = _write(tmp_path / "w.bin", data[: data.index(b"foo") + 2])
    with pytest.raises(CorruptFileError, match=re.escape("unexpected end of file in word #3")):
        read_word_vectors(path)
    path = _write(tmp_path / "x.bin", _binary(["a", "b"], vectors[:2], True, header="5 4\n"))
    with pytest.raises(
        CorruptFileError, match=re.escape("truncated: the header says 5 vectors, found 2")
    ):
        read_word_vectors(path)
    assert read_word_vectors(path, limit=2)[0] == ["a", "b"]


def test_binary_extra_data(tmp_path: Path) -> None:
    vectors = _vectors(n=3, dim=4)
    path = _write(tmp_path / "v.bin", _binary(["a", "b", "c"], vectors, True, header="2 4\n"))
    with pytest.raises(CorruptFileError, match=re.escape("extra data after the 2 vectors")):
        read_word_vectors(path)
    assert read_word_vectors(path, limit=2)[0] == ["a", "b"]


def test_binary_invalid_utf8_word(tmp_path: Path) -> None:
    vectors = _vectors(n=3, dim=4)
    data = _binary(["a", "日本", "c"], vectors, newline=True)
    cut = "日本".encode()[:4]  # a word cut inside a character, as the C tool may do
    path = _write(tmp_path / "v.bin", data.replace("日本".encode(), cut))
    with pytest.raises(CorruptFileError, match=re.escape(f"{path}: word #2 is not valid UTF-8")):
        read_word_vectors(path)


def test_binary_duplicate_and_bad_header(tmp_path: Path) -> None:
    vectors = _vectors(n=3, dim=4)
    path = _write(tmp_path / "v.bin", _binary(["a", "b", "a"], vectors, newline=False))
    with pytest.raises(
        CorruptFileError, match=re.escape("word #3 'a' already appeared as word #1")
    ):
        read_word_vectors(path)
    path = _write(tmp_path / "h.bin", _binary(["a"], vectors[:1], True, header="x y\n"))
    with pytest.raises(CorruptFileError, match="line 1: bad header 'x y'"):
        read_word_vectors(path)
    path = _write(tmp_path / "n.bin", b"\x00\x01\x02" * 600)
    with pytest.raises(CorruptFileError, match="bad header"):
        read_word_vectors(path)


def test_binary_with_a_wrong_dimension(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_MAX_WORD_BYTES", 100)
    monkeypatch.setattr(formats, "_CHUNK_BYTES", 64)
    path = _write(tmp_path / "v.bin", b"2 4\n" + b"x" * 500)
    with pytest.raises(CorruptFileError, match="no space after word #1 within 100 bytes"):
        read_word_vectors(path)


def test_text_file_read_as_binary(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.bin", "\n".join(_text(3, dim=5)) + "\n")
    with pytest.raises(CorruptFileError, match="looks like a text file"):
        read_word_vectors(path)


def test_binary_nan(tmp_path: Path) -> None:
    vectors = _vectors(n=3, dim=4)
    vectors[1, 2] = np.nan
    path = _write(tmp_path / "v.bin", _binary(["a", "b", "c"], vectors, newline=True))
    with pytest.raises(CorruptFileError, match=re.escape("vector of word #2 'b' contains NaN")):
        read_word_vectors(path)


# ---------------------------------------------------------------------------------------------
# refused writes are atomic


@pytest.mark.parametrize(
    ("words", "vectors", "message"),
    [
        (["a", "b c"], None, "words[1] = 'b c' contains whitespace"),
        (["a\tb", "c"], None, "words[0] = 'a\\tb' contains whitespace"),
        (["a", "b\xa0"], None, "words[1] = 'b\\xa0' contains whitespace"),
        (["a", ""], None, "words[1] is empty"),
        (["a", "a"], None, "words[1] = 'a' repeats words[0]"),
        (["a", 3], None, "words[1] is int 3, not a string"),
        (["a", "b\ud800"], None, "words[1] = 'b\\ud800' cannot be written as UTF-8"),
        (
            ["a", "b"],
            [[1.0, 2.0], [np.nan, 0.0]],
            "vectors[1] (the word 'b') contains NaN or infinity",
        ),
        (
            ["a", "b"],
            [[1.0, np.inf], [0.0, 0.0]],
            "vectors[0] (the word 'a') contains NaN or infinity",
        ),
        (["a", "b"], [[1.0, 1e300], [0.0, 0.0]], "too large for float32"),
        (["a"], [[1.0, 2.0], [3.0, 4.0]], "1 words for 2 vectors"),
        (["a", "b"], [1.0, 2.0], "2-d"),
        (["a", "b"], [["x", "y"], ["z", "w"]], "numeric"),
        ([], np.zeros((0, 3)), "no vectors"),
    ],
)
def test_refused_writes_leave_nothing(
    tmp_path: Path, words: list[str], vectors: object, message: str
) -> None:
    if vectors is None:
        vectors = np.ones((len(words), 2))
    for fmt in ("word2vec", "word2vec-binary", "glove"):
        fresh = tmp_path / f"new.{fmt}.txt"
        with pytest.raises(InputError, match=re.escape(message)):
            write_word_vectors(fresh, words, vectors, format=fmt)  # type: ignore[arg-type]
        assert not fresh.exists()
        old = _write(tmp_path / f"old.{fmt}.gz", b"previous content")
        with pytest.raises(InputError):
            write_word_vectors(old, words, vectors, format=fmt)  # type: ignore[arg-type]
        assert old.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"old.{fmt}.gz" for fmt in ("glove", "word2vec", "word2vec-binary")
    )


def test_failure_during_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _write(tmp_path / "v.txt", "2 1\na 1\nb 2\n")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(formats, "_write_text", broken)
    with pytest.raises(OSError, match="disk full"):
        write_word_vectors(old, ["x"], np.ones((1, 1)))
    assert old.read_text() == "2 1\na 1\nb 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["v.txt"]


def test_write_replaces_an_existing_file_and_accepts_other_dtypes(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.txt", "old")
    write_word_vectors(path, ("a", "b"), np.array([[1, 2], [3, 4]], dtype=np.int64))
    assert path.read_text() == "2 2\na 1 2\nb 3 4\n"
    write_word_vectors(path, ["a"], np.array([[0.1, 1 / 3]]), format="glove")
    assert path.read_text() == "a 0.1 0.33333334\n"  # float32 values, shortest exact form
    with pytest.raises(InputError, match="unknown word-vector format"):
        write_word_vectors(path, ["a"], np.ones((1, 1)), format="npy")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# issue 14: damaged files fail with CorruptFileError, never a raw exception or wrong vectors


@pytest.mark.parametrize(("name", "fmt"), [("v.txt", None), ("v.bin", None), ("v.txt", "word2vec")])
def test_header_number_of_thousands_of_digits(tmp_path: Path, name: str, fmt: str | None) -> None:
    path = _write(tmp_path / name, "9" * 5000 + " 3\nw 1 2 3\n")
    with pytest.raises(CorruptFileError, match="bad header"):
        read_word_vectors(path, format=fmt)  # type: ignore[arg-type]
    huge_dim = _write(tmp_path / ("d" + name), "1 " + "9" * 5000 + "\nw 1 2 3\n")
    with pytest.raises(CorruptFileError, match="bad header"):
        read_word_vectors(huge_dim, format=fmt)  # type: ignore[arg-type]


def test_binary_word_with_a_byte_turned_into_a_space(tmp_path: Path) -> None:
    """The C layout ends each record with a newline: a record cut short is caught there."""
    vectors = _vectors(n=4, dim=4)
    data = _binary(["alpha", "beta", "gamma", "delta"], vectors, newline=True)
    damaged = data.replace(b"beta ", b"b ta ", 1)  # 'b' is read as the word, 'ta ' as its vector
    path = _write(tmp_path / "v.bin", damaged)
    with pytest.raises(CorruptFileError, match=r"word #3 .* does not start on a new line") as info:
        read_word_vectors(path)
    assert "the record of word #2 is damaged" in str(info.value)


def test_binary_without_newlines_refuses_a_word_holding_one(tmp_path: Path) -> None:
    """gensim's layout has no newline after a vector: then a word must not contain one."""
    vectors = _vectors(n=3, dim=4)
    data = _binary(["alpha", "beta", "gamma"], vectors, newline=False)
    path = _write(tmp_path / "v.bin", data.replace(b"beta", b"b\nta", 1))
    with pytest.raises(CorruptFileError, match=r"word #2 'b\\nta' contains a newline"):
        read_word_vectors(path)
    path = _write(tmp_path / "w.bin", data.replace(b"gamma", b"\ngamma", 1))  # mixed layouts
    with pytest.raises(CorruptFileError, match=r"word #3 '\\ngamma' contains a newline"):
        read_word_vectors(path)


def test_binary_missing_one_newline_is_refused(tmp_path: Path) -> None:
    vectors = _vectors(n=3, dim=4)
    data = _binary(["alpha", "beta", "gamma"], vectors, newline=True)
    cut = data.index(b"gamma") - 1  # the newline that ends beta's record
    path = _write(tmp_path / "v.bin", data[:cut] + data[cut + 1 :])
    with pytest.raises(CorruptFileError, match="word #3 'gamma' does not start on a new line"):
        read_word_vectors(path)


def test_binary_header_dimension_larger_than_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.bin", b"2 1000000000\nw " + b"\x00" * 64)
    with pytest.raises(CorruptFileError, match="takes 4,000,000,000 bytes, more than the file"):
        read_word_vectors(path)


def _peak_bytes(call: Callable[[], object]) -> int:
    """Peak Python and numpy allocation (bytes) while `call` runs."""
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_one_line_of_64_mb_in_a_small_gzip_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    line = b"w " + b"0 " * (32 << 20) + b"\n"  # 64 MiB of one GloVe line; gzip makes it ~65 KB
    path = _write(tmp_path / "g.txt.gz", gzip.compress(b"a 1 2\n" + line, compresslevel=6))
    del line
    assert path.stat().st_size < 200_000

    def read() -> None:
        with pytest.raises(CorruptFileError, match=r"line 2 is longer than 4,194,304 bytes"):
            read_word_vectors(path)

    assert _peak_bytes(read) < 100 << 20  # was 1.3 GB: the line split into 32 million strings


def test_a_line_far_longer_than_the_header_dimension_allows(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.txt", "1 3\nw " + "0 " * 100_000 + "\n")
    with pytest.raises(CorruptFileError, match=r"line 2 is longer than 65,632 bytes"):
        read_word_vectors(path)
