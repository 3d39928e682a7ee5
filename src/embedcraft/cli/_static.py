"""`embedcraft train static`: a static model fitted to a teacher's sentence vectors on a corpus."""

from __future__ import annotations

import argparse
import re
import resource
import time
from pathlib import Path

from ..catalog import load_encoder
from ..encoders.distill import StaticTransformerEncoder
from ..errors import InputError
from ..io import read_texts
from ..training.static import train_static
from ._common import print_json, progress

__all__ = ["add_static_arguments", "cmd_train_static"]

_TAGS = re.compile(r"<[^>]+>")


def add_static_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `train static` (the others of `train` are for word vectors)."""
    group = p.add_argument_group("static (train static CORPUS --teacher NAME -o DIR)")
    group.add_argument(
        "--teacher", default="minilm-l6-exact", help="the sentence encoder to learn from"
    )
    group.add_argument(
        "--student",
        default="minilm-l6-distilled",
        help="the distilled static model to start from (default minilm-l6-distilled)",
    )
    group.add_argument(
        "--l2", type=float, default=0.1, help="pull towards the starting table (default 0.1)"
    )
    group.add_argument(
        "--iterations", type=int, default=60, help="conjugate-gradient steps (default 60)"
    )
    group.add_argument(
        "--dims",
        type=int,
        metavar="N",
        help="keep N dimensions (PCA of the corpus's pooled vectors; default: the teacher's width)",
    )
    group.add_argument(
        "--work",
        metavar="DIR",
        help="where the teacher's vectors are kept as they are made, so a rerun resumes "
        "(default: OUT.teacher)",
    )


def cmd_train_static(args: argparse.Namespace) -> int:
    """Train, save to OUT (a folder `load_encoder` opens), and report what it cost."""
    if Path(args.output).suffix.lower() in (".bin", ".txt", ".vec"):
        raise InputError(f"{args.output}: a static model is saved to a folder, not a file")
    table = read_texts(args.corpus, column=args.column)
    texts = [_TAGS.sub(" ", t) for t in table.texts] if args.strip_tags else table.texts
    teacher = load_encoder(args.teacher)
    student = load_encoder(args.student)
    if not isinstance(student, StaticTransformerEncoder):
        raise InputError(f"--student {args.student!r} is not a static transformer model")
    work = Path(args.work) if args.work else Path(f"{args.output}.teacher")
    t0 = time.perf_counter()
    name = Path(args.output).name
    trained, cost = train_static(
        teacher, student, texts, work=work, name=name, progress=progress(),
        l2=args.l2, iterations=args.iterations, dims=args.dims,
    )  # fmt: skip
    trained.save(args.output)
    report = {
        "model": "static",
        "teacher": teacher.name,
        "student": student.name,
        "output": args.output,
        "dim": trained.dim,
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **{k: round(v, 3) if isinstance(v, float) else v for k, v in cost.items()},
    }
    if args.json:
        print_json(report)
        return 0
    print(
        f"trained {student.name} on {cost['texts']:,} texts against {teacher.name}: teacher "
        f"{cost['teacher_s']:.1f} s, fit {cost['fit_s']:.1f} s, peak RSS "
        f"{report['peak_rss_mib']:,} MiB; {trained.dim}-dim table"
    )
    print(f"saved to {args.output} (load it with load_encoder or -e {args.output})")
    return 0
