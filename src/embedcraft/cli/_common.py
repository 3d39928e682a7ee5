"""Helpers shared by the command modules: printing, progress, common arguments."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from ..encoders.base import Encoder, fit_if_needed
from ..encoders.contract import EncodeReport
from ..errors import EmbedcraftError
from ..io import read_texts

__all__ = [
    "UsageError",
    "add_cache",
    "add_command",
    "add_json",
    "column_args",
    "encode_notes",
    "encoder_arg",
    "encoder_from_args",
    "fit_from",
    "note",
    "note_undefined_correlation",
    "print_json",
    "progress",
    "showing_progress",
]


class UsageError(EmbedcraftError):
    """The command line itself is wrong (a missing option, a malformed value): exit code 2."""


_PROGRESS: ContextVar[bool | None] = ContextVar("embedcraft_cli_progress", default=None)


@contextlib.contextmanager
def showing_progress(choice: bool | None) -> Iterator[None]:
    """Within the block, `progress()` answers `choice` (--progress/--quiet); None: ask stderr."""
    token = _PROGRESS.set(choice)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def progress() -> bool:
    """Whether to show progress bars: as --progress/--quiet say, else only to a person at a
    terminal (a log file or a pipe gets no bars)."""
    choice = _PROGRESS.get()
    return sys.stderr.isatty() if choice is None else choice


def note(message: str) -> None:
    """A remark for the person, on stderr, that does not disturb --json output."""
    print(f"note: {message}", file=sys.stderr)


def print_json(value: Any) -> None:
    """Results as indented JSON on stdout (NaN and infinities, which JSON lacks, as null)."""
    print(json.dumps(_finite(value), indent=2, ensure_ascii=False, allow_nan=False))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def note_undefined_correlation(source: str, scorer: str) -> None:
    """Say why a correlation printed as nan: every pair got the same score."""
    note(
        f"{source}: {scorer} gives every pair the same score, so the correlation is undefined "
        "(nan; null in --json)"
    )


def add_json(p: argparse.ArgumentParser) -> None:
    """The --json flag every result-printing command has."""
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_cache(p: argparse.ArgumentParser) -> None:
    """--cache/--no-cache: whether this command's encodes go through the disk embedding cache
    (on by default: CLI runs are rerun; `embedcraft cache info|clear` manage it)."""
    p.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="look vectors up in the embedding cache and keep new ones (default: on; "
        "`embedcraft cache info` shows it)",
    )


def add_command(sub: Any, name: str, help_: str, func: Any) -> argparse.ArgumentParser:
    """A sub-command whose handler is `func`, with --json."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_)
    p.set_defaults(func=func)
    add_json(p)
    return p


def encoder_arg(
    p: argparse.ArgumentParser,
    *,
    postprocess: bool = True,
    quantize: bool = False,
    required: bool = True,
    repeat: bool = False,
) -> None:
    """--encoder NAME_OR_PATH, and --truncate-dim (plus --quantize where asked) for dense ones."""
    p.add_argument(
        "--encoder",
        "-e",
        required=required,
        action="append" if repeat else "store",
        metavar="NAME_OR_PATH",
        help="a catalog name (see `embedcraft models`) or a saved encoder folder"
        + ("; with --collection, repeat it to create one with several" if repeat else ""),
    )
    if not postprocess:
        return
    p.add_argument(
        "--truncate-dim",
        type=int,
        metavar="N",
        help="keep the first N dimensions of dense vectors, renormalized",
    )
    if quantize:
        p.add_argument(
            "--quantize",
            choices=["int8", "binary"],
            help="compare int8 or 1-bit quantized vectors (measures what quantization costs)",
        )


def encoder_from_args(args: argparse.Namespace) -> Encoder:
    """The encoder named by --encoder, wrapped when --truncate-dim/--quantize ask for it."""
    from ..catalog import load_encoder
    from ..encoders.postprocess import PostProcessedEncoder

    encoder = load_encoder(args.encoder)
    dim, quantize = getattr(args, "truncate_dim", None), getattr(args, "quantize", None)
    if not dim and not quantize:
        return encoder
    settings = [f"dim {dim}"] if dim else []
    settings += [quantize] if quantize else []
    name = f"{encoder.name} ({', '.join(settings)})"
    return PostProcessedEncoder(encoder, truncate_dim=dim, quantize=quantize, name=name)


def column_args(p: argparse.ArgumentParser, what: str) -> None:
    """--column and --id-column for tabular inputs."""
    p.add_argument(
        "--column",
        metavar="NAME[,NAME]",
        help=f"text column of the {what} (CSV/JSONL/Parquet); several are joined",
    )
    p.add_argument("--id-column", metavar="NAME", help=f"id column of the {what}")


def encode_notes(report: EncodeReport, ids: list[str]) -> dict[str, Any]:
    """Say (on stderr) what an encode call truncated or could not look up; return it for JSON."""
    found: dict[str, Any] = {}
    if report.truncated:
        which = [ids[i] for i in report.truncated]
        found["truncated"] = which
        shown = ", ".join(which[:5]) + (" ..." if len(which) > 5 else "")
        verb = "split into windows" if report.chunked else "truncated"
        limit = f"{report.max_tokens} tokens" if report.max_tokens else "the length limit"
        note(f"{len(which)} texts exceeded {limit} and were {verb}: {shown}")
    if report.oov_tokens:
        found["oov_tokens"] = report.oov_tokens
        fresh = report.inputs - report.cached
        among = f" in the {fresh} texts encoded now" if report.cached else ""
        note(
            f"{report.oov_tokens} of {report.tokens} tokens{among} ({report.oov_rate:.1%}) have "
            f"no vector and were skipped; {report.empty_inputs} texts had no known token"
        )
    if report.cached:
        found["cached"] = report.cached
        note(
            f"{report.cached} of {report.inputs} vectors came from the embedding cache "
            "(--no-cache encodes everything again)"
        )
    return found


def fit_from(encoder: Encoder, fit_on: str | None, fallback: list[str], what: str) -> str | None:
    """Fit on --fit-on when given, else on `fallback` when needed; say what was fitted on."""
    if fit_on and encoder.needs_fit:
        encoder.fit(read_texts(fit_on).texts)
        return fit_on
    if fit_on:
        note(f"{encoder.name} needs no fitting; --fit-on ignored")
        return None
    return what if fit_if_needed(encoder, fallback) else None
