"""`embedcraft plot`: a 2-D picture (PNG) and a standalone HTML explorer of a file's or a
collection's vectors."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import read_texts
from ._common import (
    UsageError,
    add_cache,
    add_command,
    column_args,
    encoder_arg,
    note,
    print_json,
    progress,
)

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add `plot` to the sub-commands."""
    p = add_command(
        sub,
        "plot",
        "project vectors to 2-D (PCA, t-SNE, UMAP): a PNG and/or a standalone HTML explorer "
        "whose search shows each item's nearest neighbours in the original space",
        cmd_plot,
    )
    add_cache(p)
    p.add_argument(
        "input",
        nargs="?",
        metavar="INPUT",
        help="texts: .txt, .csv, .tsv, .jsonl or .parquet; with an image encoder, a folder of "
        "images (coloured by sub-folder) or a table whose --column holds image paths",
    )
    p.add_argument(
        "--collection",
        "-c",
        metavar="DIR_OR_URL",
        help="plot a collection's stored vectors instead (a folder or a postgresql:// URL)",
    )
    encoder_arg(p, postprocess=False, required=False)
    column_args(p, "input")
    p.add_argument(
        "--label-column",
        metavar="NAME",
        help="colour by this column (or, with --collection, this metadata key)",
    )
    p.add_argument("--method", choices=["pca", "tsne", "umap"], default="pca", help="default pca")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N texts")
    p.add_argument("--png", metavar="OUT.png", help="write the picture here")
    p.add_argument("--html", metavar="OUT.html", help="write the explorer page here")
    p.add_argument(
        "--neighbours",
        type=int,
        default=10,
        metavar="K",
        help="nearest neighbours shown per item in the explorer (default 10)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of t-SNE/UMAP (default 0)")
    p.add_argument("--title", help="title of the picture and the page")
    p.add_argument(
        "--thumbnail-size",
        type=int,
        default=64,
        metavar="PX",
        help="images: side of the thumbnails the explorer shows on hover (default 64; the page "
        "embeds them, up to about 24 MB)",
    )


def _labels(metadata: list[dict[str, Any]], column: str | None, where: str) -> list[Any] | None:
    if column is None:
        return None
    present: dict[str, None] = {}
    for row in metadata:
        present.update(dict.fromkeys(row))
    if column not in present:
        listed = ", ".join(present) or "none"
        raise InputError(f"{where}: no column {column!r} to colour by; other columns: {listed}")
    return [row.get(column) for row in metadata]


@dataclass
class _Points:
    ids: list[str]
    texts: list[str]
    vectors: Any
    labels: list[Any] | None
    encoder: str
    images: list[str] | None = None
    """Image paths (thumbnails are made from them), for image inputs."""


def _folder_of(image_id: str) -> str:
    return image_id.rsplit("/", 1)[0] if "/" in image_id else "."


def _image_points(args: argparse.Namespace, encoder: Any) -> _Points:
    """An image folder or a table of image paths, encoded; unreadable images left out."""
    from ..store.images import encode_images, read_images

    table = read_images(args.input, column=args.column, id_column=args.id_column)
    rows = list(range(len(table) if args.limit is None else min(args.limit, len(table))))
    if Path(args.input).is_dir():
        for row in table.metadata:
            row["folder"] = _folder_of(str(row["path"]))
    table.ids = [table.ids[i] for i in rows]
    table.paths = [table.paths[i] for i in rows]
    table.metadata = [table.metadata[i] for i in rows]
    encoded = encode_images(encoder, table, progress=progress())
    for failed in encoded.failed[:10]:
        note(f"left out {failed.id}: {failed.reason}")
    if len(encoded.failed) > 10:
        note(f"... and {len(encoded.failed) - 10} more unreadable images left out")
    if not encoded.ids:
        raise InputError(f"{args.input}: no readable image to plot")
    kept = set(encoded.ids)
    metadata = [m for i, m in zip(table.ids, table.metadata, strict=True) if i in kept]
    column = args.label_column
    if column is None and Path(args.input).is_dir():
        folders = {m["folder"] for m in metadata}
        column = "folder" if len(folders) > 1 else None
        args.label_column = column
    labels = _labels(metadata, column, args.input)
    paths = [str(p) for p in encoded.paths]
    return _Points(encoded.ids, list(encoded.ids), encoded.vectors, labels, encoder.name, paths)


def _points(args: argparse.Namespace) -> _Points:
    """ids, texts, vectors, label values, the encoder's name (and image paths for images),
    from INPUT or --collection."""
    from ..encoders.contract import InputKind

    if args.collection:
        from ..store import open_collection, read_collection
        from ..store.images import collection_input_kind

        stored = read_collection(args.collection, args.encoder, args.limit)
        with open_collection(args.collection) as col:
            kind = collection_input_kind(col)
        labels = _labels(stored.metadata, args.label_column, args.collection)
        images = list(stored.texts) if kind is InputKind.IMAGE else None
        texts = list(stored.ids) if images is not None else stored.texts
        return _Points(stored.ids, texts, stored.vectors, labels, stored.encoder, images)
    from ..catalog import load_encoder
    from ..encoders.base import fit_if_needed

    encoder = load_encoder(args.encoder)
    if encoder.input_kind is InputKind.IMAGE:
        return _image_points(args, encoder)
    if Path(args.input).is_dir():
        raise InputError(
            f"{args.input} is a folder; {encoder.name} reads texts from a file (a folder of "
            "images needs an image encoder such as efficientnet-lite0)"
        )
    table = read_texts(args.input, column=args.column, id_column=args.id_column)
    if args.limit is not None:
        table.ids, table.texts = table.ids[: args.limit], table.texts[: args.limit]
        table.metadata = table.metadata[: args.limit]
    if not table.texts:
        raise InputError(f"{args.input}: no texts to plot")
    labels = _labels(table.metadata, args.label_column, args.input)
    if fit_if_needed(encoder, table.texts):
        note(f"{encoder.name} was fitted on the {len(table.texts)} texts of {args.input}")
    vectors = encoder.encode(table.texts, progress=progress())
    return _Points(table.ids, table.texts, vectors, labels, encoder.name)


def cmd_plot(args: argparse.Namespace) -> int:
    """`plot INPUT --encoder NAME --png OUT.png --html OUT.html`"""
    if bool(args.input) == bool(args.collection):
        raise UsageError("give either an INPUT file or --collection DIR (one of the two)")
    if args.input and not args.encoder:
        raise UsageError("plotting a file needs --encoder NAME (see `embedcraft models`)")
    if not args.png and not args.html:
        raise UsageError("nothing to write: give --png OUT.png and/or --html OUT.html")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    from ..plot import (
        encode_labels,
        make_thumbnails,
        nearest_neighbours,
        project,
        write_explorer,
        write_png,
    )

    t0 = time.perf_counter()
    points = _points(args)
    ids, texts, vectors, values, encoder = (
        points.ids, points.texts, points.vectors, points.labels, points.encoder
    )  # fmt: skip
    encoded = time.perf_counter() - t0
    projection = project(vectors, args.method, seed=args.seed, progress=progress())
    labels = encode_labels(values, len(texts))
    source = args.collection or args.input
    title = args.title or f"{source} · {encoder} · {args.method.upper()}"
    out: dict[str, Any] = {
        "points": len(texts),
        "encoder": encoder,
        "method": args.method,
        "seconds": {"vectors": round(encoded, 3), "projection": round(projection.seconds, 3)},
    }
    if args.png:
        t = time.perf_counter()
        write_png(args.png, projection.coords, labels, title=title)
        out["png"] = args.png
        out["seconds"]["png"] = round(time.perf_counter() - t, 3)
    if args.html:
        t = time.perf_counter()
        neighbours = nearest_neighbours(vectors, args.neighbours)
        out["seconds"]["neighbours"] = round(time.perf_counter() - t, 3)
        thumbnails = None
        if points.images is not None:
            t = time.perf_counter()
            made = make_thumbnails(points.images, size=args.thumbnail_size)
            thumbnails = made.urls
            out["thumbnails"] = {"bytes": made.bytes, "over_budget": made.over_budget}
            out["seconds"]["thumbnails"] = round(time.perf_counter() - t, 3)
            if made.over_budget:
                note(
                    f"{made.over_budget} images have no thumbnail: the page's budget "
                    "(about 24 MB) was spent; use --limit or a smaller --thumbnail-size"
                )
        t = time.perf_counter()
        write_explorer(
            args.html, projection.coords, texts, labels, neighbours,
            ids=ids, title=title, label_column=args.label_column, thumbnails=thumbnails,
        )  # fmt: skip
        out["html"] = args.html
        out["seconds"]["html"] = round(time.perf_counter() - t, 3)
    if args.json:
        print_json(out)
        return 0
    wrote = " and ".join(out[key] for key in ("png", "html") if key in out)
    print(f"{len(texts)} points ({encoder}, {args.method}, {projection.seconds:.1f} s) -> {wrote}")
    return 0
