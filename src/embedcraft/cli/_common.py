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
    "check_ranges",
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
    "sts_columns",
]


class UsageError(EmbedcraftError):
    """The command line itself is wrong (a missing option, a malformed value): exit code 2."""


_AT_LEAST: dict[str, int] = {
    "k": 1,
    "batch_size": 1,
    "limit": 1,
    "truncate_dim": 1,
    "workers": 1,
    "shard_rows": 1,
    "speed_limit": 1,
    "dim": 1,
    "dims": 1,
    "window": 1,
    "epochs": 1,
    "iterations": 1,
    "thumbnail_size": 1,
    "max_batch": 1,
    "transformer_batch_size": 1,
    "max_inputs": 1,
    "max_chars": 1,
    "restrict_vocab": 0,
    "max_wait_ms": 0,
}
"""Numeric options (by their argparse dest) and the least value that means something."""
_ABOVE_ZERO = ("cache_mb", "max_body_mb", "l2")
_BETWEEN: dict[str, tuple[float, float]] = {
    "alpha": (0, 1),
    "threshold": (-1, 1),
    "port": (0, 65535),
}


def _flag(dest: str) -> str:
    return "-k" if dest == "k" else "--" + dest.replace("_", "-")


def check_ranges(args: argparse.Namespace) -> None:
    """Refuse a numeric option outside what it can mean (a batch of 0, a weight of 2) as a
    usage error, before any work, whichever command took it."""
    for dest, value in vars(args).items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if not math.isfinite(value):
            raise UsageError(f"{_flag(dest)} must be a finite number, got {value}")
        if dest in _AT_LEAST and value < _AT_LEAST[dest]:
            raise UsageError(f"{_flag(dest)} must be at least {_AT_LEAST[dest]}, got {value}")
        if dest in _ABOVE_ZERO and not value > 0:
            raise UsageError(f"{_flag(dest)} must be above 0, got {value}")
        low, high = _BETWEEN.get(dest, (value, value))
        if not low <= value <= high:
            raise UsageError(f"{_flag(dest)} must be between {low} and {high}, got {value}")


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


class _OneEncoder(argparse.Action):
    """--encoder on a command that runs one encoder: a second one is a usage error, not
    silently the only one run."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        previous = getattr(namespace, self.dest, None)
        if previous is not None:
            parser.exit(  # one line, as the command's other usage errors
                2,
                f"{parser.prog}: error: --encoder given twice ({previous}, {values}): this "
                f"command runs one encoder; to score several side by side use `embedcraft "
                f"compare -e {previous} -e {values} ...`\n",
            )
        setattr(namespace, self.dest, values)


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
        action="append" if repeat else _OneEncoder,
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

    if not args.encoder:  # optional where --collection can name the encoders instead
        raise UsageError("give --encoder NAME_OR_PATH (see `embedcraft models`)")
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


def sts_columns(value: str | None) -> tuple[str, str, str] | None:
    """--columns S1,S2,SCORE of sentence-pair files (eval sts, compare --sts); None: the
    file's own STS-B or SICK names."""
    if value is None:
        return None
    names = [c.strip() for c in value.split(",")]
    if len(names) != 3 or not all(names):
        raise UsageError(f"--columns takes three names: sentence1,sentence2,score (got {value!r})")
    return names[0], names[1], names[2]


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
