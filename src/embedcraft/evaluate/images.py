"""Image classification evaluation: how well an image encoder's vectors separate labelled classes.

Data is a labelled image folder (`class/image.jpg`: the first folder under the root is the
label) or a CSV/TSV with an image-path column and a label column (paths relative to the CSV's
folder; an optional `split` column with `train`/`test` fixes the probe's split). Three figures,
on unit-length vectors compared by cosine:

- k-NN accuracy (k = 10): each image, left out, takes the majority label of its k nearest
  other images (a tie goes to the tied label with the larger summed similarity);
- probe accuracy: a logistic regression (scikit-learn, C=10) trained on the train split's vectors,
  scored on the test split (the data's `split` column, else a fixed stratified 80/20 split);
- retrieval precision@10: the mean share of each image's 10 nearest other images that share
  its label.

Images that cannot be read are left out of every figure and named in `failed`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders.base import Encoder
from ..encoders.contract import InputKind
from ..errors import InputError
from ..inputs.images import is_image_file, list_image_files
from ..inputs.records import csv_dict_reader, read_text_file
from ..vectors import top_k

__all__ = [
    "ImageClassificationResult",
    "LabelledImages",
    "evaluate_image_classification",
    "load_labelled_images",
]

PATH_COLUMNS = ("path", "image", "file", "filename", "filepath", "image_path")
"""Column names taken as the image path when none is given (first match, any case)."""
LABEL_COLUMNS = ("label", "class", "category", "target")
"""Column names taken as the label when none is given (first match, any case)."""


@dataclass
class LabelledImages:
    """Image files with a label each; `split` is "train"/"test" per image when the data fixes
    the probe's split, else None."""

    name: str
    ids: list[str]
    paths: list[Path]
    labels: list[str]
    split: list[str] | None = None

    def __post_init__(self) -> None:
        if not len(self.ids) == len(self.paths) == len(self.labels):
            raise InputError("ids, paths and labels must have the same length")
        if self.split is not None and len(self.split) != len(self.ids):
            raise InputError("split must have one entry per image")

    def head(self, limit: int) -> LabelledImages:
        """At most `limit` images, taken evenly across the classes (round robin, in order)."""
        if limit >= len(self.ids):
            return self
        by_class: dict[str, list[int]] = {}
        for i, label in enumerate(self.labels):
            by_class.setdefault(label, []).append(i)
        chosen: list[int] = []
        depth = 0
        while len(chosen) < limit:
            for rows in by_class.values():
                if depth < len(rows) and len(chosen) < limit:
                    chosen.append(rows[depth])
            depth += 1
        chosen.sort()
        return LabelledImages(
            self.name,
            [self.ids[i] for i in chosen],
            [self.paths[i] for i in chosen],
            [self.labels[i] for i in chosen],
            None if self.split is None else [self.split[i] for i in chosen],
        )


@dataclass
class ImageClassificationResult:
    """The figures of one encoder on one labelled image set."""

    encoder: str
    dataset: str
    images: int
    """Images evaluated (readable ones)."""
    classes: int
    knn_accuracy: float
    probe_accuracy: float
    precision_at_10: float
    k: int
    train: int
    test: int
    split: str
    """Where the probe's split came from: "data" (a split column) or "stratified 80/20"."""
    encode_seconds: float
    seconds: float
    failed: dict[str, str] = field(default_factory=dict)
    """Image id -> why it could not be read (left out of every figure)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "dataset": self.dataset,
            "images": self.images,
            "classes": self.classes,
            f"knn@{self.k}_accuracy": round(self.knn_accuracy, 4),
            "probe_accuracy": round(self.probe_accuracy, 4),
            "precision@10": round(self.precision_at_10, 4),
            "train": self.train,
            "test": self.test,
            "split": self.split,
            "failed": len(self.failed),
            "encode_seconds": round(self.encode_seconds, 2),
            "seconds": round(self.seconds, 2),
        }


def _pick(columns: list[str], given: str | None, choices: tuple[str, ...], what: str) -> str:
    if given is not None:
        if given not in columns:
            raise InputError(f"no {what} column {given!r} (columns: {', '.join(columns)})")
        return given
    lowered = {c.lower(): c for c in columns}
    for name in choices:
        if name in lowered:
            return lowered[name]
    raise InputError(
        f"cannot tell which column holds the {what} (columns: {', '.join(columns)}); "
        f"name one of {', '.join(choices)} or pass it"
    )


def _from_folder(root: Path) -> LabelledImages:
    ids, paths, labels = [], [], []
    loose = []
    for image_id, path in list_image_files(root):
        if "/" not in image_id:
            loose.append(image_id)
            continue
        ids.append(image_id)
        paths.append(path)
        labels.append(image_id.split("/", 1)[0])
    if not ids:
        where = f" (only loose images such as {loose[0]!r})" if loose else ""
        raise InputError(
            f"{root}: no labelled images: expected class folders, class/image.jpg{where}"
        )
    return LabelledImages(root.name, ids, paths, labels)


def _from_table(path: Path, path_column: str | None, label_column: str | None) -> LabelledImages:
    text = read_text_file(path)
    reader = csv_dict_reader(io.StringIO(text), tsv=path.suffix.lower() in (".tsv", ".tab"))
    columns = list(reader.fieldnames or [])
    if not columns:
        raise InputError(f"{path}: empty file (expected a header with a path and a label column)")
    path_key = _pick(columns, path_column, PATH_COLUMNS, "image path")
    label_key = _pick(columns, label_column, LABEL_COLUMNS, "label")
    split_key = next((c for c in columns if c.lower() == "split"), None)
    ids, paths, labels, splits = [], [], [], []
    try:
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            image, label = (row.get(path_key) or "").strip(), (row.get(label_key) or "").strip()
            if not image or not label:
                raise InputError(f"{where}: empty {path_key!r} or {label_key!r}")
            full = Path(image) if Path(image).is_absolute() else path.parent / image
            ids.append(image)
            paths.append(full)
            labels.append(label)
            if split_key is not None:
                splits.append((row.get(split_key) or "").strip().lower())
    except csv.Error as exc:
        raise InputError(f"{path}, line {reader.line_num}: {exc}") from None
    if not ids:
        raise InputError(f"{path}: no rows")
    fixed = split_key is not None and set(splits) == {"train", "test"}
    name = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    return LabelledImages(name, ids, paths, labels, splits if fixed else None)


def load_labelled_images(
    source: str | os.PathLike[str],
    *,
    path_column: str | None = None,
    label_column: str | None = None,
) -> LabelledImages:
    """A labelled image set from a folder of class folders or a CSV/TSV of path,label.

    A folder's images directly under the root (with no class folder) are skipped. A CSV's
    columns are guessed (`PATH_COLUMNS`, `LABEL_COLUMNS`) unless given; its relative paths are
    read from the CSV's folder; a `split` column of train/test fixes the probe's split.
    """
    root = Path(source)
    if root.is_dir():
        data = _from_folder(root)
    elif root.is_file():
        if is_image_file(root):
            raise InputError(f"{root} is one image: give a folder of class folders or a CSV")
        data = _from_table(root, path_column, label_column)
    else:
        raise InputError(f"{root}: no such file or folder")
    return data


def knn_figures(vectors: np.ndarray, labels: np.ndarray, k: int) -> tuple[float, float]:
    """Leave-one-out k-NN accuracy and precision@10 for unit-length `vectors` (cosine)."""
    n = len(vectors)
    depth = min(max(k, 10) + 1, n)
    found = top_k(vectors, vectors, depth, metric="cosine")
    correct = 0
    precision = 0.0
    for i in range(n):
        rows, scores = found.indices[i], found.scores[i]
        keep = rows != i
        if keep.all():  # the image itself was not among them (ties): drop the last one
            keep[-1] = False
        rows, scores = rows[keep], scores[keep]
        neighbour_labels = labels[rows]
        precision += float(np.mean(neighbour_labels[:10] == labels[i]))
        votes: dict[Any, tuple[int, float]] = {}
        for label, score in zip(neighbour_labels[:k], scores[:k], strict=True):
            count, total = votes.get(label, (0, 0.0))
            votes[label] = (count + 1, total + float(score))
        best = max(votes.items(), key=lambda item: item[1])[0]
        correct += int(best == labels[i])
    return correct / n, precision / n


def probe_accuracy(
    vectors: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray
) -> float:
    """Accuracy on `test` rows of a logistic regression fitted on the `train` rows."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(labels[train])) < 2:
        raise InputError("the probe's train split has fewer than 2 classes")
    model = LogisticRegression(max_iter=1000, C=10.0)  # as compare's text probe
    model.fit(vectors[train], labels[train])
    return float(np.mean(model.predict(vectors[test]) == labels[test]))


def _split(
    labels: np.ndarray, split: list[str] | None, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    if split is not None:
        marks = np.asarray(split)
        train, test = np.flatnonzero(marks == "train"), np.flatnonzero(marks == "test")
        if len(train) and len(test):
            return train, test, "data"
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(labels, return_counts=True)
    rows = np.arange(len(labels))
    n_test = math.ceil(0.2 * len(labels))
    fits = counts.min() >= 2 and len(counts) <= min(n_test, len(labels) - n_test)
    stratify = labels if fits else None
    try:
        train, test = train_test_split(rows, test_size=0.2, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise InputError(f"cannot split {len(labels)} images for the probe: {exc}") from None
    return np.sort(train), np.sort(test), "stratified 80/20" if stratify is not None else "80/20"


def evaluate_image_classification(
    encoder: Encoder,
    data: LabelledImages | str | os.PathLike[str],
    *,
    k: int = 10,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
) -> ImageClassificationResult:
    """k-NN accuracy, logistic-probe accuracy and precision@10 of an image encoder on `data`
    (a `LabelledImages`, a folder of class folders, or a CSV of path,label).

    `limit` keeps at most that many images, evenly across classes. Raises InputError for a
    text encoder, fewer than 2 classes or fewer than k + 1 readable images.
    """
    if encoder.input_kind is not InputKind.IMAGE:
        raise InputError(
            f"{encoder.name} reads {encoder.input_kind.value}, not images: image "
            "classification needs an image encoder (efficientnet-lite0, pixels, ...)"
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    started = time.perf_counter()
    images = data if isinstance(data, LabelledImages) else load_labelled_images(data)
    if limit is not None:
        if limit < 2:
            raise InputError(f"limit must be at least 2, got {limit}")
        images = images.head(limit)
    t0 = time.perf_counter()
    encoded = encoder.encode_with_report(
        [str(p) for p in images.paths], batch_size=batch_size, progress=progress
    )
    vectors, report = encoded.vectors, encoded.report
    encode_seconds = time.perf_counter() - t0
    failed = {images.ids[i]: why for i, why in sorted(report.failed.items())}
    good = np.asarray([i for i in range(len(images.ids)) if i not in report.failed], dtype=int)
    matrix = np.asarray(vectors, dtype=np.float32)[good]
    labels = np.asarray(images.labels, dtype=object)[good]
    classes = len(set(labels.tolist()))
    if classes < 2:
        raise InputError(f"{images.name}: {classes} class among the readable images; need 2+")
    if len(good) < k + 1:
        raise InputError(f"{images.name}: {len(good)} readable images; k={k} needs {k + 1}+")
    knn, precision = knn_figures(matrix, labels, k)
    split = None if images.split is None else [images.split[i] for i in good]
    train, test, how = _split(labels, split, seed)
    probe = probe_accuracy(matrix, labels, train, test)
    return ImageClassificationResult(
        encoder=encoder.name,
        dataset=images.name,
        images=len(good),
        classes=classes,
        knn_accuracy=knn,
        probe_accuracy=probe,
        precision_at_10=precision,
        k=k,
        train=len(train),
        test=len(test),
        split=how,
        encode_seconds=encode_seconds,
        seconds=time.perf_counter() - started,
        failed=failed,
    )
