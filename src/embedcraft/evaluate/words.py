"""Word-level evaluation: similarity pairs (Spearman) and analogies (accuracy per section).

The rules follow gensim's `evaluate_word_pairs` / `evaluate_word_analogies`, so numbers agree:
only the `restrict_vocab` most frequent words count as known, words are matched
case-insensitively (the most frequent spelling wins), and pairs or questions with an unknown
word are dropped from the score and counted.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from ..errors import InputError
from ..inputs import read_text_file
from ..vectors import top_k
from ..words import WordVectors
from ._correlation import correlations

__all__ = ["AnalogyResult", "WordPairsResult", "evaluate_analogies", "evaluate_word_pairs"]

OOV_RULE = "pairs/questions with a word outside the top restrict_vocab words are dropped"
_QUESTIONS_AT_ONCE = 512
"""Analogy questions answered per step (each step moves the progress bar)."""


@dataclass
class WordPairsResult:
    """Spearman and Pearson correlation of cosine similarity with human scores."""

    file: str
    spearman: float
    """NaN when the vectors give every pair the same similarity (no correlation exists)."""
    pearson: float
    pairs: int
    """Pairs scored (both words known)."""
    oov_pairs: int
    """Pairs dropped because a word is outside the vocabulary."""
    rule: str = OOV_RULE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class AnalogyResult:
    """Accuracy of a:b :: c:? questions, overall and per section."""

    file: str
    accuracy: float
    correct: int
    questions: int
    """Questions answered (all four words known)."""
    oov_questions: int
    method: str
    sections: list[dict[str, Any]] = field(default_factory=list)
    rule: str = OOV_RULE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _known_rows(
    wv: WordVectors, restrict_vocab: int | None, case_insensitive: bool
) -> dict[str, int]:
    """word (uppercased when case-insensitive) -> row, over the most frequent words only."""
    keys = wv.words[:restrict_vocab] if restrict_vocab else wv.words
    if case_insensitive:  # the most frequent spelling wins, as in gensim
        return {w.upper(): i for i, w in reversed(list(enumerate(keys)))}
    return {w: i for i, w in enumerate(keys)}


def evaluate_word_pairs(
    wv: WordVectors,
    path: str | os.PathLike[str],
    *,
    restrict_vocab: int | None = 300_000,
    case_insensitive: bool = True,
) -> WordPairsResult:
    """Score a `word1<TAB>word2<TAB>score` file (a header line and # comments are skipped)."""
    known = _known_rows(wv, restrict_vocab, case_insensitive)
    gold: list[float] = []
    rows_a: list[int] = []
    rows_b: list[int] = []
    oov = 0
    for n, line in enumerate(read_text_file(Path(path)).split("\n"), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 3:
            raise InputError(f"{path}, line {n}: expected word1<TAB>word2<TAB>score")
        try:
            score = float(fields[2])
        except ValueError:
            if n == 1 or not gold:
                continue  # a header line
            raise InputError(f"{path}, line {n}: score {fields[2]!r} is not a number") from None
        if not math.isfinite(score):
            raise InputError(f"{path}, line {n}: score {fields[2]!r} is not a finite number")
        a, b = (f.upper() for f in fields[:2]) if case_insensitive else fields[:2]
        if a not in known or b not in known:
            oov += 1
            continue
        gold.append(score)
        rows_a.append(known[a])
        rows_b.append(known[b])
    if not gold:
        raise InputError(f"{path}: no pair has both words in the vocabulary ({oov} pairs OOV)")
    unit = wv.normalized
    model = np.einsum("ij,ij->i", unit[rows_a], unit[rows_b])
    dropped = f"{oov} pair{'' if oov == 1 else 's'} dropped: a word outside the vocabulary"
    source = f"{path} ({dropped})" if oov else str(path)
    spearman, pearson = correlations(gold, model, source)
    return WordPairsResult(
        file=str(path),
        spearman=spearman,
        pearson=pearson,
        pairs=len(gold),
        oov_pairs=oov,
    )


def _read_analogies(path: Path) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    for n, line in enumerate(read_text_file(path).split("\n"), start=1):
        if line.startswith(": "):
            sections.append((line[2:].strip(), []))
            continue
        words = line.split()
        if not words:
            continue
        if not sections:
            raise InputError(f"{path}, line {n}: a question before the first ': section' line")
        if len(words) != 4:
            raise InputError(f"{path}, line {n}: expected four words 'a b c d'")
        a, b, c, d = words
        sections[-1][1].append((a, b, c, d))
    if not sections:
        raise InputError(f"{path}: no analogy sections (lines starting with ': ')")
    return sections


def _answers_3cosadd(unit: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The 8 best rows for each question (rows q[:, :3] excluded later)."""
    targets = unit[q[:, 1]] - unit[q[:, 0]] + unit[q[:, 2]]
    return top_k(targets, unit, min(8, unit.shape[0]), "dot").indices


def _answers_3cosmul(unit: np.ndarray, q: np.ndarray, batch: int = 32) -> np.ndarray:
    out = np.zeros((len(q), min(8, unit.shape[0])), dtype=np.int64)
    for start in range(0, len(q), batch):
        part = q[start : start + batch]
        cos = (unit @ unit[part[:, :3].ravel()].T + 1.0) / 2.0  # (V, 3 * batch)
        cos = cos.reshape(unit.shape[0], len(part), 3)
        scores = cos[:, :, 1] * cos[:, :, 2] / (cos[:, :, 0] + 1e-3)  # (V, batch)
        k = out.shape[1]
        best = np.argpartition(-scores, k - 1, axis=0)[:k].T
        order = np.argsort(-np.take_along_axis(scores.T, best, axis=1), axis=1, kind="stable")
        out[start : start + len(part)] = np.take_along_axis(best, order, axis=1)
    return out


def evaluate_analogies(
    wv: WordVectors,
    path: str | os.PathLike[str],
    *,
    restrict_vocab: int | None = 300_000,
    case_insensitive: bool = True,
    method: Literal["3cosadd", "3cosmul"] = "3cosadd",
    progress: bool = False,
) -> AnalogyResult:
    """Accuracy on a Google-format analogy file (`: section` lines, then `a b c d` lines).

    The answer is the best word among the top `restrict_vocab`, excluding a, b and c.
    `progress` shows the questions done so far (skipped ones included) as a bar on stderr.
    """
    if method not in ("3cosadd", "3cosmul"):
        raise InputError(f"unknown analogy method {method!r}: use 3cosadd or 3cosmul")
    known = _known_rows(wv, restrict_vocab, case_insensitive)

    def norm(word: str) -> str:
        return word.upper() if case_insensitive else word

    unit = wv.normalized[: restrict_vocab or None]
    answer = _answers_3cosadd if method == "3cosadd" else _answers_3cosmul
    sections, total_correct, total, oov = [], 0, 0, 0
    parsed = _read_analogies(Path(path))
    count = sum(len(questions) for _, questions in parsed)
    with tqdm(total=count, desc="analogies", unit=" questions", disable=not progress) as bar:
        for name, questions in parsed:
            usable = []
            for question in questions:
                words = [norm(w) for w in question]
                if all(w in known for w in words):
                    usable.append(words)
                else:
                    oov += 1
            bar.update(len(questions) - len(usable))
            correct = 0
            if usable:
                q = np.array([[known[w] for w in words] for words in usable], dtype=np.int64)
                parts = []
                for start in range(0, len(q), _QUESTIONS_AT_ONCE):  # a bar that moves
                    parts.append(answer(unit, q[start : start + _QUESTIONS_AT_ONCE]))
                    bar.update(len(parts[-1]))
                candidates = np.concatenate(parts)
                for words, rows, cands in zip(usable, q, candidates, strict=True):
                    picks = [r for r in cands if r not in rows[:3]][:5]
                    ignore = set(words[:3])
                    predicted = None
                    for r in picks:
                        predicted = norm(wv.words[r])
                        if predicted not in ignore:
                            break
                    correct += predicted == words[3]
            sections.append(
                {
                    "section": name,
                    "correct": correct,
                    "questions": len(usable),
                    "accuracy": correct / len(usable) if usable else 0.0,
                }
            )
            total_correct += correct
            total += len(usable)
    return AnalogyResult(
        file=str(path),
        accuracy=total_correct / total if total else 0.0,
        correct=total_correct,
        questions=total,
        oov_questions=oov,
        method=method,
        sections=sections,
    )
