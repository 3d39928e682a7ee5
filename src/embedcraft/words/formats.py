"""Word-vector files: word2vec text and binary, GloVe and fastText .vec, plain or gzipped.

Readers return the words in file order and a float32 matrix; every problem in a file is reported
with the file and the line (text formats) or the word's position, counted from 1 like lines, as
"word #3" (binary format). Writers go
through `atomic_file`, so a refused or failed write leaves no file behind and keeps an old one.

Text values are written with the fewest digits that read back to the same float32 (the form
gensim writes too), so a text round trip is exact.
"""

from __future__ import annotations

import codecs
import gzip
import io
import itertools
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from .._files import InputStream, atomic_file, open_input
from ..errors import CorruptFileError
from ._checks import (
    BAD_WORD_CHARS,
    MAX_HEADER_DIGITS,
    MAX_LINE_BYTES,
    NUMBER,
    WORD_FILE_FORMATS,
    WordFileFormat,
    check_format,
    check_limit,
    check_line_lengths,
    check_vectors,
    check_words,
    header_numbers,
    locate_text_error,
    reading,
    too_long_error,
)

__all__ = [
    "WORD_FILE_FORMATS",
    "WordFileFormat",
    "detect_format",
    "read_word_vectors",
    "write_word_vectors",
]

_CHUNK_BYTES = 16 << 20  # read and parse this much at a time: bounded memory, numpy-sized batches
_WRITE_ROWS = 20_000  # rows formatted per write call
_MAX_WORD_BYTES = 1 << 20  # a binary "word" longer than this means the layout is not what we think
_SPACING = re.compile(r"[^\S ]")  # whitespace other than the space that ends a binary word
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # never in a text file


# ---------------------------------------------------------------------------------------------
# public API


def detect_format(path: str | os.PathLike[str]) -> WordFileFormat:
    """Guess a file's format from its suffix, else from its first line, so callers need not ask."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix == ".bin":
        return "word2vec-binary"
    if suffix == ".vec":
        return "fasttext"
    with open_input(p, error=CorruptFileError) as stream:
        head = stream.read(1 << 16)
        while b"\n" not in head:
            more = stream.read(1 << 16)
            if not more or len(head) > (1 << 20):
                break
            head += more
    if not head.strip():
        raise CorruptFileError(f"{p}: the file is empty")
    first, _, after = head.removeprefix(codecs.BOM_UTF8).partition(b"\n")
    fields = first.split()
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        numbers = header_numbers(fields)
        if numbers is None:
            return "word2vec"  # a header with numbers too long to be counts: the reader says so
        if not after.strip() or _is_text_vector_line(after, numbers[1]):
            return "word2vec"
        window = after[: 4 * numbers[1] + 256]
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        try:
            decoder.decode(window, final=False)
        except UnicodeDecodeError:
            return "word2vec-binary"
        return "word2vec-binary" if _CONTROL_BYTES.search(window) else "word2vec"
    return "glove"


def read_word_vectors(
    path: str | os.PathLike[str],
    *,
    format: WordFileFormat | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> tuple[list[str], NDArray[np.float32]]:
    """Read words (in file order) and their float32 (n, dim) vectors; `limit` keeps the first N.

    The format is detected when not given (see `detect_format`); gzip is recognized by content.
    `progress` shows the bytes read so far as a bar on stderr.
    """
    p = Path(path)
    limit = check_limit(limit)
    if format is not None:
        check_format(format)
    else:
        format = detect_format(p)
    with open_input(p, error=CorruptFileError) as raw, reading(raw, progress) as stream:
        if format == "word2vec-binary":
            return _read_binary(p, stream, limit)
        return _read_text(p, stream, has_header=format != "glove", limit=limit)


def write_word_vectors(
    path: str | os.PathLike[str],
    words: Sequence[str],
    vectors: np.ndarray,
    *,
    format: WordFileFormat = "word2vec",
) -> None:
    """Write words and vectors in `format`, atomically; a path ending in .gz is gzipped.

    Refuses what could not be read back: words that are empty, repeated or contain whitespace,
    and vectors with NaN or infinity (or values too large for float32).
    """
    p = Path(path)
    check_format(format)
    words = list(words)
    matrix = check_vectors(words, vectors)
    check_words(words)
    with atomic_file(p) as tmp, open(tmp, "wb") as raw:
        out: io.BufferedIOBase = raw
        if p.suffix.lower() == ".gz":
            # no file name (it would be the temporary one) and no time stamp: same data, same bytes
            out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=3, mtime=0)
        try:
            if format == "word2vec-binary":
                _write_binary(out, words, matrix)
            else:
                _write_text(out, words, matrix, header=format != "glove")
        finally:
            if out is not raw:
                out.close()


# ---------------------------------------------------------------------------------------------
# text formats


def _text_chunks(path: Path, stream: BinaryIO) -> Iterator[tuple[int, list[str]]]:
    """Yield (number of the first line, lines) in big batches, decoded as strict UTF-8.

    Blank lines at the very end of the file are dropped; a blank line elsewhere is kept and
    reported by the parser.
    """
    carry = b""
    line_no = 1
    pending: list[str] = []  # trailing blank lines, kept until we know they are not the end
    first = True
    eof = False
    while not eof:
        block = stream.read(_CHUNK_BYTES)
        eof = not block
        data = carry + block
        if eof:
            complete, carry = data, b""
        else:
            cut = data.rfind(b"\n")
            if cut < 0:
                if len(data) > MAX_LINE_BYTES:  # bound memory before the line is split
                    too_long_error(path, line_no + len(pending), MAX_LINE_BYTES)
                carry = data
                continue
            complete, carry = data[:cut], data[cut + 1 :]
        if eof and not complete:
            break
        try:
            text = complete.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = line_no + len(pending) + complete.count(b"\n", 0, exc.start)
            raise CorruptFileError(
                f"{path}, line {bad}: not valid UTF-8 text (byte {complete[exc.start]:#04x}); "
                "if this is a binary word2vec file, read it with format='word2vec-binary'"
            ) from None
        if first and text.startswith("\ufeff"):
            text = text[1:]  # a byte-order mark is not part of the first word
        first = False
        lines = text.split("\n")
        if pending:
            lines = pending + lines
        end = len(lines)
        while end and not lines[end - 1].strip():
            end -= 1
        pending = lines[end:]
        del lines[end:]
        if lines:
            yield line_no, lines
            line_no += len(lines)


def _is_text_vector_line(data: bytes, dim: int) -> bool:
    """Whether `data` starts with a text line 'word v1 ... vdim': tells text from binary."""
    fields = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").split()
    return len(fields) == dim + 1 and all(NUMBER.fullmatch(f) for f in fields[1:])


def _parse_header(path: Path, line: str) -> tuple[int, int]:
    """The (count, dim) of a word2vec header line, or a clear error."""
    fields = line.split()
    numbers = header_numbers(fields)
    if numbers is not None and numbers[0] > 0 and numbers[1] > 0:
        return numbers
    shown = line if len(line) <= 60 else line[:60] + "..."
    hint = ""
    if len(fields) > 2:
        hint = "; a GloVe file has no header: read it with format='glove'"
    elif any(len(f) > MAX_HEADER_DIGITS for f in fields):
        hint = f"; a number of more than {MAX_HEADER_DIGITS} digits is not a count"
    raise CorruptFileError(
        f"{path}, line 1: bad header {shown!r}: expected two positive integers, "
        f"'<number of vectors> <dimension>'{hint}"
    )


def _read_text(
    path: Path, stream: BinaryIO, *, has_header: bool, limit: int | None
) -> tuple[list[str], NDArray[np.float32]]:
    """Read a word2vec/fastText (with header) or GloVe (without) text file."""
    count: int | None = None
    dim: int | None = None
    width_from = ""  # what fixed the dimension, for error messages
    header_like = False  # GloVe: line 1 looks like a word2vec header (hint on width errors)
    stop = limit  # number of vectors to read (None: all)
    strict_end = False  # whether lines after the header's count are an error
    words: list[str] = []
    blocks: list[NDArray[np.float32]] = []
    seen: dict[str, int] = {}
    n_read = 0
    for line_no, lines in _text_chunks(path, stream):
        if dim is None:
            check_line_lengths(path, lines[:1], line_no, None)
            if has_header:
                count, dim = _parse_header(path, lines[0])
                width_from = "the header's dimension"
                stop = count if limit is None else min(count, limit)
                strict_end = limit is None or limit > count
                lines = lines[1:]
                line_no += 1
            else:
                word, _, rest = lines[0].partition(" ")
                dim = len(rest.split())
                if dim == 0:
                    raise CorruptFileError(
                        f"{path}, line {line_no}: no values after the word {word!r}"
                    )
                width_from = f"the width of line {line_no}"
                header_like = header_numbers(lines[0].split()) is not None
        check_line_lengths(path, lines, line_no, dim)
        if stop is not None and n_read + len(lines) > stop:
            if strict_end:
                raise CorruptFileError(
                    f"{path}, line {line_no + stop - n_read}: the header says {count} vectors, "
                    "but more lines follow them"
                )
            lines = lines[: stop - n_read]
        if lines:
            chunk_words, matrix = _parse_text_lines(
                path, lines, line_no, dim, seen, width_from, header_like
            )
            words.extend(chunk_words)
            blocks.append(matrix)
            n_read += len(lines)
        if stop is not None and n_read >= stop and not strict_end:
            break  # `limit` reached: leave the rest of the file unread
    if dim is None:
        raise CorruptFileError(f"{path}: the file is empty")
    if count is not None and n_read < count and (limit is None or n_read < limit):
        raise CorruptFileError(
            f"{path}: truncated: the header says {count} vectors, found {n_read}"
        )
    if not blocks:
        return words, np.zeros((0, dim), dtype=np.float32)
    return words, blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _parse_text_lines(
    path: Path,
    lines: list[str],
    line_no: int,
    dim: int,
    seen: dict[str, int],
    width_from: str,
    header_like: bool,
) -> tuple[list[str], NDArray[np.float32]]:
    """Parse 'word v1 ... vdim' lines in one numpy call; on any doubt, find the exact error."""
    parts = [line.partition(" ") for line in lines]
    words = [part[0] for part in parts]
    rests = [part[2] for part in parts]
    here = dict(zip(words, range(line_no, line_no + len(lines)), strict=True))
    matrix: NDArray[np.float32] | None = None
    if (
        len(here) == len(words)
        and "" not in here
        and seen.keys().isdisjoint(here)
        and not BAD_WORD_CHARS.search("".join(words))
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                matrix = np.loadtxt(rests, dtype=np.float32, comments=None, ndmin=2)
        except ValueError:
            matrix = None
        if matrix is not None and (
            matrix.shape != (len(lines), dim) or not np.isfinite(matrix).all()
        ):
            matrix = None
    if matrix is None:
        locate_text_error(path, lines, line_no, dim, seen, width_from, header_like)
        raise CorruptFileError(  # not reached unless numpy and the line check disagree
            f"{path}, lines {line_no}-{line_no + len(lines) - 1}: could not be read as vectors"
        )
    seen.update(here)
    return words, matrix


def _shortest_decimals(matrix: NDArray[np.float32]) -> NDArray[np.float64]:
    """Each float32 as the float64 nearest its shortest decimal (6-8 digits) that reads back.

    Printed with '%.9g', these give the same short text as str(np.float32), at numpy speed.
    Values needing 9 digits (or far from 1) stay exact; '%.9g' still round-trips them.
    """
    target = matrix.ravel()
    x64 = target.astype(np.float64)
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log10(np.abs(x64)))  # decimal exponent; -inf for zero
    powers = 10.0 ** np.arange(23)  # exact in float64
    # Six digits first, on everything: when a decimal of six digits or fewer reads back as the
    # same float32, rounding to six digits finds it (zero-padded, which '%g' drops).
    shift = 5.0 - exponent
    usable = (shift >= 0) & (shift <= 22)
    scale = powers[np.where(usable, shift, 0).astype(np.intp)]
    rounded = np.rint(x64 * scale) / scale
    ok = usable & (rounded.astype(np.float32) == target)
    out = np.where(ok, rounded, x64)
    todo = np.flatnonzero(~ok & (x64 != 0))
    for digits in (6, 7, 8):  # the rest (and six digits for values of a million or more)
        if todo.size == 0:
            break
        step = digits - 1 - exponent[todo]
        keep = np.abs(step) <= 22
        todo, step = todo[keep], step[keep].astype(np.intp)
        values = x64[todo]
        scale = powers[np.abs(step)]
        up = step >= 0
        rounded = np.where(up, np.rint(values * scale) / scale, np.rint(values / scale) * scale)
        ok = rounded.astype(np.float32) == target[todo]
        out[todo[ok]] = rounded[ok]
        todo = todo[~ok]
    return out.reshape(matrix.shape)


def _write_text(
    out: io.BufferedIOBase, words: list[str], matrix: NDArray[np.float32], header: bool
) -> None:
    """Write 'word v1 ... vdim' lines (after a 'count dim' header for word2vec/fastText)."""
    n, dim = matrix.shape
    if header:
        out.write(f"{n} {dim}\n".encode())
    line = "%s " + " ".join(["%.9g"] * dim) + "\n"
    for start in range(0, n, _WRITE_ROWS):
        stop = min(start + _WRITE_ROWS, n)
        rows = _shortest_decimals(matrix[start:stop]).tolist()
        text = "".join(
            [line % (word, *row) for word, row in zip(words[start:stop], rows, strict=True)]
        )
        out.write(text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# binary format


def _read_binary(
    path: Path, stream: InputStream, limit: int | None
) -> tuple[list[str], NDArray[np.float32]]:
    """Read a word2vec binary file: header line, then 'word ' + dim little-endian float32 each."""
    buf = stream.read(_CHUNK_BYTES)
    if not buf.strip():
        raise CorruptFileError(f"{path}: the file is empty")
    header_end = buf.find(b"\n", 0, 1024)
    if header_end < 0:
        raise CorruptFileError(
            f"{path}: bad header: no line '<number of vectors> <dimension>' at the start"
        )
    try:
        header = buf[:header_end].decode("ascii")
    except UnicodeDecodeError:
        raise CorruptFileError(
            f"{path}: bad header: the first line is not text; expected two positive integers, "
            "'<number of vectors> <dimension>'"
        ) from None
    count, dim = _parse_header(path, header)
    stop = count if limit is None else min(count, limit)
    width = 4 * dim
    pos = header_end + 1
    if not stream.compressed and pos + width + 2 > stream.path.stat().st_size:
        raise CorruptFileError(  # checked before reading, which would buffer the whole file
            f"{path}: truncated, or a bad header: one vector of the header's dimension {dim} "
            f"takes {width:,} bytes, more than the file holds"
        )
    if _is_text_vector_line(buf[pos : pos + 64 * dim + 4096], dim):
        raise CorruptFileError(
            f"{path}: this looks like a text file, not a binary one: read it with format='word2vec'"
        )
    base = 0  # file offset of buf[0]
    eof = False
    words: list[str] = []
    blocks: list[NDArray[np.float32]] = []
    seen: dict[str, int] = {}
    newline: bool | None = None  # whether records end with a newline (known from word #2)
    n_read = 0
    while n_read < stop:
        raw_words: list[bytes] = []
        view = memoryview(buf)
        pieces: list[memoryview] = []
        end = len(buf)
        k = n_read
        while k < stop:
            space = buf.find(b" ", pos)
            if space < 0 or space + 1 + width > end:
                break
            raw_words.append(buf[pos:space])
            pieces.append(view[space + 1 : space + 1 + width])
            pos = space + 1 + width
            k += 1
        if raw_words:
            chunk_words, newline = _decode_words(path, raw_words, n_read, seen, newline)
            matrix = np.frombuffer(b"".join(pieces), dtype="<f4").reshape(-1, dim)
            matrix = matrix.astype(np.float32)  # native byte order, writable copy
            finite = np.isfinite(matrix).all(axis=1)
            if not finite.all():
                row = int(np.flatnonzero(~finite)[0])
                raise CorruptFileError(
                    f"{path}: the vector of word #{n_read + row + 1} {chunk_words[row]!r} "
                    "contains NaN or infinity"
                )
            words.extend(chunk_words)
            blocks.append(matrix)
            n_read = k
        del view, pieces
        if n_read >= stop:
            break
        if eof:
            _binary_end_error(path, buf, pos, base, n_read, count)
        if buf.find(b" ", pos) < 0 and len(buf) - pos > _MAX_WORD_BYTES:
            raise CorruptFileError(
                f"{path}: no space after word #{n_read + 1} within {_MAX_WORD_BYTES} bytes: "
                "not a word2vec binary file, or its header's dimension is wrong"
            )
        block = stream.read(_CHUNK_BYTES)
        eof = not block
        base += pos
        buf = buf[pos:] + block
        pos = 0
    if limit is None or limit > count:  # `limit` reached first: leave the rest unread
        tail = buf[pos:]
        while not tail.strip():
            tail = stream.read(1 << 16)
            if not tail:
                break
        else:
            raise CorruptFileError(
                f"{path}: extra data after the {count} vectors the header announces "
                f"(near byte {base + pos})"
            )
    if not blocks:
        return words, np.zeros((0, dim), dtype=np.float32)
    return words, blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _binary_end_error(path: Path, buf: bytes, pos: int, base: int, n_read: int, count: int) -> None:
    """Raise the error for a binary file that ends before the header's count of vectors."""
    rest = buf[pos:]
    if not rest.strip():
        raise CorruptFileError(
            f"{path}: truncated: the header says {count} vectors, found {n_read}"
        )
    space = rest.find(b" ")
    number = n_read + 1
    if space < 0:
        raise CorruptFileError(
            f"{path}: unexpected end of file in word #{number} (at byte {base + pos}); "
            f"truncated: the header says {count} vectors"
        )
    word = rest[:space].lstrip(b"\n").decode("utf-8", errors="replace")
    raise CorruptFileError(
        f"{path}: unexpected end of file in the vector of word #{number} {word!r}; "
        f"truncated: the header says {count} vectors"
    )


def _decode_words(
    path: Path, raw_words: list[bytes], before: int, seen: dict[str, int], newline: bool | None
) -> tuple[list[str], bool | None]:
    """Decode binary-file words (strict UTF-8) and check them, and what ends each record.

    Either every record ends with a newline (the C tool's layout: each word after the first
    starts with one) or none does (gensim's). Returns the words and that layout, once known.
    """
    try:
        text = b" ".join(raw_words).decode("utf-8")
    except UnicodeDecodeError:
        for i, raw in enumerate(raw_words):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CorruptFileError(
                    f"{path}: word #{before + i + 1} is not valid UTF-8 ({raw[:80]!r}, "
                    f"{exc.reason} at byte {exc.start} of the word)"
                ) from None
        raise  # pragma: no cover - the join decoded badly only if one word did
    if newline is None and before + len(raw_words) >= 2:
        newline = raw_words[1 - before].startswith(b"\n")  # word #2 says
    # with newlines: one at the start of every word but the file's first, and nowhere else
    expected = (len(raw_words) - (before == 0)) if newline else 0
    starts = text.count(" \n") + text.startswith("\n")
    words_text = text
    if newline and starts == expected and not (before == 0 and text.startswith("\n")):
        words_text = text.replace(" \n", " ").removeprefix("\n" if before else "")
    elif starts:
        _binary_word_error(path, text.split(" "), before, newline)
    if _SPACING.search(words_text):
        _binary_word_error(path, text.split(" "), before, newline)
    words = words_text.split(" ")
    here = dict(zip(words, range(before + 1, before + 1 + len(words)), strict=True))
    if len(here) != len(words) or "" in here or not seen.keys().isdisjoint(here):
        local: dict[str, int] = {}
        for i, word in enumerate(words):
            number = before + i + 1
            if not word:
                raise CorruptFileError(f"{path}: word #{number} is empty")
            first = seen.get(word, local.get(word))
            if first is not None:
                raise CorruptFileError(
                    f"{path}: word #{number} {word!r} already appeared as word #{first}"
                )
            local[word] = number
    seen.update(here)
    return words, newline


def _binary_word_error(path: Path, words: list[str], before: int, newline: bool | None) -> None:
    """Raise the error for the first word whose layout is wrong: misplaced or extra whitespace
    (a damaged record before it, or a header whose dimension is wrong)."""
    for i, word in enumerate(words):
        number = before + i + 1
        body = word
        if newline and number > 1:
            if not word.startswith("\n"):
                raise CorruptFileError(
                    f"{path}: word #{number} {word[:80]!r} does not start on a new line, as "
                    f"every record of this file does: the record of word #{number - 1} is "
                    "damaged (or the header's dimension is wrong)"
                )
            body = word[1:]
        if _SPACING.search(body):
            raise CorruptFileError(
                f"{path}: word #{number} {word[:80]!r} contains a newline or other whitespace: "
                "the file is damaged there (or the header's dimension is wrong)"
            )
    raise AssertionError("no bad word found")  # pragma: no cover - callers checked


def _write_binary(out: io.BufferedIOBase, words: list[str], matrix: NDArray[np.float32]) -> None:
    """Write the header, then per word: UTF-8 word, space, little-endian float32s, newline."""
    n, dim = matrix.shape
    out.write(f"{n} {dim}\n".encode())
    data = memoryview(np.ascontiguousarray(matrix, dtype="<f4").tobytes())
    width = 4 * dim
    newline = b"\n"
    for start in range(0, n, _WRITE_ROWS):
        stop = min(start + _WRITE_ROWS, n)
        records = (
            (word.encode("utf-8") + b" ", data[i * width : (i + 1) * width], newline)
            for i, word in zip(range(start, stop), words[start:stop], strict=True)
        )
        out.write(b"".join(itertools.chain.from_iterable(records)))
