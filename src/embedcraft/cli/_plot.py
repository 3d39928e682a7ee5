"""`embedcraft plot`: a 2-D picture (PNG) and a standalone HTML explorer of a file's or a
collection's vectors."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..errors import InputError
from ..io import read_texts
from ._common import add_command, column_args, encoder_arg, note, print_json, progress

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
    p.add_argument(
        "input", nargs="?", metavar="INPUT", help="texts: .txt, .csv, .tsv, .jsonl or .parquet"
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


def _points(args: argparse.Namespace) -> tuple[list[str], list[str], Any, list[Any] | None, str]:
    """ids, texts, vectors, label values and the encoder's name, from INPUT or --collection."""
    if args.collection:
        from ..store import read_collection

        stored = read_collection(args.collection, args.encoder, args.limit)
        labels = _labels(stored.metadata, args.label_column, args.collection)
        return stored.ids, stored.texts, stored.vectors, labels, stored.encoder
    from ..catalog import load_encoder
    from ..encoders.base import fit_if_needed

    table = read_texts(args.input, column=args.column, id_column=args.id_column)
    if args.limit is not None:
        table.ids, table.texts = table.ids[: args.limit], table.texts[: args.limit]
        table.metadata = table.metadata[: args.limit]
    if not table.texts:
        raise InputError(f"{args.input}: no texts to plot")
    labels = _labels(table.metadata, args.label_column, args.input)
    encoder = load_encoder(args.encoder)
    if fit_if_needed(encoder, table.texts):
        note(f"{encoder.name} was fitted on the {len(table.texts)} texts of {args.input}")
    vectors = encoder.encode(table.texts, progress=progress())
    return table.ids, table.texts, vectors, labels, encoder.name


def cmd_plot(args: argparse.Namespace) -> int:
    """`plot INPUT --encoder NAME --png OUT.png --html OUT.html`"""
    if bool(args.input) == bool(args.collection):
        raise InputError("give either an INPUT file or --collection DIR (one of the two)")
    if args.input and not args.encoder:
        raise InputError("plotting a file needs --encoder NAME (see `embedcraft models`)")
    if not args.png and not args.html:
        raise InputError("nothing to write: give --png OUT.png and/or --html OUT.html")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    from ..plot import encode_labels, nearest_neighbours, project, write_explorer, write_png

    t0 = time.perf_counter()
    ids, texts, vectors, values, encoder = _points(args)
    encoded = time.perf_counter() - t0
    projection = project(vectors, args.method, seed=args.seed)
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
        t = time.perf_counter()
        write_explorer(
            args.html, projection.coords, texts, labels, neighbours,
            ids=ids, title=title, label_column=args.label_column,
        )  # fmt: skip
        out["html"] = args.html
        out["seconds"]["html"] = round(time.perf_counter() - t, 3)
    if args.json:
        print_json(out)
        return 0
    wrote = " and ".join(out[key] for key in ("png", "html") if key in out)
    print(f"{len(texts)} points ({encoder}, {args.method}, {projection.seconds:.1f} s) -> {wrote}")
    return 0
