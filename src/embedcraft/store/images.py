"""Images as documents: read a folder or a table of image paths, encode them with a report of
the files that could not be read, and index them into a collection.

A folder's images get ids = their paths relative to the folder (`inputs.list_image_files`) and
metadata {"path", "suffix"}; a table (CSV/TSV/JSONL/Parquet) names its images in one column
(`column`, default "path"), relative paths being relative to the table's folder, and its other
columns are metadata, as for texts. The text a collection stores for an image is its absolute
path: the image encoder reads the file again from it.

An image that cannot be read (missing, empty, damaged, not an image, too large) is never written
with a made-up vector: it is left out and named, with the reason, in `failed`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders.contract import Encoder, InputKind
from ..errors import InputError
from ..inputs.images import IMAGE_SUFFIXES, is_image_file, list_image_files
from ..io import read_texts
from ._base import first_duplicate
from ._interface import VectorCollection
from .ingest import typed_metadata

__all__ = [
    "EncodedImages",
    "FailedImage",
    "ImageTable",
    "IndexedImages",
    "collection_input_kind",
    "encode_images",
    "index_images",
    "read_images",
    "require_kind",
]

DEFAULT_PATH_COLUMN = "path"
_INDEX_CHUNK = 256


@dataclass
class ImageTable:
    """Images to encode or index: ids, absolute paths and metadata, row by row."""

    ids: list[str]
    paths: list[Path]
    metadata: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class FailedImage:
    """An image left out: its id, its path and why it could not be read."""

    id: str
    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "path": self.path, "reason": self.reason}


@dataclass
class EncodedImages:
    """The vectors of the images that could be read (in table order), and those that could not."""

    ids: list[str]
    paths: list[Path]
    vectors: np.ndarray
    failed: list[FailedImage]


@dataclass
class IndexedImages:
    """What `index_images` stored (ids) and left out (`failed`)."""

    ids: list[str]
    failed: list[FailedImage]


def _suffixes() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))


def read_images(
    source: str | os.PathLike[str],
    *,
    column: str | None = None,
    id_column: str | None = None,
) -> ImageTable:
    """The images of a folder (recursively, ids = relative paths) or of a table's path column.

    Files are not opened here; an unreadable one is found (and reported) when it is encoded.
    """
    path = Path(source)
    if path.is_dir():
        if column or id_column:
            raise InputError(f"{path} is a folder: --column/--id-column apply to tables")
        found = list_image_files(path)
        if not found:
            raise InputError(f"{path}: no image files in this folder ({_suffixes()})")
        return ImageTable(
            [image_id for image_id, _ in found],
            [file.resolve() for _, file in found],
            [{"path": image_id, "suffix": file.suffix.lower()} for image_id, file in found],
        )
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if is_image_file(path):
        raise InputError(f"{path} is one image: give a folder of images or a table of paths")
    if path.name.lower().endswith((".txt", ".txt.gz")):
        raise InputError(
            f"{path} is a text file; an image encoder reads a folder of images, or a table "
            "(CSV/TSV/JSONL/Parquet) with a column of image paths"
        )
    wanted = column or DEFAULT_PATH_COLUMN
    try:
        table = read_texts(path, column=wanted, id_column=id_column)
    except InputError as exc:
        if column is None and f"no column {wanted!r}" in str(exc):
            raise InputError(f"{exc}; pass --column with the column of image paths") from None
        raise
    if not table.texts:
        raise InputError(f"{path}: no rows in this file")
    if not any(is_image_file(text.strip()) for text in table.texts):
        raise InputError(
            f"{path}: column {wanted!r} holds no image paths (no value ends in an image "
            f"suffix: {_suffixes()}); an image encoder reads image files"
        )
    dup = first_duplicate(table.ids)
    if dup is not None:
        raise InputError(f"{path}: id {dup!r} appears on more than one row")
    base = path.resolve().parent
    paths = [(base / text.strip()).resolve() for text in table.texts]
    metadata = table.metadata or [{} for _ in table.ids]
    return ImageTable(list(table.ids), paths, typed_metadata(path, metadata))


def require_kind(encoder: Encoder, kind: InputKind, what: str) -> None:
    """Refuse `encoder` unless it reads `kind` inputs; `what` says what was given."""
    if encoder.input_kind != kind:
        raise InputError(
            f"encoder {encoder.name!r} reads {encoder.input_kind} inputs, but {what} holds "
            f"{kind} inputs: pick an encoder that reads {kind} (see `embedcraft models`)"
        )


def encode_images(
    encoder: Encoder,
    table: ImageTable,
    *,
    batch_size: int | None = None,
    progress: bool = False,
) -> EncodedImages:
    """Encode every image of `table`; those that cannot be read are left out and reported."""
    require_kind(encoder, InputKind.IMAGE, "the input")
    encoded = encoder.encode_with_report(
        [str(p) for p in table.paths], batch_size=batch_size, progress=progress
    )
    failed = encoded.report.failed
    keep = [i for i in range(len(table)) if i not in failed]
    vectors = np.asarray(encoded.vectors, dtype=np.float32)[keep]
    return EncodedImages(
        [table.ids[i] for i in keep],
        [table.paths[i] for i in keep],
        vectors,
        _failures(table, sorted(failed.items())),
    )


def _failures(table: ImageTable, failed: Sequence[tuple[int, str]]) -> list[FailedImage]:
    return [FailedImage(table.ids[i], str(table.paths[i]), why) for i, why in failed]


def collection_input_kind(collection: VectorCollection) -> InputKind:
    """What a collection's encoders read (one kind: collections never mix them)."""
    kinds = {collection.encoder(name).input_kind for name in collection.encoder_names}
    if len(kinds) != 1:
        raise InputError(f"the collection's encoders read different input kinds: {sorted(kinds)}")
    return kinds.pop()


def index_images(
    collection: VectorCollection,
    table: ImageTable,
    *,
    batch_size: int = _INDEX_CHUNK,
    progress: bool = False,
) -> IndexedImages:
    """Add (or replace) the images of `table` in an image collection, `batch_size` at a time.

    Each chunk is encoded by every encoder of the collection; an image any of them cannot read
    is left out and reported, the others are stored (text = the absolute path) with their
    metadata and vectors in one transaction per chunk.
    """
    if collection_input_kind(collection) != InputKind.IMAGE:
        raise InputError(
            "this collection's encoders read text; index images into a collection created "
            "with an image encoder (e.g. -e efficientnet-lite0)"
        )
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    encoders = [collection.encoder(name) for name in collection.encoder_names]
    stored: list[str] = []
    failed: list[FailedImage] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(table), desc="Indexing", unit=" images")
    try:
        for start in range(0, len(table), batch_size):
            rows = list(range(start, min(start + batch_size, len(table))))
            chunk = ImageTable(
                [table.ids[i] for i in rows],
                [table.paths[i] for i in rows],
                [table.metadata[i] for i in rows] if table.metadata else [],
            )
            stored_chunk, failed_chunk = _index_chunk(collection, encoders, chunk)
            stored += stored_chunk
            failed += failed_chunk
            if bar is not None:
                bar.update(len(rows))
    finally:
        if bar is not None:
            bar.close()
    return IndexedImages(stored, failed)


def _index_chunk(
    collection: VectorCollection, encoders: list[Any], chunk: ImageTable
) -> tuple[list[str], list[FailedImage]]:
    paths = [str(p) for p in chunk.paths]
    reports = [e.encode_with_report(paths) for e in encoders]
    reasons: dict[int, str] = {}
    for encoded in reports:
        for i, why in encoded.report.failed.items():
            reasons.setdefault(i, why)
    keep = [i for i in range(len(chunk)) if i not in reasons]
    if keep:
        collection.upsert(
            [paths[i] for i in keep],
            [chunk.ids[i] for i in keep],
            [chunk.metadata[i] for i in keep] if chunk.metadata else None,
            vectors={
                e.name: np.asarray(r.vectors, dtype=np.float32)[keep]
                for e, r in zip(encoders, reports, strict=True)
            },
        )
    return [chunk.ids[i] for i in keep], _failures(chunk, sorted(reasons.items()))
