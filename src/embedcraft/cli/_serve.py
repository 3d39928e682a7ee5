"""`embedcraft serve`: the HTTP server (OpenAI-compatible embeddings, search, similarity)."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from ..encoders.contract import Encoder
from ..errors import InputError
from ._common import UsageError, note

__all__ = ["register"]

DEFAULT_ENCODER = "minilm-l6"
API_KEY_ENV = "EMBEDCRAFT_API_KEY"
_ALIAS = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.:\-]{0,127})=(.+)$")


def _named(value: str) -> tuple[str | None, str]:
    """'ALIAS=WHAT' -> (alias, what); a plain value -> (None, value)."""
    found = _ALIAS.match(value)
    if found and not value.startswith(("postgresql://", "postgres://")):
        return found.group(1), found.group(2)
    return None, value


def _load_encoders(args: argparse.Namespace) -> dict[str, Encoder]:
    """The encoders to serve by name, fitted on --fit-on where they need it, loaded now."""
    from ..catalog import load_encoder
    from ..io import read_texts
    from ..server import warm_up_inputs

    given = args.encoder or ([] if args.collection else [DEFAULT_ENCODER])
    encoders: dict[str, Encoder] = {}
    corpus: list[str] | None = None
    for value in given:
        alias, what = _named(value)
        encoder = load_encoder(what)
        # a saved folder is served under the folder's name, as the user typed it
        name = alias or (Path(what).name if Path(what).is_dir() else encoder.name)
        if name in encoders:
            raise UsageError(
                f"two encoders are named {name!r}: name them, e.g. --encoder other={what}"
            )
        if encoder.needs_fit and not encoder.is_fitted():
            if not args.fit_on:  # the command line lacks an option: a usage error
                raise UsageError(
                    f"encoder {name!r} needs fitting: pass --fit-on FILE (the texts to fit on) "
                    "or the folder of a saved fitted encoder"
                )
            if corpus is None:
                corpus = read_texts(args.fit_on, column=args.column).texts
            encoder.fit(corpus)
            note(f"{name} fitted on {len(corpus)} texts of {args.fit_on}")
        # load the model now (with an input of the kind it reads): a broken one fails here
        encoder.encode(warm_up_inputs(name, encoder))
        encoders[name] = encoder
    if args.fit_on and corpus is None:
        note("no served encoder needs fitting; --fit-on ignored")
    return encoders


def _open_collections(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    from ..store import open_collection

    collections: dict[str, Any] = {}
    for value in args.collection or []:
        alias, location = _named(value)
        name = alias or os.path.basename(os.path.normpath(location)) or location
        if location.startswith(("postgresql://", "postgres://")) and not alias:
            raise UsageError(f"name a PostgreSQL collection: --collection NAME={location}")
        if name in collections:
            raise UsageError(f"two collections are named {name!r}: name them, e.g. other={value}")
        collections[name] = stack.enter_context(open_collection(location))
    return collections


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server import Batching, Limits, ServerConfig, serve

    # Tokenize in the model's worker thread alone (unless told otherwise): the tokenizers
    # library's own thread pool, its default, keeps threads busy between tokenizations that take
    # the cores from the model runs (minilm-l6 on 2 cores: 1-2% less throughput).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    limits = Limits(
        max_inputs=args.max_inputs,
        max_chars=args.max_chars,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
    )
    batching = Batching(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        transformer_batch_size=args.transformer_batch_size,
    )
    with contextlib.ExitStack() as stack:
        encoders = _load_encoders(args)
        collections = _open_collections(args, stack)
        config = ServerConfig(encoders, collections, api_key, limits, batching, _cache(args))
        if not _is_loopback(args.host) and api_key is None:
            note(f"serving on {args.host} without an API key: anyone who can reach it may use it")
        base = f"http://{args.host}:{args.port}"
        served = ", ".join(encoders) or "no models"
        if collections:
            served += f"; collections {', '.join(collections)}"
        print(
            f"embedcraft: serving {served} on {base} (OpenAI base_url {base}/v1)", file=sys.stderr
        )
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal: turn that
        # into a normal exit, so the collections close (saving their indexes) and the code is 0.
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            serve(config, host=args.host, port=args.port, log_level=args.log_level)
        except (KeyboardInterrupt, _Stopped):
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    print("embedcraft: server stopped", file=sys.stderr)
    return 0


def _cache(args: argparse.Namespace) -> Any:
    """The server's embedding cache from --cache and --cache-mb."""
    from ..cache import MemoryCache, default_cache

    if args.server_cache == "disk":
        return default_cache()
    if args.server_cache == "off":
        return None
    size = int(args.cache_mb * 1024 * 1024)
    if size < 1:
        raise InputError(f"--cache-mb must be positive, got {args.cache_mb}")
    return MemoryCache(size)


class _Stopped(Exception):
    """SIGTERM arrived (after uvicorn's graceful shutdown)."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stopped


def register(sub: Any) -> None:
    """Add `serve` to the top-level sub-parsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="serve encoders over HTTP (OpenAI-compatible /v1/embeddings), search and similarity",
        description="Serve encoders over HTTP: OpenAI-compatible POST /v1/embeddings, "
        "POST /v1/sparse/embeddings, GET /v1/models, POST /search over collections, "
        "POST /similarity, GET /health. Stop with Ctrl-C.",
    )
    p.set_defaults(func=cmd_serve)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", "-p", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--encoder",
        "-e",
        action="append",
        metavar="[NAME=]NAME_OR_PATH",
        help=f"a catalog name or saved encoder folder to serve; repeat for several; NAME= sets "
        f"the model name clients use (default: {DEFAULT_ENCODER} when no collection is given)",
    )
    p.add_argument(
        "--collection",
        "-c",
        action="append",
        metavar="[NAME=]DIR_OR_URL",
        help="a collection to serve through POST /search; repeat for several (default name: "
        "the folder's name)",
    )
    p.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV} when set)",
    )
    p.add_argument(
        "--fit-on",
        metavar="FILE",
        help="fit the encoders that need it (tfidf, bm25, ...) on the texts of FILE",
    )
    p.add_argument("--column", metavar="NAME", help="text column of --fit-on (CSV/JSONL/Parquet)")
    p.add_argument(
        "--max-batch",
        type=int,
        default=256,
        help="inputs per micro-batch; for text transformers, the pending texts each model run "
        "is chosen from (default 256)",
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=2.0,
        help="how long an idle model waits for more requests to batch (default 2 ms)",
    )
    p.add_argument(
        "--transformer-batch-size",
        type=int,
        default=64,
        help="texts per model run of a text transformer at most; each run holds texts of about "
        "one length (default 64)",
    )
    p.add_argument(
        "--cache",
        dest="server_cache",
        choices=["memory", "disk", "off"],
        default="memory",
        help="keep served vectors so a repeated input is not encoded again: in this process "
        "(default), in the disk embedding cache shared with the CLI and other servers, or off; "
        "GET /health shows the hits and the encoding time they saved",
    )
    p.add_argument(
        "--cache-mb",
        type=float,
        default=256.0,
        help="size of the memory cache in MiB (default 256)",
    )
    p.add_argument("--max-inputs", type=int, default=2048, help="texts per request (default 2048)")
    p.add_argument(
        "--max-chars", type=int, default=100_000, help="characters per text (default 100000)"
    )
    p.add_argument(
        "--max-body-mb", type=float, default=16.0, help="request body size in MiB (default 16)"
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (debug also logs every request)",
    )
