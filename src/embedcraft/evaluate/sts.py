"""Semantic textual similarity: Spearman and Pearson of cosine similarity against human scores.

Reads a TSV with a header (STS-B as shipped: sentence1, sentence2, score; SICK with
`columns=("sentence_A", "sentence_B", "relatedness_score")`). Each distinct sentence is encoded
once; encoders that need fitting are fitted on the file's sentences.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import csv_error, read_text
from ..encoders.base import Encoder, fit_if_needed
from ..errors import InputError
from ..io import csv_dict_reader
from ..vectors import normalize
from ._correlation import correlations

__all__ = ["StsResult", "evaluate_sts", "read_sts_pairs"]

STSB_COLUMNS = ("sentence1", "sentence2", "score")
SICK_COLUMNS = ("sentence_A", "sentence_B", "relatedness_score")
KNOWN_LAYOUTS = (STSB_COLUMNS, SICK_COLUMNS)
"""The column names `read_sts_pairs` recognises by itself: STS-B's, then SICK's."""


@dataclass
class StsResult:
    """Correlations of one encoder on one sentence-pair file."""

    file: str
    encoder: str
    spearman: float
    pearson: float
    pairs: int
    fitted_on_sentences: bool
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def read_sts_pairs(
    path: str | os.PathLike[str], columns: tuple[str, str, str] | None = None
) -> tuple[list[str], list[str], np.ndarray]:
    """The two sentence columns and the score column of a TSV file with a header line
    (`columns`; None: STS-B's or SICK's names, whichever the file has)."""
    p = Path(path)
    reader = csv_dict_reader(io.StringIO(read_text(p)), tsv=True)
    try:
        names = reader.fieldnames or []
        if columns is None:
            found = [layout for layout in KNOWN_LAYOUTS if set(layout) <= set(names)]
            columns = found[0] if found else STSB_COLUMNS
        missing = [c for c in columns if c not in names]
        if missing:
            raise InputError(
                f"{p}: no column {', '.join(map(repr, missing))}; columns are "
                f"{', '.join(names)} (choose them with --columns s1,s2,score)"
            )
        first, second, scores = [], [], []
        for row in reader:
            score = row[columns[2]]
            try:
                value = float(score)
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value):
                raise InputError(f"{p}, line {reader.line_num}: score {score!r} is not a number")
            scores.append(value)
            first.append(row[columns[0]] or "")
            second.append(row[columns[1]] or "")
    except csv.Error as exc:
        raise csv_error(p, reader.line_num, exc) from None
    if not scores:
        raise InputError(f"{p}: no sentence pairs")
    return first, second, np.asarray(scores, dtype=np.float64)


def evaluate_sts(
    encoder: Encoder,
    path: str | os.PathLike[str],
    columns: tuple[str, str, str] | None = None,
    *,
    progress: bool = False,
) -> StsResult:
    """Cosine similarity of each pair, correlated with the gold scores."""
    first, second, gold = read_sts_pairs(path, columns)
    sentences = list(dict.fromkeys(first + second))
    t0 = time.perf_counter()
    fitted = fit_if_needed(encoder, sentences)
    t1 = time.perf_counter()
    vectors = normalize(encoder.encode(sentences, progress=progress))
    t2 = time.perf_counter()
    row = {s: i for i, s in enumerate(sentences)}
    a = vectors[[row[s] for s in first]]
    b = vectors[[row[s] for s in second]]
    cosine = (
        np.asarray(a.multiply(b).sum(axis=1)).ravel() if hasattr(a, "multiply") else (a * b).sum(1)
    )
    spearman, pearson = correlations(gold, cosine, str(path))
    return StsResult(
        file=str(path),
        encoder=encoder.name,
        spearman=spearman,
        pearson=pearson,
        pairs=len(gold),
        fitted_on_sentences=fitted,
        seconds={"fit": t1 - t0, "encode": t2 - t1, "sentences": len(sentences)},
    )
