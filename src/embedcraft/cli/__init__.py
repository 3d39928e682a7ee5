"""The `embedcraft` command: a thin shell that parses, calls the library, and prints.

Exit codes: 0 success, 2 usage error, 1 runtime error (one line on stderr; `--debug` for the
traceback). Every command that prints results takes `--json`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..cache import caching
from ..errors import EmbedcraftError
from . import _cache, _compare, _contextual, _images, _plot, _recsys, _serve, _store, _text, _words
from ._common import UsageError, check_ranges, showing_progress
from ._export import register as register_export

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `embedcraft` command."""
    parser = argparse.ArgumentParser(
        prog="embedcraft",
        description="Turn text into vectors (sparse, static, contextual) and put them to work: "
        "similarity, search, evaluation.",
        epilog="Run `embedcraft COMMAND --help` for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"embedcraft {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        dest="progress",
        action="store_const",
        const=True,
        default=None,
        help="show progress bars on long work even when stderr is not a terminal (a log file)",
    )
    shown.add_argument(
        "--quiet",
        "-q",
        dest="progress",
        action="store_const",
        const=False,
        help="no progress bars, even at a terminal (notes and errors still print)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p_eval = sub.add_parser(
        "eval", help="evaluate on a benchmark", description="Evaluate on a benchmark."
    )
    eval_sub = p_eval.add_subparsers(dest="task", metavar="TASK", required=True)
    _text.register(sub, eval_sub)
    _words.register(sub, eval_sub)
    _contextual.register(sub, eval_sub)
    _store.register(sub)
    _recsys.register(sub, eval_sub)
    _serve.register(sub)
    _compare.register(sub, eval_sub)
    _plot.register(sub)
    _images.register(sub)
    _cache.register(sub)
    register_export(sub)
    return parser


_ANYWHERE = ("--debug", "--progress", "--quiet", "-q")
"""Options of the whole command that are also recognised after the sub-command."""


def _not_utf8(argv: Sequence[str]) -> str | None:
    """A message for the first argument that is not valid UTF-8 (None when all are).

    Python hands such bytes over as lone surrogates ("\\udcff" for byte 0xff), which every
    library below (tokenizers, SQLite, JSON files) refuses in its own words; texts, names and
    paths alike are UTF-8 throughout embedcraft, so the command refuses them here, once.
    """
    for position, arg in enumerate(argv, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            try:
                shown = repr(arg.encode("utf-8", "surrogateescape"))
            except UnicodeEncodeError:
                shown = ascii(arg)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            return (
                f"argument {position} ({shown}) is not valid UTF-8 (at byte "
                f"{len(arg[: exc.start].encode('utf-8'))}); "
                "pass texts, names and paths as UTF-8"
            )
    return None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's own flush at exit does not fail on the closed
    pipe a second time."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `embedcraft` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    problem = _not_utf8(argv)
    if problem:
        print(f"embedcraft: error: {problem}", file=sys.stderr)
        return 2
    parser = build_parser()
    # options of the whole command work wherever they are typed, before or after the command
    anywhere = [a for a in argv if a in _ANYWHERE]
    argv = anywhere + [a for a in argv if a not in _ANYWHERE]
    args = parser.parse_args(argv)
    try:
        check_ranges(args)
        with caching(getattr(args, "cache", False)), showing_progress(args.progress):
            return int(args.func(args))
    except UsageError as exc:  # as argparse would say it: the command, then the problem; exit 2
        if args.debug:
            raise
        command = " ".join(filter(None, (args.command, getattr(args, "task", None))))
        print(f"embedcraft {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("embedcraft: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`... --json | head`): not an error
        _silence_stdout()
        return 0
    except Exception as exc:
        if args.debug:
            raise
        known = isinstance(exc, EmbedcraftError | OSError | TypeError)
        message = str(exc) or type(exc).__name__
        if not known:
            message = f"{type(exc).__name__}: {message} (run with --debug for the traceback)"
        print(f"embedcraft: error: {message}", file=sys.stderr)
        return 1
