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
    ImageClassificationTask,
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
from ..evaluate.images import evaluate_image_classification, load_labelled_images
from ..evaluate.retrieval import load_beir
from ..evaluate.sts import read_sts_pairs
from ._common import (
    UsageError,
    add_cache,
    add_command,
    note,
    print_json,
    progress,
    sts_columns,
)

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
        first, second, _ = read_sts_pairs(args.sts[0], _pair_columns(args)[0])
        texts = list(dict.fromkeys(first + second))
    elif args.data:
        texts = load_beir(args.data[0]).doc_texts
    else:
        raise UsageError("the speed task needs texts: give --speed-texts FILE (or --no-speed)")
    if not texts:
        raise InputError("no texts to time the encoders on")
    return texts[: args.speed_limit]


def _pair_columns(args: argparse.Namespace) -> list[tuple[str, str, str] | None]:
    """The columns of each --sts file: --columns once for all of them, or once per file in
    order; none: each file's own STS-B or SICK names."""
    files = args.sts or []
    given = [sts_columns(value) for value in args.columns or []]
    if given and not files:
        raise UsageError("--columns names the columns of --sts files: give --sts FILE")
    if len(given) in (0, 1):
        return [given[0] if given else None] * len(files)
    if len(given) != len(files):
        raise UsageError(
            f"give --columns once (for every --sts file) or once per --sts file, in order; "
            f"got {len(given)} --columns for {len(files)} --sts files"
        )
    return given


def _plain_texts(path: str, columns: tuple[str, ...]) -> list[str]:
    from ..io import read_texts

    return read_texts(path, column=columns[0] if columns else None).texts


def _tasks(args: argparse.Namespace) -> list[Task]:
    columns = _text_columns(args.text_column)
    tasks: list[Task] = []
    tasks += [WordSimilarityTask(path=p) for p in _existing(args.word_pairs, "--word-pairs")]
    tasks += [AnalogyTask(path=p) for p in _existing(args.analogies, "--analogies")]
    pairs = zip(_existing(args.sts, "--sts"), _pair_columns(args), strict=True)
    tasks += [StsTask(path=p, columns=columns) for p, columns in pairs]
    tasks += [RetrievalTask(path=p) for p in _existing(args.data, "--data", folder=True)]
    for path in _existing(args.labelled, "--labelled"):
        read_labelled(path, columns, args.label_column)  # a bad file fails before the run
        tasks.append(
            ClassificationTask(path=path, text_columns=columns, label_column=args.label_column)
        )
        tasks.append(
            ClusteringTask(path=path, text_columns=columns, label_column=args.label_column)
        )
    text_tasks = bool(tasks)
    for path in args.images or []:
        if not Path(path).exists():
            raise InputError(f"--images {path}: no such folder or file")
        load_labelled_images(path, label_column=args.label_column)  # fails before the run
        tasks.append(
            ImageClassificationTask(path=path, label_column=args.label_column, limit=args.limit)
        )
    if not tasks:
        raise UsageError(
            "no task: give at least one of --word-pairs, --analogies, --sts, --data, "
            "--labelled, --images"
        )
    if not args.no_speed and (text_tasks or args.speed_texts):
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
    if not any(cell.scores for cell in result.cells):
        note("no task gave a score for any encoder (each was skipped or failed, as said above)")
        return 1
    return 0


def cmd_eval_images(args: argparse.Namespace) -> int:
    from ..catalog import load_encoder

    encoder = load_encoder(args.encoder)
    data = load_labelled_images(
        args.data, path_column=args.path_column, label_column=args.label_column
    )
    result = evaluate_image_classification(
        encoder, data, k=args.k, limit=args.limit, batch_size=args.batch_size, progress=progress()
    )
    if args.json:
        print_json({**result.as_dict(), "failed": result.failed})
        return 0
    print(
        f"{result.dataset} with {result.encoder}: {result.images} images, {result.classes} "
        f"classes (encoded in {result.encode_seconds:.1f} s)"
    )
    print(f"  {result.k}-NN accuracy   {result.knn_accuracy:.4f}  (leave-one-out, cosine)")
    print(
        f"  probe accuracy  {result.probe_accuracy:.4f}  (logistic regression, "
        f"{result.train} train / {result.test} test, {result.split} split)"
    )
    print(f"  precision@10    {result.precision_at_10:.4f}  (same-class share of 10 nearest)")
    for image_id, why in list(result.failed.items())[:10]:
        note(f"left out {image_id}: {why}")
    if len(result.failed) > 10:
        note(f"... and {len(result.failed) - 10} more unreadable images left out")
    return 0


def _register_eval(eval_sub: Any) -> None:
    p = eval_sub.add_parser(
        "images",
        help="k-NN and probe accuracy, precision@10 of an image encoder on labelled images",
        description="Encode a labelled image set (a folder of class folders, class/image.jpg, "
        "or a CSV/TSV of path,label) and report leave-one-out k-NN accuracy (cosine), "
        "logistic-probe accuracy (the data's train/test split column, else a fixed stratified "
        "80/20 split) and retrieval precision@10. Unreadable images are left out and named.",
    )
    p.set_defaults(func=cmd_eval_images)
    p.add_argument("data", metavar="DIR_OR_CSV", help="labelled images")
    p.add_argument(
        "--encoder",
        "-e",
        default="efficientnet-lite0",
        help="an image encoder (default %(default)s)",
    )
    p.add_argument("-k", type=int, default=10, help="neighbours that vote (default 10)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N images, evenly by class")
    p.add_argument("--path-column", metavar="NAME", help="image path column of a CSV")
    p.add_argument("--label-column", metavar="NAME", help="label column of a CSV")
    p.add_argument("--batch-size", type=int, metavar="N", help="images per batch")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def register(sub: Any, eval_sub: Any = None) -> None:
    """Add `compare` to the top-level sub-parsers (and `eval images` to `eval_sub`)."""
    if eval_sub is not None:
        _register_eval(eval_sub)
    p = add_command(
        sub,
        "compare",
        "run the same tasks on several encoders: quality, speed and memory in one table",
        cmd_compare,
    )
    add_cache(p)
    p.epilog = (
        "Each (encoder, task) runs in a fresh process, so a fitting encoder (tfidf, bm25, SIF) "
        "is fitted on that task's data alone and peak memory is the task's own. Scores are x100 "
        "(Spearman, accuracy, nDCG@10, V-measure); a task an encoder cannot do is skipped with "
        "the reason: text tasks run text encoders, --images runs image encoders (a mix of both "
        "compares each on its own tasks). The speed task times texts; image encoders report "
        "images/s in their --images task."
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
        "--sts",
        "--pairs",
        action="append",
        metavar="FILE",
        help="sentence pairs (STS-B or SICK layout)",
    )
    p.add_argument(
        "--columns",
        action="append",
        metavar="S1,S2,SCORE",
        help="column names of the --sts files, as `eval sts` takes them (default: STS-B's "
        "sentence1,sentence2,score or SICK's sentence_A,sentence_B,relatedness_score); once "
        "for every --sts file, or once per --sts file in order",
    )
    p.add_argument("--data", action="append", metavar="DIR", help="retrieval data (BEIR layout)")
    p.add_argument(
        "--labelled",
        action="append",
        metavar="FILE",
        help="texts with labels (CSV/TSV/JSONL/Parquet): classification and clustering",
    )
    p.add_argument(
        "--images",
        action="append",
        metavar="DIR_OR_CSV",
        help="labelled images (class/image.jpg folders, or a CSV of path,label): 10-NN and "
        "probe accuracy, precision@10 and images/s; image encoders only",
    )
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="at most N images of each --images set (taken evenly across classes)",
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
