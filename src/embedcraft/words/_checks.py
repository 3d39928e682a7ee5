"""Checks for word-vector files and arguments: formats, limits, words, vectors, header numbers,
line lengths, and the search for the exact error in lines numpy refused to parse; and the
progress bar of a file being read."""

from __future__ import annotations

import contextlib
import operator
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, cast, get_args

import numpy as np
from numpy.typing import NDArray

from .._files import InputStream
from ..errors import CorruptFileError, InputError

WordFileFormat = Literal["word2vec", "word2vec-binary", "glove", "fasttext"]
WORD_FILE_FORMATS: tuple[WordFileFormat, ...] = get_args(WordFileFormat)

NUMBER = re.compile(  # what numpy's parser reads; ASCII digits only, as numpy
    r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)", re.I | re.A
)
WHITESPACE = re.compile(r"\s")
BAD_WORD_CHARS = re.compile(r"[\t\r\x0b\x0c]")  # whitespace that is not a field separator here
MAX_HEADER_DIGITS = 18
"""A header number with more digits than this is not a count (and int() would refuse 4,300)."""
MAX_LINE_BYTES = 4 << 20
"""Longest text line read: ~130,000 values of 32 characters."""


def header_numbers(fields: list[str] | list[bytes]) -> tuple[int, int] | None:
    """The two numbers of a word2vec header 'count dim' split into fields, else None."""
    if len(fields) != 2:
        return None
    if not all(f.isascii() and f.isdigit() and len(f) <= MAX_HEADER_DIGITS for f in fields):
        return None
    return int(fields[0]), int(fields[1])


def line_limit(dim: int | None) -> int:
    """The longest text line accepted: room for a long word and `dim` values of up to 32
    characters each, and never more than `MAX_LINE_BYTES` (splitting a line makes ~30 bytes
    of Python objects per byte of a line of short fields)."""
    if dim is None:
        return MAX_LINE_BYTES
    return min((64 << 10) + 32 * dim, MAX_LINE_BYTES)


def check_line_lengths(path: Path, lines: list[str], line_no: int, dim: int | None) -> None:
    """Refuse a line longer than `line_limit(dim)` before it is split into fields."""
    limit = line_limit(dim)
    if lines and max(map(len, lines)) > limit:
        n = next(i for i, line in enumerate(lines) if len(line) > limit)
        too_long_error(path, line_no + n, limit)


def too_long_error(path: Path, line_no: int, limit: int) -> None:
    """Raise the error for a line longer than `limit`."""
    raise CorruptFileError(
        f"{path}, line {line_no} is longer than {limit:,} bytes: not a word-vector line "
        "(a damaged file, or not a word-vector file)"
    )


def check_format(format: object) -> None:
    """Refuse a format name we do not know, listing the ones we do."""
    if format not in WORD_FILE_FORMATS:
        raise InputError(
            f"unknown word-vector format {format!r}; use one of {', '.join(WORD_FILE_FORMATS)}"
        )


def check_limit(limit: object) -> int | None:
    """Return `limit` as an int (None: no limit); refuse negatives and non-integers."""
    if limit is None:
        return None
    if isinstance(limit, bool):
        raise InputError(f"limit must be a whole number of vectors, not {limit!r}")
    try:
        value = operator.index(limit)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"limit must be a whole number of vectors, not {limit!r}") from None
    if value < 0:
        raise InputError(f"limit must be 0 or more, not {value}")
    return value


def check_vectors(words: list[str], vectors: np.ndarray) -> NDArray[np.float32]:
    """The vectors as a C-ordered float32 (n, dim) matrix matching `words`, all finite."""
    try:
        array = np.asarray(vectors)
    except (TypeError, ValueError) as exc:
        raise InputError(f"vectors must be a numeric (n, dim) matrix ({exc})") from None
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise InputError(f"vectors must be a numeric (n, dim) matrix, not dtype {array.dtype}")
    if array.ndim != 2:
        raise InputError(f"vectors must be a 2-d (n, dim) matrix, not shape {array.shape}")
    n, dim = array.shape
    if n != len(words):
        raise InputError(f"{len(words)} words for {n} vectors")
    if n == 0:
        raise InputError("no vectors to write: a word-vector file needs at least one")
    if dim == 0:
        raise InputError("vectors have dimension 0: a word-vector file needs at least one value")
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        bad = array[row][~np.isfinite(matrix[row])][0]
        what = "NaN or infinity" if not np.isfinite(bad) else f"{bad!r}, too large for float32"
        raise InputError(f"vectors[{row}] (the word {words[row]!r}) contains {what}")
    return matrix


def check_words(words: list[str]) -> None:
    """Refuse non-string, empty, repeated and whitespace-holding words, naming the first one."""
    try:
        joined = "".join(words)
    except TypeError:
        index = next(i for i, w in enumerate(words) if not isinstance(w, str))
        raise InputError(
            f"words[{index}] is {type(words[index]).__name__} {words[index]!r}, not a string"
        ) from None
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        index = next(i for i, w in enumerate(words) if not encodable(w))
        raise InputError(
            f"words[{index}] = {words[index]!r} cannot be written as UTF-8 (a lone surrogate?)"
        ) from None
    if WHITESPACE.search(joined):
        index = next(i for i, w in enumerate(words) if WHITESPACE.search(w))
        raise InputError(
            f"words[{index}] = {words[index]!r} contains whitespace, which separates the fields of "
            "a word-vector file; replace it (e.g. with '_') before writing"
        )
    first_seen = dict(zip(words, range(len(words)), strict=True))
    if "" in first_seen:
        raise InputError(f"words[{words.index('')}] is empty")
    if len(first_seen) != len(words):
        seen: dict[str, int] = {}
        for i, w in enumerate(words):
            if w in seen:
                raise InputError(
                    f"words[{i}] = {w!r} repeats words[{seen[w]}]; words must be unique"
                )
            seen[w] = i


def encodable(word: str) -> bool:
    """Whether `word` can be encoded as UTF-8."""
    try:
        word.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def locate_text_error(
    path: Path,
    lines: list[str],
    line_no: int,
    dim: int,
    seen: dict[str, int],
    width_from: str,
    header_like: bool,
) -> None:
    """Go through `lines` one by one and raise the first problem, naming its line."""
    here: dict[str, int] = {}
    for offset, line in enumerate(lines):
        n = line_no + offset
        where = f"{path}, line {n}"
        if not line.strip():
            raise CorruptFileError(f"{where} is empty")
        word, _, rest = line.partition(" ")
        if not word:
            raise CorruptFileError(f"{where} starts with a space; expected 'word value value ...'")
        if BAD_WORD_CHARS.search(word):
            raise CorruptFileError(
                f"{where}: the word {word!r} contains a tab or another control character; "
                "fields must be separated by spaces"
            )
        values = rest.split()
        if len(values) != dim:
            hint = ""
            if header_like and n == 2:
                hint = "; line 1 looks like a word2vec header: read with format='word2vec'"
            raise CorruptFileError(
                f"{where} has {len(values)} values after the word {word!r}, expected {dim} "
                f"({width_from}){hint}"
            )
        first = seen.get(word, here.get(word))
        if first is not None:
            raise CorruptFileError(f"{where}: {word!r} already appeared on line {first}")
        here[word] = n
        row: NDArray[np.float32] | None
        if all(NUMBER.fullmatch(value) for value in values):
            with np.errstate(over="ignore"):
                row = np.array([float(value) for value in values]).astype(np.float32)
        else:
            row = parse_numbers(rest)
            if row is None:
                bad = next(v for v in values if parse_numbers(v) is None)
                raise CorruptFileError(f"{where}: {bad!r} is not a number")
        if not np.isfinite(row).all():
            bad = values[int(np.flatnonzero(~np.isfinite(row))[0])]
            raise CorruptFileError(f"{where}: {bad!r} is not a finite float32 number")


def parse_numbers(text: str) -> NDArray[np.float32] | None:
    """`text` read by numpy's parser (the one the fast path uses), or None if it refuses."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.loadtxt([text], dtype=np.float32, comments=None, ndmin=2).ravel()
    except ValueError:
        return None


@contextlib.contextmanager
def reading(stream: InputStream, progress: bool) -> Iterator[InputStream]:
    """`stream`, its reads shown as a bar of bytes on stderr when `progress` is asked for (of
    the file's size; a gzipped file counts the bytes it unpacks to, with no total)."""
    if not progress:
        yield stream
        return
    from tqdm.auto import tqdm

    total = None if stream.compressed else stream.path.stat().st_size
    desc = f"reading {stream.path.name}"
    with tqdm.wrapattr(stream, "read", total=total, desc=desc, leave=True) as counted:
        yield cast(InputStream, counted)
