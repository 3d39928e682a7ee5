"""Safe file handling: writes that never leave a half-written file or folder behind (write
aside, then rename), and reads whose every failure is one of embedcraft's errors naming the file
(damaged gzip data, invalid UTF-8, unreadable JSON, .npy headers that lie about their size)."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import os
import shutil
import struct
import tempfile
import tokenize
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CorruptFileError, EmbedcraftError, InputError

__all__ = [
    "CSV_FIELD_LIMIT",
    "InputStream",
    "atomic_directory",
    "atomic_file",
    "csv_error",
    "decode_utf8",
    "guard_stream",
    "load_npy",
    "open_input",
    "parse_json",
    "raise_csv_field_limit",
    "read_text",
]

GZIP_MAGIC = b"\x1f\x8b"
CSV_FIELD_LIMIT = 64 << 20
"""Largest CSV/TSV field read (the csv module's default, 128 KiB, refuses long documents)."""
_DAMAGE = (EOFError, zlib.error, gzip.BadGzipFile)
"""What reading damaged gzip data raises."""
_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER_ERRORS = (
    ValueError,
    TypeError,
    SyntaxError,
    OverflowError,
    RecursionError,
    EOFError,
    tokenize.TokenError,
)
"""What numpy's parsing of a damaged .npy header raises."""


def _umask() -> int:
    """The process's umask (read by setting it, then putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _usual_mode(path: Path, base: int) -> None:
    """Give a temp file or folder (made 0600/0700 by tempfile) the mode a plain create gives."""
    with contextlib.suppress(OSError):
        os.chmod(path, base & ~_umask())


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            _usual_mode(tmp, 0o666)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `path`; on success it takes the place of `path`.

    An existing folder at `path` is only removed after the new one is complete.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _usual_mode(tmp, 0o777)
        if target.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            os.rmdir(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# reading: every failure deep inside a library becomes one of embedcraft's errors, naming the file


class _GuardedRaw(io.RawIOBase):
    """A readable stream whose read failures (damaged compressed data) become `error`."""

    def __init__(
        self,
        inner: Any,
        path: str,
        error: type[EmbedcraftError],
        catch: tuple[type[BaseException], ...],
        kind: str,
        also_close: Any = None,
    ) -> None:
        self._inner = inner
        self._path = path
        self._error = error
        self._catch = catch
        self._kind = kind
        self._also_close = also_close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            readinto = getattr(self._inner, "readinto", None)
            if readinto is not None:
                return int(readinto(buffer))
            data = self._inner.read(len(buffer))
        except self._catch as exc:
            detail = _short(exc) if str(exc) else "it ends too early"
            raise self._error(f"{self._path}: damaged {self._kind} data ({detail})") from None
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
            if self._also_close is not None:
                self._also_close.close()
        super().close()


class InputStream(io.BufferedReader):
    """A file opened by `open_input`: bytes, decompressed when gzipped, read errors mapped."""

    path: Path
    compressed: bool


def guard_stream(
    inner: Any,
    path: str | os.PathLike[str],
    *,
    error: type[EmbedcraftError] = InputError,
    catch: tuple[type[BaseException], ...] = _DAMAGE,
    kind: str = "compressed",
) -> io.BufferedReader:
    """Wrap an open byte stream so that `catch` exceptions while reading become `error`."""
    return io.BufferedReader(_GuardedRaw(inner, os.fspath(path), error, catch, kind), 1 << 16)


def open_input(
    path: str | os.PathLike[str], *, error: type[EmbedcraftError] = InputError
) -> InputStream:
    """Open a file to read bytes, through gzip when its content is gzipped.

    A missing file or a folder is an `InputError`; a file named .gz that is not gzipped, or
    damaged gzip data met while reading, raises `error` naming the file.
    """
    p = Path(path)
    try:
        raw = open(p, "rb")  # noqa: SIM115 - handed to the stream, closed with it
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p} is a folder, not a file") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot be opened ({exc.strerror or exc})") from None
    compressed = raw.peek(2)[:2] == GZIP_MAGIC
    if not compressed and p.suffix.lower() == ".gz":
        raw.close()
        raise error(f"{p}: not a valid gzip file, though its name ends in .gz")
    guarded = (
        _GuardedRaw(gzip.GzipFile(fileobj=raw, mode="rb"), str(p), error, _DAMAGE, "gzip", raw)
        if compressed
        else _GuardedRaw(raw, str(p), error, _DAMAGE, "gzip")
    )
    stream = InputStream(guarded, 1 << 16)
    stream.path, stream.compressed = p, compressed
    return stream


def decode_utf8(
    raw: bytes, where: str | os.PathLike[str], *, error: type[EmbedcraftError] = InputError
) -> str:
    """`raw` as strict UTF-8 (a leading byte-order mark dropped); bad bytes named by line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(
            f"{where}, line {line}, column {column}: invalid UTF-8 "
            f"(byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def read_text(path: str | os.PathLike[str], *, error: type[EmbedcraftError] = InputError) -> str:
    """A whole file (gzip when gzipped) decoded as UTF-8; any failure is `error` or InputError."""
    with open_input(path, error=error) as stream:
        raw = stream.read()
    return decode_utf8(raw, path, error=error)


def parse_json(text: str | bytes, where: str, *, error: type[EmbedcraftError] = InputError) -> Any:
    """`json.loads(text)`, with every way it can fail (bad syntax, an integer of thousands of
    digits, nesting deeper than Python's recursion limit) raised as `error` naming `where`
    (a saved file's CorruptFileError says "<file> is corrupt: ...")."""
    where = f"{where} is corrupt:" if issubclass(error, CorruptFileError) else f"{where}:"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where} invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise error(f"{where} JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise error(f"{where} unreadable JSON ({_short(exc)})") from None


def load_npy(
    path: str | os.PathLike[str],
    *,
    mmap: bool = False,
    error: type[EmbedcraftError] = CorruptFileError,
) -> np.ndarray:
    """A .npy array (memory-mapped when `mmap`), pickles refused.

    The header is checked first: an array whose declared size does not fit in the file is
    refused before anything is allocated. Every failure is `error` naming the file.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            shape, dtype, data_start = _npy_header(fh)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        raise error(f"{p} is missing") from None
    except IsADirectoryError:
        raise error(f"{p} is a folder, not a .npy file") from None
    except (*_NPY_HEADER_ERRORS, OSError) as exc:
        raise error(f"{p} is corrupt: not a readable .npy file ({_short(exc)})") from None
    if dtype.hasobject:
        raise error(f"{p} is corrupt: it holds Python objects, which are never loaded")
    if any(n < 0 for n in shape):
        raise error(f"{p} is corrupt: negative shape {shape}")
    declared = math.prod(shape) * dtype.itemsize
    if declared > size - data_start:
        raise error(
            f"{p} is corrupt: its header declares a {'x'.join(map(str, shape)) or 'scalar'} "
            f"{dtype} array ({declared:,} bytes) but the file holds {size - data_start:,} bytes "
            "of data"
        )
    try:
        array: np.ndarray = np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (*_NPY_HEADER_ERRORS, OSError) as exc:
        raise error(f"{p} is corrupt: {_short(exc)}") from None
    return array


def _npy_header(fh: Any) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """(shape, dtype, offset of the data) of an open .npy file, its header length checked
    against the file's size before numpy reads (and allocates) it."""
    magic = fh.read(8)
    if len(magic) < 8 or magic[:6] != _NPY_MAGIC:
        raise ValueError("no .npy magic string at the start")
    version = (magic[6], magic[7])
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy format version {version}")
    length_format = "<H" if version == (1, 0) else "<I"
    length_bytes = fh.read(struct.calcsize(length_format))
    if len(length_bytes) < struct.calcsize(length_format):
        raise ValueError("the file ends inside its header")
    (length,) = struct.unpack(length_format, length_bytes)
    data_start = 8 + len(length_bytes) + length
    if data_start > os.fstat(fh.fileno()).st_size:
        raise ValueError(f"its header length ({length:,} bytes) runs past the end of the file")
    fh.seek(8)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    with warnings.catch_warnings():  # numpy parses the header as a Python literal: a damaged
        warnings.simplefilter("ignore")  # one warns of bad escapes before it fails
        shape, _, dtype = read_header(fh)
    return shape, dtype, data_start


def _short(exc: BaseException) -> str:
    """An exception's message cut to one readable line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def raise_csv_field_limit() -> None:
    """Let the csv module read fields up to `CSV_FIELD_LIMIT` (its default is 128 KiB).

    The limit is process-wide; it is only ever raised, never lowered.
    """
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def csv_error(where: str | os.PathLike[str], line: int, exc: csv.Error) -> InputError:
    """The InputError for a CSV/TSV parse failure at `line` of `where`."""
    text = str(exc)
    if "field larger than field limit" in text:
        text = (
            f"a field is larger than {CSV_FIELD_LIMIT >> 20} MiB "
            "(an unclosed quote makes the rest of the file one field)"
        )
    return InputError(f"{where}, line {line}: {text}")
