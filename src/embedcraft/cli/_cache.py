"""`embedcraft cache info|clear`: see and empty the disk embedding cache, and the recommenders
that `recommend` keeps in the cache folder."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from .._cache import cache_dir
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


def _saved_recommenders() -> tuple[Path, list[Path]]:
    """The folder of the recommenders `recommend` fitted and kept, and each one's folder."""
    root = cache_dir("recommenders")
    return root, sorted(p for p in root.iterdir() if p.is_dir())


def _bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def cmd_cache_info(args: argparse.Namespace) -> int:
    info = _open(args).info()
    info.pop("stats", None)  # a new process has served nothing yet
    if not args.path:
        root, saved = _saved_recommenders()
        info["recommenders"] = {
            "path": str(root),
            "saved": len(saved),
            "bytes": sum(_bytes(f) for f in saved),
        }
    if args.json:
        print_json(info)
        return 0
    print(f"embedding cache: {info['path']}")
    print(f"  entries    {info['entries']:,}")
    print(f"  vectors    {_size(info['bytes'])} of {_size(info['max_bytes'])} allowed")
    print(f"  on disk    {_size(info['file_bytes'])}")
    if "recommenders" in info:
        kept = info["recommenders"]
        print(f"fitted recommenders kept by `recommend`: {kept['path']}")
        print(f"  saved      {kept['saved']:,} ({_size(kept['bytes'])})")
    return 0


def cmd_cache_clear(args: argparse.Namespace) -> int:
    cache = _open(args)
    removed = cache.clear()
    result: dict[str, Any] = {"path": str(cache.path), "removed": removed}
    if not args.path:  # the default cache folder: the kept recommenders go too
        root, saved = _saved_recommenders()
        for folder in saved:
            shutil.rmtree(folder, ignore_errors=True)
        result["recommenders_removed"] = sum(not f.exists() for f in saved)
    if args.json:
        print_json(result)
    else:
        print(f"removed {removed:,} vectors from {cache.path}")
        if "recommenders_removed" in result:
            print(f"removed {result['recommenders_removed']:,} fitted recommenders from {root}")
    return 0


def register(sub: Any) -> None:
    """Add `cache info` and `cache clear` to the top-level sub-parsers."""
    described = (
        "The embedding cache keeps every vector the CLI computes (keyed by the encoder's "
        "weights and parameters and the input's bytes), so a rerun encodes only what is new. "
        "It is one SQLite file in the user cache folder (EMBEDCRAFT_CACHE moves it), shared by "
        "every process; --no-cache on a command skips it. The recommenders `recommend` fits "
        "are kept beside it: info counts them and clear removes them too (not with --path)."
    )
    p = sub.add_parser("cache", help="see or empty the embedding cache", description=described)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_, func in (
        ("info", "where the cache is, how many vectors it holds, its size", cmd_cache_info),
        ("clear", "remove every cached vector and every kept recommender", cmd_cache_clear),
    ):
        q = actions.add_parser(name, help=help_, description=help_)
        q.set_defaults(func=func)
        q.add_argument("--path", metavar="FILE", help="a cache file other than the default")
        add_json(q)
