"""Images through the commands: encode and index a folder (or a table of paths), search a
collection by an image, and find near duplicates. Routed by the encoder's declared input kind."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..catalog import list_encoders, load_encoder
from ..encoders.base import Encoder
from ..encoders.contract import InputKind
from ..errors import InputError
from ..inputs.images import list_image_files
from ..io import write_vectors
from ..store import VectorCollection, open_collection, parse_where
from ..store.dedup import DuplicateGroup, collection_near_duplicates, near_duplicates
from ..store.images import (
    FailedImage,
    ImageTable,
    collection_input_kind,
    encode_images,
    index_images,
    read_images,
)
from ..store.ingest import FOLDER_SUFFIXES, DocumentBatches
from ._common import UsageError, add_command, encoder_from_args, note, print_json, progress

__all__ = [
    "encode_image_files",
    "index_image_files",
    "new_collection_kind",
    "read_source",
    "refuse_images_for_text",
    "refuse_text_query",
    "register",
    "search_by_image",
]


def refuse_images_for_text(source: str, reader: str) -> None:
    """A text encoder given a folder of images: one clear error (a folder with texts, even beside
    images, passes)."""
    path = Path(source)
    if not path.is_dir() or any(
        p.suffix.lower() in FOLDER_SUFFIXES and p.is_file() for p in path.rglob("*")
    ):
        return
    if list_image_files(path):
        raise InputError(
            f"{source} is a folder of images, but {reader} text: pick an image encoder "
            "(efficientnet-lite0, pixels)"
        )


def _report_failed(failed: list[FailedImage], done: str) -> None:
    """Name every image left out, on stderr."""
    for item in failed:
        note(f"could not read {item.reason}")
    if failed:
        note(f"{len(failed)} image(s) could not be read and were left out; {done}")


def encode_image_files(args: argparse.Namespace, encoder: Encoder) -> int:
    """`encode -i FOLDER_OR_TABLE -o OUT -e IMAGE_ENCODER`."""
    if args.fit_on:
        note(f"{encoder.name} needs no fitting; --fit-on ignored")
    table = read_images(args.input, column=args.column, id_column=args.id_column)
    t0 = time.perf_counter()
    encoded = encode_images(encoder, table, batch_size=args.batch_size, progress=progress())
    seconds = time.perf_counter() - t0
    _report_failed(encoded.failed, f"the {len(encoded.ids)} others were written")
    if not encoded.ids:
        raise InputError(f"{args.input}: none of the {len(table)} images could be read")
    write_vectors(args.output, encoded.vectors, encoded.ids)
    if args.save_encoder:
        encoder.save(args.save_encoder)
    report = {
        "output": str(args.output),
        "encoder": encoder.name,
        "rows": int(encoded.vectors.shape[0]),
        "dim": int(encoded.vectors.shape[1]),
        "sparse": False,
        "fitted_on": None,
        "seconds": round(seconds, 4),
        "failed": [f.to_dict() for f in encoded.failed],
    }
    if args.json:
        print_json(report)
    else:
        print(
            f"wrote {report['rows']} x {report['dim']} vectors to {args.output} "
            f"({encoder.name}, {seconds:.2f} s)"
        )
    return 0


def new_collection_kind(encoders: list[str] | None) -> InputKind | None:
    """What the encoders named for a new collection read (None when there are none, or when
    they differ: creating the collection then says why)."""
    if not encoders:
        return None
    catalog = {entry.name: entry.input_kind for entry in list_encoders()}
    kinds = {catalog[e] if e in catalog else load_encoder(e).input_kind for e in encoders}
    return kinds.pop() if len(kinds) == 1 else None


def read_source(args: argparse.Namespace, kind: InputKind) -> ImageTable | DocumentBatches:
    """`index`'s SOURCE, read the way the collection's encoders need (texts: streamed)."""
    if kind == InputKind.IMAGE:
        return read_images(args.source, column=args.column, id_column=args.id_column)
    refuse_images_for_text(args.source, "the collection's encoders read")
    return DocumentBatches(args.source, text_column=args.column, id_column=args.id_column)


def index_image_files(
    args: argparse.Namespace, col: VectorCollection, table: ImageTable
) -> dict[str, Any]:
    """`index SOURCE -c COL` for an image collection: what the command reports."""
    t0 = time.perf_counter()
    result = index_images(col, table, batch_size=args.batch_size, progress=progress())
    seconds = time.perf_counter() - t0
    _report_failed(result.failed, f"the {len(result.ids)} others were indexed")
    return {
        "indexed": len(result.ids),
        "seconds": seconds,
        "failed": [f.to_dict() for f in result.failed],
    }


def search_by_image(args: argparse.Namespace, col: VectorCollection) -> list[Any]:
    """`search --image FILE -c COL`: the hits of the collection's images closest to FILE."""
    if collection_input_kind(col) != InputKind.IMAGE:
        raise InputError(
            f"{args.collection} is a collection of texts: --image searches collections of "
            "images; give a text QUERY"
        )
    if not Path(args.image).is_file():
        raise InputError(f"{args.image}: no such image file")
    where = parse_where(args.where or [])
    return col.search(
        str(Path(args.image).resolve()), k=args.k, where=where or None, encoder=args.encoder
    )


def refuse_text_query(args: argparse.Namespace, col: VectorCollection) -> None:
    """A text query to a collection of images: one clear error."""
    if collection_input_kind(col) == InputKind.IMAGE:
        raise InputError(
            f"{args.collection} is a collection of images: search it with --image FILE, "
            "not a text query"
        )


def _print_groups(groups: list[DuplicateGroup], threshold: float) -> None:
    if not groups:
        print(f"no near duplicates (cosine >= {threshold})")
    for n, group in enumerate(groups, start=1):
        print(f"group {n} ({len(group.ids)} images):")
        for image_id, score in zip(group.ids, group.similarities, strict=True):
            print(f"  {score:8.4f}  {image_id}")


def cmd_dedup(args: argparse.Namespace) -> int:
    """`dedup SOURCE -e ENC` or `dedup -c COL`: groups of near-duplicate images."""
    failed: list[FailedImage] = []
    if args.collection:
        if args.source:
            raise UsageError("give either SOURCE (a folder or table of images) or --collection")
        with open_collection(args.collection) as col:
            groups = collection_near_duplicates(col, args.threshold, encoder=args.encoder)
    else:
        if not args.source or not args.encoder:
            raise UsageError("give SOURCE --encoder NAME, or --collection DIR_OR_URL")
        encoder = encoder_from_args(args)
        table = read_images(args.source, column=args.column, id_column=args.id_column)
        encoded = encode_images(encoder, table, batch_size=args.batch_size, progress=progress())
        failed = encoded.failed
        _report_failed(failed, f"the {len(encoded.ids)} others were compared")
        groups = near_duplicates(encoded.vectors, encoded.ids, args.threshold)
    if args.json:
        print_json(
            {
                "threshold": args.threshold,
                "groups": [g.to_dict() for g in groups],
                "failed": [f.to_dict() for f in failed],
            }
        )
    else:
        _print_groups(groups, args.threshold)
    return 0


def register(sub: Any) -> None:
    """Add `dedup` to the top-level sub-parsers."""
    p = add_command(
        sub,
        "dedup",
        "find groups of near-duplicate images (a folder, a table of paths, or a collection)",
        cmd_dedup,
    )
    p.add_argument(
        "source", nargs="?", metavar="SOURCE", help="a folder of images, or a CSV/JSONL/Parquet"
    )
    p.add_argument(
        "--encoder", "-e", metavar="NAME_OR_PATH", help="image encoder (e.g. efficientnet-lite0)"
    )
    p.add_argument(
        "--collection", "-c", metavar="DIR_OR_URL", help="compare a collection's stored vectors"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.95,
        help="cosine at or above which two images are near duplicates (default 0.95)",
    )
    p.add_argument("--column", metavar="NAME", help="image-path column of a table (default: path)")
    p.add_argument("--id-column", metavar="NAME", help="id column of a table")
    p.add_argument("--batch-size", type=int, metavar="N", help="images per batch")
