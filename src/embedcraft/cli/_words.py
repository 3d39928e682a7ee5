"""Commands over word vectors: train, neighbors, analogy, eval words."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from ..evaluate.words import evaluate_analogies, evaluate_word_pairs
from ..training.corpus import TokenStream
from ..words import WordVectors
from ..words.formats import write_word_vectors
from ..words.sources import load_word_vectors
from ._common import UsageError, add_command, note, note_undefined_correlation, print_json, progress
from ._static import add_static_arguments, cmd_train_static

__all__ = ["register", "save_word_vectors"]

_FILE_FORMATS = {".bin": "word2vec-binary", ".vec": "fasttext", ".txt": "word2vec"}


def save_word_vectors(wv: WordVectors, out: str) -> str:
    """Save to a folder (our format), or to a word2vec file when OUT ends in .bin/.txt/.vec."""
    fmt = _FILE_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        wv.save(out)
        return "embedcraft folder"
    if wv.subwords is not None:
        note(f"{out}: the {fmt} format keeps no subword n-grams; save to a folder to keep them")
    write_word_vectors(out, wv.words, wv.vectors, format=fmt)  # type: ignore[arg-type]
    return fmt


def _train(args: argparse.Namespace) -> tuple[WordVectors, dict[str, Any]]:
    stream = TokenStream(args.corpus, column=args.column, strip_tags=args.strip_tags)
    common = {
        "dim": args.dim,
        "window": args.window,
        "min_count": args.min_count,
        "epochs": args.epochs,
        "seed": args.seed,
        "workers": args.workers,
        "progress": progress(),
    }
    if args.model == "glove":
        from ..training.glove import train_glove

        result = train_glove(stream, **common)
        wv = WordVectors(
            result.words, result.vectors, result.counts, name=f"glove-{stream.path.stem}"
        )
        info = {
            "tokens": result.tokens,
            "seconds": result.seconds,
            "losses": result.losses,
            "cooccurrence_pairs": result.cooccurrence_pairs,
        }
        return wv, info
    from ..training.gensim_models import train_fasttext, train_word2vec

    trainer = train_word2vec if args.model == "word2vec" else train_fasttext
    wv, report = trainer(stream, skip_gram=not args.cbow, **common)
    info = {
        "tokens": report.tokens,
        "documents": report.documents,
        "seconds": report.seconds,
        "losses": report.losses,
    }
    return wv, info


def cmd_train(args: argparse.Namespace) -> int:
    if args.model == "static":
        return cmd_train_static(args)
    t0 = time.perf_counter()
    wv, info = _train(args)
    seconds = time.perf_counter() - t0
    saved_as = save_word_vectors(wv, args.output)
    report = {
        "model": args.model,
        "output": args.output,
        "format": saved_as,
        "words": len(wv),
        "dim": wv.dim,
        "wall_seconds": round(seconds, 3),
        **info,
    }
    if args.json:
        print_json(report)
        return 0
    rate = info["tokens"] * args.epochs / seconds if seconds else 0.0
    print(
        f"trained {args.model} on {info['tokens']:,} tokens: {len(wv):,} words x {wv.dim} "
        f"in {seconds:.1f} s ({rate:,.0f} tokens/s over {args.epochs} epochs)"
    )
    if info.get("losses"):
        print(f"loss per epoch: {', '.join(f'{x:.4g}' for x in info['losses'])}")
    print(f"saved to {args.output} ({saved_as})")
    return 0


def cmd_neighbors(args: argparse.Namespace) -> int:
    wv = load_word_vectors(args.vectors, progress=progress())
    hits = wv.most_similar(args.word, args.k)
    if args.json:
        print_json([{"word": w, "score": s} for w, s in hits])
    else:
        for rank, (word, score) in enumerate(hits, start=1):
            print(f"{rank:>3}. {score:.4f}  {word}")
    return 0


def cmd_analogy(args: argparse.Namespace) -> int:
    wv = load_word_vectors(args.vectors, progress=progress())
    hits = wv.analogy(args.a, args.b, args.c, args.k, method=args.method)
    if args.json:
        print_json([{"word": w, "score": s} for w, s in hits])
    else:
        print(f"{args.a} : {args.b} :: {args.c} : ?   ({args.method})")
        for rank, (word, score) in enumerate(hits, start=1):
            print(f"{rank:>3}. {score:.4f}  {word}")
    return 0


def cmd_eval_words(args: argparse.Namespace) -> int:
    if not args.pairs and not args.analogies:
        raise UsageError("give --pairs TSV and/or --analogies FILE")
    wv = load_word_vectors(args.vectors, progress=progress())
    restrict = args.restrict_vocab or None
    pairs = {p: evaluate_word_pairs(wv, p, restrict_vocab=restrict) for p in args.pairs or []}
    for path, result in pairs.items():
        if math.isnan(result.spearman):
            note_undefined_correlation(path, wv.name)
    analogies = None
    if args.analogies:
        analogies = evaluate_analogies(
            wv, args.analogies, restrict_vocab=restrict, method=args.method, progress=progress()
        )
    if args.json:
        print_json(
            {
                "vectors": wv.name,
                "restrict_vocab": restrict,
                "pairs": {p: r.to_dict() for p, r in pairs.items()},
                "analogies": analogies.to_dict() if analogies else None,
            }
        )
        return 0
    print(f"{wv.name}: {len(wv):,} words x {wv.dim}; known words = the top {restrict or 'all'}")
    for path, r in pairs.items():
        print(
            f"  {Path(path).name:<24} Spearman {r.spearman:.4f}  Pearson {r.pearson:.4f}  "
            f"({r.pairs} pairs, {r.oov_pairs} dropped: OOV)"
        )
    if analogies:
        a = analogies
        print(
            f"  {Path(a.file).name:<24} accuracy {a.accuracy:.4f} ({a.correct}/{a.questions}, "
            f"{a.oov_questions} skipped: OOV; {a.method})"
        )
        for s in a.sections:
            print(f"    {s['section']:<28} {s['accuracy']:.4f} ({s['correct']}/{s['questions']})")
    return 0


def register(sub: Any, eval_sub: Any) -> None:
    """Add these commands to the top-level and `eval` sub-parsers."""
    p = add_command(
        sub,
        "train",
        "train word vectors (word2vec, fasttext, glove) or a static sentence model (static: "
        "fitted to a teacher's sentence vectors) on a corpus",
        cmd_train,
    )
    p.add_argument("model", choices=["word2vec", "fasttext", "glove", "static"])
    p.add_argument(
        "corpus",
        metavar="CORPUS",
        help="one document per line (.txt), or .jsonl/.csv/.tsv/.parquet (text column guessed, "
        "or --column); .gz ok",
    )
    p.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="OUT",
        help="a folder (embedcraft format), or a .bin/.txt/.vec word2vec file",
    )
    p.add_argument("--dim", type=int, default=100, help="vector width (default 100)")
    p.add_argument("--window", type=int, default=5, help="context words on each side (default 5)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the corpus (default 5)")
    p.add_argument("--min-count", type=int, default=5, help="ignore rarer words (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="threads (default 2)")
    p.add_argument(
        "--cbow", action="store_true", help="CBOW instead of skip-gram (word2vec, fasttext)"
    )
    p.add_argument(
        "--column",
        metavar="NAME[,NAME]",
        help="text column of a table corpus (default: guessed, e.g. text); several are joined",
    )
    p.add_argument("--strip-tags", action="store_true", help="remove HTML tags such as <br />")
    add_static_arguments(p)

    p = add_command(sub, "neighbors", "the nearest words of a word", cmd_neighbors)
    p.add_argument("word", metavar="WORD")
    p.add_argument(
        "--vectors",
        "-v",
        required=True,
        metavar="NAME_OR_PATH",
        help="glove-6b-50d, a saved folder, or a word2vec/GloVe/.vec file",
    )
    p.add_argument("-k", type=int, default=10, help="how many (default 10)")

    p = add_command(
        sub, "analogy", "A is to B as C is to ? (e.g. man king woman -> queen)", cmd_analogy
    )
    for name in ("a", "b", "c"):
        p.add_argument(name, metavar=name.upper())
    p.add_argument("--vectors", "-v", required=True, metavar="NAME_OR_PATH")
    p.add_argument("-k", type=int, default=5, help="how many answers (default 5)")
    p.add_argument("--method", choices=["3cosadd", "3cosmul"], default="3cosadd")

    p = eval_sub.add_parser(
        "words",
        help="word similarity (Spearman) and analogy accuracy of word vectors",
        description="Score word vectors on word-pair similarity files (word1<TAB>word2<TAB>score) "
        "and Google-format analogy files. Pairs and questions with a word outside the top "
        "--restrict-vocab words are dropped and counted, as gensim does.",
    )
    p.set_defaults(func=cmd_eval_words)
    p.add_argument("--vectors", "-v", required=True, metavar="NAME_OR_PATH")
    p.add_argument("--pairs", nargs="+", metavar="TSV", help="word-pair similarity files")
    p.add_argument("--analogies", metavar="FILE", help="analogy questions (questions-words.txt)")
    p.add_argument(
        "--restrict-vocab",
        type=int,
        default=300_000,
        help="only the N most frequent words count as known (default 300000; 0 = all)",
    )
    p.add_argument("--method", choices=["3cosadd", "3cosmul"], default="3cosadd")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
