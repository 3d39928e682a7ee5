"""A training corpus streamed from a file, one document at a time, as lists of tokens.

Nothing holds the whole corpus in memory: each pass re-reads the file through
`embedcraft.inputs.read_records`, so a corpus file reads as it does everywhere else. Formats:
.txt (one document per line; any name that is not one of the others), .jsonl, .csv, .tsv,
each optionally gzipped, and .parquet.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._files import atomic_file
from ..errors import InputError
from ..inputs import TEXT_FORMATS, file_format, read_records
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

    `column` names the text field of JSONL/CSV/TSV/Parquet files, or several joined with ". "
    ("title,description"); by default the usual text column (text, sentence, document, content,
    body), as every reader does. `strip_tags` removes HTML-like tags such as `<br />` before
    tokenizing.
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
        kind = file_format(self.path)
        self.kind = kind if kind in TEXT_FORMATS else ".txt"

    def texts(self) -> Iterator[str]:
        """The raw text of each document."""
        for batch in read_records(self.path, column=self.column, metadata=False, fmt=self.kind):
            yield from batch.texts

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
