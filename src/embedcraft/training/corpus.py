"""A training corpus streamed from a file, one document at a time, as lists of tokens.

Nothing holds the whole corpus in memory: each pass re-reads the file. Formats: .txt (one
document per line), .jsonl, .csv, .tsv, each optionally gzipped.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .._files import atomic_file, csv_error, open_input, parse_json
from ..errors import InputError
from ..io import csv_dict_reader
from ..text import TextAnalyzer

__all__ = ["CorpusStats", "TokenStream", "write_tokenized"]

WORD_TOKENS = TextAnalyzer(token_pattern=r"(?u)\b\w+\b")
_TAG = re.compile(r"<[^<>\n]{0,40}>")


@dataclass(frozen=True)
class CorpusStats:
    """What one pass over a corpus saw."""

    documents: int
    tokens: int


class TokenStream:
    """Re-iterable token lists of a corpus file, read lazily on every pass.

    `column` names the text field of JSONL/CSV/TSV files (default "text"); `strip_tags`
    removes HTML-like tags such as `<br />` before tokenizing.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        analyzer: TextAnalyzer | None = None,
        column: str | None = None,
        strip_tags: bool = False,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        self.analyzer = analyzer or WORD_TOKENS
        self.column = column
        self.strip_tags = strip_tags
        suffixes = [s.lower() for s in self.path.suffixes if s.lower() != ".gz"]
        self.kind = suffixes[-1] if suffixes else ".txt"
        if self.kind not in (".txt", ".jsonl", ".csv", ".tsv"):
            self.kind = ".txt"

    def _open(self) -> IO[bytes]:
        """The file's bytes (through gzip when gzipped; damage is an InputError)."""
        return open_input(self.path)

    def _lines(self) -> Iterator[tuple[int, str]]:
        with self._open() as fh:
            for n, raw in enumerate(fh, start=1):
                try:
                    yield n, raw.decode("utf-8-sig" if n == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(
                        f"{self.path}, line {n}: invalid UTF-8 (byte 0x{raw[exc.start]:02x})"
                    ) from None

    def texts(self) -> Iterator[str]:
        """The raw text of each document."""
        if self.kind == ".txt":
            for _, line in self._lines():
                yield line.rstrip("\r\n")
        elif self.kind == ".jsonl":
            field = self.column or "text"
            for n, line in self._lines():
                if not line.strip():
                    continue
                record = parse_json(line, f"{self.path}, line {n}")
                value = record.get(field) if isinstance(record, dict) else record
                if not isinstance(value, str):
                    raise InputError(f"{self.path}, line {n}: no text field {field!r}")
                yield value
        else:
            yield from self._table_texts()

    def _table_texts(self) -> Iterator[str]:
        with self._open() as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
            reader = csv_dict_reader(text, tsv=self.kind == ".tsv")
            field = self.column or "text"
            try:
                for record in reader:
                    if field not in record:
                        raise InputError(
                            f"{self.path}: no column {field!r}; columns are "
                            f"{', '.join(reader.fieldnames or [])}"
                        )
                    yield record[field] or ""
            except UnicodeDecodeError:
                raise InputError(
                    f"{self.path}, near line {reader.line_num}: invalid UTF-8"
                ) from None
            except csv.Error as exc:
                raise csv_error(self.path, reader.line_num, exc) from None

    def __iter__(self) -> Iterator[list[str]]:
        tokenize = self.analyzer.tokenize
        strip = self.strip_tags
        for text in self.texts():
            yield tokenize(_TAG.sub(" ", text) if strip else text)


def write_tokenized(stream: TokenStream, path: str | os.PathLike[str]) -> CorpusStats:
    """One pass over `stream`, written as space-separated tokens, one document per line."""
    documents = tokens = 0
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for doc in stream:
            if doc:
                out.write(" ".join(doc))
                out.write("\n")
                documents += 1
                tokens += len(doc)
        if not tokens:  # raised inside the block: nothing is left at `path`
            raise InputError(f"{stream.path}: the corpus has no words to train on")
    return CorpusStats(documents, tokens)
