"""`embedcraft cache info|clear`: see and empty the disk embedding cache."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..cache import EmbeddingCache, default_cache
from ._common import add_json, print_json

__all__ = ["register"]


def _open(args: argparse.Namespace) -> EmbeddingCache:
    return EmbeddingCache(Path(args.path)) if args.path else default_cache()


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"


def cmd_cache_info(args: argparse.Namespace) -> int:
    info = _open(args).info()
    info.pop("stats", None)  # a new process has served nothing yet
    if args.json:
        print_json(info)
        return 0
    print(f"embedding cache: {info['path']}")
    print(f"  entries    {info['entries']:,}")
    print(f"  vectors    {_size(info['bytes'])} of {_size(info['max_bytes'])} allowed")
    print(f"  on disk    {_size(info['file_bytes'])}")
    return 0


def cmd_cache_clear(args: argparse.Namespace) -> int:
    cache = _open(args)
    removed = cache.clear()
    if args.json:
        print_json({"path": str(cache.path), "removed": removed})
    else:
        print(f"removed {removed:,} vectors from {cache.path}")
    return 0


def register(sub: Any) -> None:
    """Add `cache info` and `cache clear` to the top-level sub-parsers."""
    described = (
        "The embedding cache keeps every vector the CLI computes (keyed by the encoder's "
        "weights and parameters and the input's bytes), so a rerun encodes only what is new. "
        "It is one SQLite file in the user cache folder (EMBEDCRAFT_CACHE moves it), shared by "
        "every process; --no-cache on a command skips it."
    )
    p = sub.add_parser("cache", help="see or empty the embedding cache", description=described)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_, func in (
        ("info", "where the cache is, how many vectors it holds, its size", cmd_cache_info),
        ("clear", "remove every cached vector", cmd_cache_clear),
    ):
        q = actions.add_parser(name, help=help_, description=help_)
        q.set_defaults(func=func)
        q.add_argument("--path", metavar="FILE", help="a cache file other than the default")
        add_json(q)
