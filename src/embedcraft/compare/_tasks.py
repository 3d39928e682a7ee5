"""The tasks `compare` runs on each encoder, each on the user's own files.

A task gets a fresh encoder (so a fitting encoder is fitted on that task's data alone) and
returns named scores, or raises `CannotRun` with the reason when the encoder cannot do it (a
sparse encoder has no word vectors; analogies need a word table). Scores are on a 0-100 scale
where they are correlations, accuracies or nDCG, so a table reads at a glance.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..encoders.base import Encoder, fit_if_needed
from ..encoders.contract import InputKind
from ..errors import EmbedcraftError, InputError
from ..io import read_texts
from ..vectors import normalize, top_k
from ..words import WordVectors

__all__ = [
    "AnalogyTask",
    "CannotRun",
    "ClassificationTask",
    "ClusteringTask",
    "ImageClassificationTask",
    "LabelledTexts",
    "Outcome",
    "RetrievalTask",
    "SpeedTask",
    "StsTask",
    "Task",
    "WordSimilarityTask",
    "read_labelled",
]

LABEL_COLUMNS = ("label", "labels", "label_name", "category", "class", "y")


class CannotRun(EmbedcraftError):
    """This encoder cannot do this task; the message says why."""


@dataclass(frozen=True)
class Outcome:
    """What one task gave for one encoder: named scores, and a remark on how when needed."""

    scores: dict[str, float]
    note: str = ""


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with one label each (for classification and clustering)."""

    texts: list[str]
    labels: list[str]

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels))


def read_labelled(
    path: str | os.PathLike[str],
    text_columns: tuple[str, ...] = (),
    label_column: str | None = None,
) -> LabelledTexts:
    """Texts and labels from a CSV/TSV/JSONL/Parquet file.

    `text_columns` joins several columns (e.g. AG News' title and description) with ". ";
    empty means the usual text column. The label column defaults to the first of
    label/labels/label_name/category/class/y present.
    """
    first = text_columns[0] if text_columns else None
    try:
        table = read_texts(path, column=first)
    except InputError as exc:  # read_texts names the option of other commands
        raise InputError(str(exc).replace("pass --column", "name it with --text-column")) from None
    if not table.metadata or not table.metadata[0]:
        raise InputError(f"{path}: no columns besides the text; a labelled file needs a label")
    columns = list(table.metadata[0])
    missing = [c for c in text_columns[1:] if c not in columns]
    if missing:
        raise InputError(f"{path}: no column {missing[0]!r}; columns: {', '.join(columns)}")
    if label_column is None:
        label_column = next((c for c in LABEL_COLUMNS if c in columns), None)
        if label_column is None:
            raise InputError(
                f"{path}: no label column found (looked for {', '.join(LABEL_COLUMNS)}); "
                "name it with --label-column"
            )
    elif label_column not in columns:
        raise InputError(f"{path}: no column {label_column!r}; columns: {', '.join(columns)}")
    texts = [
        ". ".join([text, *(str(meta.get(c) or "") for c in text_columns[1:])])
        for text, meta in zip(table.texts, table.metadata, strict=True)
    ]
    labels = [str(meta.get(label_column)) for meta in table.metadata]
    if len(set(labels)) < 2:
        raise InputError(f"{path}: column {label_column!r} has fewer than two distinct labels")
    return LabelledTexts(texts, labels)


def _dense(vectors: Any) -> np.ndarray:
    return np.asarray(vectors.toarray() if sp.issparse(vectors) else vectors)


def _word_table(encoder: Encoder) -> WordVectors | None:
    """The encoder's word vectors when it pools a word table (GloVe, Word2Vec...), else None."""
    from ..encoders.pooling import WordPoolingEncoder

    return encoder.word_vectors if isinstance(encoder, WordPoolingEncoder) else None


@dataclass
class Task:
    """Base of the tasks: a label for the table and `run(encoder) -> {score name: value}`."""

    kind: ClassVar[str] = "task"
    main: ClassVar[str] = ""
    """The score that stands for the task in the plot and the summary."""
    input_kind: ClassVar[InputKind] = InputKind.TEXT
    """What the task feeds encoders: only encoders that read it run the task (the others are
    skipped with the reason)."""
    label: str = ""

    def run(self, encoder: Encoder) -> Outcome:
        raise NotImplementedError

    @property
    def title(self) -> str:
        """How the task is named in the table: kind and data."""
        return f"{self.kind}:{self.label}" if self.label else self.kind


@dataclass
class _FileTask(Task):
    """A task on one file or folder, labelled by its name unless given a label."""

    path: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self._default_label()

    def _default_label(self) -> str:
        """The file's name without its data suffixes."""
        p = Path(self.path)
        name = p.name
        for suffix in (".gz", ".tsv", ".csv", ".jsonl", ".parquet", ".txt"):
            name = name.removesuffix(suffix)
        return name or p.parent.name


@dataclass
class WordSimilarityTask(_FileTask):
    """Spearman x 100 of cosine similarity against human scores (word1<TAB>word2<TAB>score).

    An encoder that pools a word table is scored on the table (out-of-vocabulary pairs are
    dropped, as gensim does); another dense encoder on the vector of each word encoded as a
    one-word text ("word as text" in the score name); sparse encoders cannot run it.
    """

    kind: ClassVar[str] = "words"
    main: ClassVar[str] = "spearman"

    def run(self, encoder: Encoder) -> Outcome:
        from ..evaluate.words import evaluate_word_pairs
        from ..words import WordVectors

        table = _word_table(encoder)
        if table is not None:
            result = evaluate_word_pairs(table, self.path)
            note = (
                f"{result.oov_pairs} of {result.pairs + result.oov_pairs} pairs out of vocabulary"
            )
            return Outcome({"spearman": 100 * result.spearman}, note if result.oov_pairs else "")
        if encoder.sparse:
            raise CannotRun("a sparse encoder has no word vectors (each word is its own axis)")
        words = sorted(_pair_words(self.path))
        vectors = _dense(encoder.encode(words)).astype(np.float32)
        wv = WordVectors(words, vectors, name=f"{encoder.name} (word as text)")
        result = evaluate_word_pairs(wv, self.path, restrict_vocab=None)
        return Outcome({"spearman": 100 * result.spearman}, "each word encoded as a one-word text")


def _pair_words(path: str | os.PathLike[str]) -> set[str]:
    words: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) == 3 and not line.startswith("#"):
                words.update(w.lower() for w in fields[:2])
    return words


@dataclass
class AnalogyTask(_FileTask):
    """Accuracy x 100 on a Google-format analogy file (3CosAdd over the top 300k words).

    Needs a word table to search for the answer in, so only table-pooling encoders run it.
    """

    kind: ClassVar[str] = "analogy"
    main: ClassVar[str] = "accuracy"
    restrict_vocab: int = 300_000

    def run(self, encoder: Encoder) -> Outcome:
        from ..evaluate.words import evaluate_analogies

        table = _word_table(encoder)
        if table is None:
            raise CannotRun("analogies need a table of word vectors to search for the answer")
        result = evaluate_analogies(table, self.path, restrict_vocab=self.restrict_vocab)
        return Outcome({"accuracy": 100 * result.accuracy})


@dataclass
class StsTask(_FileTask):
    """Spearman x 100 of cosine similarity against gold sentence-pair scores (STS-B or SICK
    layout, or the sentence1, sentence2, score `columns` named)."""

    kind: ClassVar[str] = "sts"
    main: ClassVar[str] = "spearman"
    columns: tuple[str, str, str] | None = None

    def run(self, encoder: Encoder) -> Outcome:
        from ..evaluate.sts import evaluate_sts

        result = evaluate_sts(encoder, self.path, self.columns)
        return Outcome({"spearman": 100 * result.spearman})


@dataclass
class RetrievalTask(_FileTask):
    """nDCG@10 and recall@100 (x 100) on a BEIR-layout folder; fitting encoders fit the corpus."""

    kind: ClassVar[str] = "retrieval"
    main: ClassVar[str] = "ndcg@10"
    split: str = "test"

    def _default_label(self) -> str:
        return Path(self.path).name

    def run(self, encoder: Encoder) -> Outcome:
        from ..evaluate.retrieval import evaluate_retrieval, load_beir

        metrics = evaluate_retrieval(encoder, load_beir(self.path, self.split)).metrics
        return Outcome(
            {"ndcg@10": 100 * metrics["ndcg@10"], "recall@100": 100 * metrics["recall@100"]}
        )


@dataclass
class _LabelledTask(_FileTask):
    text_columns: tuple[str, ...] = ()
    label_column: str | None = None
    seed: int = 0
    _data: LabelledTexts | None = field(default=None, repr=False, compare=False)

    def data(self) -> LabelledTexts:
        """The labelled texts, read once."""
        if self._data is None:
            self._data = read_labelled(self.path, self.text_columns, self.label_column)
        return self._data


@dataclass
class ClassificationTask(_LabelledTask):
    """Accuracy x 100 of a logistic-regression probe and of 10-NN (cosine) on held-out texts.

    One stratified split (80% train, 20% test, fixed seed); a fitting encoder is fitted on the
    training texts only, so nothing of the test texts leaks into it.
    """

    kind: ClassVar[str] = "classify"
    main: ClassVar[str] = "logreg"
    neighbours: int = 10

    def run(self, encoder: Encoder) -> Outcome:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split

        data = self.data()
        labels = np.asarray(data.labels)
        train, test = train_test_split(
            np.arange(len(labels)), test_size=0.2, random_state=self.seed, stratify=labels
        )
        texts = np.asarray(data.texts, dtype=object)
        fit_if_needed(encoder, texts[train].tolist())
        x_train = normalize(encoder.encode(texts[train].tolist()))
        x_test = normalize(encoder.encode(texts[test].tolist()))
        probe = LogisticRegression(max_iter=1000, C=10.0)
        probe.fit(x_train, labels[train])
        logreg = float((probe.predict(x_test) == labels[test]).mean())
        best = top_k(x_test, x_train, self.neighbours, "cosine")
        votes = labels[train][best.indices]
        knn = [_vote(row, weights) for row, weights in zip(votes, best.scores, strict=True)]
        knn_accuracy = float((np.asarray(knn) == labels[test]).mean())
        return Outcome({"logreg": 100 * logreg, "knn": 100 * knn_accuracy})


def _vote(labels: np.ndarray, scores: np.ndarray) -> str:
    """The label with the largest summed similarity among the neighbours."""
    totals: dict[str, float] = {}
    for label, score in zip(labels.tolist(), scores.tolist(), strict=True):
        totals[label] = totals.get(label, 0.0) + max(score, 0.0) + 1e-9
    return max(totals, key=lambda k: totals[k])


@dataclass
class ClusteringTask(_LabelledTask):
    """V-measure x 100 of k-means (k = number of labels) on unit-length vectors."""

    kind: ClassVar[str] = "cluster"
    main: ClassVar[str] = "v-measure"

    def run(self, encoder: Encoder) -> Outcome:
        from sklearn.cluster import KMeans
        from sklearn.metrics import v_measure_score

        data = self.data()
        fit_if_needed(encoder, data.texts)
        vectors = normalize(encoder.encode(data.texts))
        kmeans = KMeans(n_clusters=len(data.classes), n_init=3, random_state=self.seed)
        found = kmeans.fit_predict(vectors)
        return Outcome({"v-measure": 100 * float(v_measure_score(data.labels, found))})


@dataclass
class SpeedTask(Task):
    """Texts encoded per second over a fixed set of texts (after fitting and a warm-up batch).

    The best of up to three passes, stopping once 3 s have been spent: a fast encoder's single
    pass takes milliseconds and would carry the machine's noise.
    """

    kind: ClassVar[str] = "speed"
    main: ClassVar[str] = "texts/s"
    texts: list[str] = field(default_factory=list, repr=False)

    def run(self, encoder: Encoder) -> Outcome:
        if not self.texts:
            raise InputError("the speed task has no texts")
        fit_if_needed(encoder, self.texts)
        encoder.encode(self.texts[:32], cache=False)
        best, spent = float("inf"), 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            encoder.encode(self.texts, cache=False)  # the speed of encoding, never of lookups
            took = time.perf_counter() - t0
            best, spent = min(best, took), spent + took
            if spent > 3.0:
                break
        return Outcome({"texts/s": len(self.texts) / best})


@dataclass
class ImageClassificationTask(_FileTask):
    """Image encoders on a labelled image set (a folder of class folders, or a CSV of
    path,label): 10-NN accuracy (leave-one-out, cosine), logistic-probe accuracy and
    retrieval precision@10, x 100, and images/s of the encoding
    (`embedcraft.evaluate.images.evaluate_image_classification`)."""

    kind: ClassVar[str] = "images"
    main: ClassVar[str] = "knn"
    input_kind: ClassVar[InputKind] = InputKind.IMAGE
    label_column: str | None = None
    path_column: str | None = None
    limit: int | None = None

    def _default_label(self) -> str:
        p = Path(self.path).resolve()
        if p.is_dir():
            return p.parent.name if p.name == "images" and p.parent.name else p.name
        return p.parent.name or p.stem

    def run(self, encoder: Encoder) -> Outcome:
        from ..evaluate.images import evaluate_image_classification, load_labelled_images

        data = load_labelled_images(
            self.path, path_column=self.path_column, label_column=self.label_column
        )
        result = evaluate_image_classification(encoder, data, limit=self.limit)
        scores = {
            "knn": 100 * result.knn_accuracy,
            "logreg": 100 * result.probe_accuracy,
            "p@10": 100 * result.precision_at_10,
            "images/s": result.images / max(result.encode_seconds, 1e-9),
        }
        note = f"{len(result.failed)} unreadable images left out" if result.failed else ""
        return Outcome(scores, note)
