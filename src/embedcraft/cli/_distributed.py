"""`embedcraft encode --engine ray`: the distributed path of the encode command, kept apart."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import UsageError, encoder_from_args, note, print_json, progress

__all__ = ["encode_on_ray", "engine_args", "refuse_ray_options"]


def engine_args(p: argparse.ArgumentParser) -> None:
    """--engine and the options of the ray engine, added to `embedcraft encode`."""
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: encode here into one file (default); ray: encode on a Ray cluster (or a "
        "local one) into --output FOLDER of Parquet shards, resumable after a failure",
    )
    g = p.add_argument_group("ray engine (--engine ray)")
    g.add_argument(
        "--address",
        metavar="ADDR",
        help="join this Ray cluster ('auto', HOST:PORT or ray://HOST:PORT; default: start a "
        "local one)",
    )
    g.add_argument("--workers", type=int, metavar="N", help="encoder actors (default: CPUs)")
    g.add_argument(
        "--shard-rows",
        type=int,
        default=10_000,
        metavar="N",
        help="rows per shard, the unit of work and of resuming (default 10000)",
    )
    g.add_argument(
        "--collection",
        metavar="DIR_OR_URL",
        help="then load the vectors, texts and metadata into this collection folder or "
        "postgresql:// table",
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="discard shards in --output left by a run with another encoder, source or shard size",
    )


def encode_on_ray(args: argparse.Namespace) -> int:
    """Run `embedcraft encode` on Ray; with the local engine, refuse the ray-only options."""
    from ..distributed import RayOptions, encode_dataset

    encoder: Any = args.encoder
    if args.truncate_dim or args.fit_on:
        encoder = encoder_from_args(args)
    if args.fit_on:
        from ._common import fit_from

        fit_from(encoder, args.fit_on, [], args.fit_on)
    result = encode_dataset(
        args.input,
        encoder,
        args.output,
        column=args.column,
        id_column=args.id_column,
        shard_rows=args.shard_rows,
        batch_size=args.batch_size,
        ray=RayOptions(address=args.address, workers=args.workers),
        collection=args.collection,
        overwrite=args.overwrite,
        progress=progress(),
        cache=args.cache,
    )
    if args.save_encoder:
        from ..catalog import load_encoder

        (load_encoder(encoder) if isinstance(encoder, str) else encoder).save(args.save_encoder)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(
        f"{result.rows} rows in {result.shards} shards of {result.encoder} vectors in "
        f"{result.output}: {result.shards_written} written ({result.rows_encoded} rows encoded "
        f"by {result.workers} workers), {result.shards_skipped} already done; "
        f"{result.seconds:.1f} s (start-up {result.startup_seconds:.1f} s)"
    )
    if result.collection:
        print(f"loaded {result.collection_rows} documents into {result.collection}")
    return 0


def refuse_ray_options(args: argparse.Namespace) -> None:
    """The local engine takes none of the ray engine's options: say so instead of ignoring them."""
    given = [
        flag
        for flag, value in (
            ("--address", args.address),
            ("--workers", args.workers),
            ("--collection", args.collection),
            ("--overwrite", args.overwrite or None),
        )
        if value is not None
    ]
    if given:
        raise UsageError(f"{', '.join(given)} need --engine ray")
    if args.shard_rows != 10_000:
        note("--shard-rows applies to --engine ray only; ignored")
