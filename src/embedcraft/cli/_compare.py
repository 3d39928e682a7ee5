"""`embedcraft compare`: every encoder on the same tasks, one table and a quality-speed plot."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._files import atomic_file
from ..compare import (
    AnalogyTask,
    ClassificationTask,
    ClusteringTask,
    RetrievalTask,
    SpeedTask,
    StsTask,
    Task,
    WordSimilarityTask,
    compare_encoders,
    plot_quality_speed,
    read_labelled,
    to_csv,
    to_markdown,
    to_text,
)
from ..errors import InputError
from ..evaluate.retrieval import load_beir
from ..evaluate.sts import read_sts_pairs
from ._common import add_command, note, print_json, progress

__all__ = ["register"]


def _existing(paths: list[str] | None, what: str, folder: bool = False) -> list[str]:
    for path in paths or []:
        ok = Path(path).is_dir() if folder else Path(path).is_file()
        if not ok:
            raise InputError(f"{what} {path}: no such {'folder' if folder else 'file'}")
    return list(paths or [])


def _text_columns(value: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in value.split(",") if c.strip()) if value else ()


def _speed_texts(args: argparse.Namespace, tasks: list[Task]) -> list[str]:
    """The texts whose encoding is timed: --speed-texts, else those of the first task's data."""
    columns = _text_columns(args.text_column)
    if args.speed_texts:
        texts = _plain_texts(args.speed_texts, columns)
    elif args.labelled:
        texts = read_labelled(args.labelled[0], columns, args.label_column).texts
    elif args.sts:
        first, second, _ = read_sts_pairs(args.sts[0])
        texts = list(dict.fromkeys(first + second))
    elif args.data:
        texts = load_beir(args.data[0]).doc_texts
    else:
        raise InputError("the speed task needs texts: give --speed-texts FILE (or --no-speed)")
    if not texts:
        raise InputError("no texts to time the encoders on")
    return texts[: args.speed_limit]


def _plain_texts(path: str, columns: tuple[str, ...]) -> list[str]:
    from ..io import read_texts

    return read_texts(path, column=columns[0] if columns else None).texts


def _tasks(args: argparse.Namespace) -> list[Task]:
    columns = _text_columns(args.text_column)
    tasks: list[Task] = []
    tasks += [WordSimilarityTask(path=p) for p in _existing(args.word_pairs, "--word-pairs")]
    tasks += [AnalogyTask(path=p) for p in _existing(args.analogies, "--analogies")]
    tasks += [StsTask(path=p) for p in _existing(args.sts, "--sts")]
    tasks += [RetrievalTask(path=p) for p in _existing(args.data, "--data", folder=True)]
    for path in _existing(args.labelled, "--labelled"):
        read_labelled(path, columns, args.label_column)  # a bad file fails before the run
        tasks.append(
            ClassificationTask(path=path, text_columns=columns, label_column=args.label_column)
        )
        tasks.append(
            ClusteringTask(path=path, text_columns=columns, label_column=args.label_column)
        )
    if not tasks:
        raise InputError(
            "no task: give at least one of --word-pairs, --analogies, --sts, --data, --labelled"
        )
    if not args.no_speed:
        tasks.append(SpeedTask(texts=_speed_texts(args, tasks)))
    return tasks


def _write(path: str, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def cmd_compare(args: argparse.Namespace) -> int:
    tasks = _tasks(args)
    result = compare_encoders(args.encoder, tasks, isolate=not args.in_process, progress=progress())
    if args.markdown:
        _write(args.markdown, to_markdown(result))
    if args.csv:
        _write(args.csv, to_csv(result))
    if args.plot:
        plot_quality_speed(result, args.plot)
    if args.json:
        print_json(result.to_dict())
    else:
        print(to_text(result))
        if args.in_process:
            note("--in-process: memory is not measured (each task shares this process)")
    for what, path in (("markdown", args.markdown), ("CSV", args.csv), ("plot", args.plot)):
        if path:
            note(f"wrote the {what} to {path}")
    return 0


def register(sub: Any) -> None:
    """Add `compare` to the top-level sub-parsers."""
    p = add_command(
        sub,
        "compare",
        "run the same tasks on several encoders: quality, speed and memory in one table",
        cmd_compare,
    )
    p.epilog = (
        "Each (encoder, task) runs in a fresh process, so a fitting encoder (tfidf, bm25, SIF) "
        "is fitted on that task's data alone and peak memory is the task's own. Scores are x100 "
        "(Spearman, accuracy, nDCG@10, V-measure); a task an encoder cannot do is skipped with "
        "the reason."
    )
    p.add_argument(
        "--encoder",
        "-e",
        action="append",
        required=True,
        metavar="NAME_OR_PATH",
        help="an encoder to compare (catalog name, saved encoder, or word-vectors file); repeat",
    )
    p.add_argument(
        "--word-pairs", action="append", metavar="FILE", help="word1<TAB>word2<TAB>score"
    )
    p.add_argument("--analogies", action="append", metavar="FILE", help="Google-format analogies")
    p.add_argument(
        "--sts", "--pairs", action="append", metavar="FILE", help="sentence pairs (STS-B layout)"
    )
    p.add_argument("--data", action="append", metavar="DIR", help="retrieval data (BEIR layout)")
    p.add_argument(
        "--labelled",
        action="append",
        metavar="FILE",
        help="texts with labels (CSV/TSV/JSONL/Parquet): classification and clustering",
    )
    p.add_argument(
        "--text-column",
        metavar="NAME[,NAME]",
        help="text column(s) of --labelled files, joined (e.g. title,description)",
    )
    p.add_argument("--label-column", metavar="NAME", help="label column (default: label, ...)")
    p.add_argument("--speed-texts", metavar="FILE", help="texts to time (default: the task data)")
    p.add_argument("--speed-limit", type=int, default=2000, metavar="N", help="texts to time")
    p.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as markdown")
    p.add_argument("--csv", metavar="FILE", help="also write every score as CSV")
    p.add_argument("--plot", metavar="FILE.png", help="write the quality-versus-speed plot")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run in this process (faster start; memory is not measured)",
    )
