"""Commands over texts: models, encode, fit, similarity, search, eval retrieval, demo."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..catalog import list_encoders, load_encoder
from ..demo import print_demo, run_demo
from ..encoders.contract import InputKind
from ..errors import InputError
from ..evaluate import evaluate_retrieval, load_beir
from ..io import TEXT_FORMATS, VECTOR_FORMATS, read_texts, write_vectors
from ..search import MemoryIndex
from ..vectors import similarity
from ._common import (
    UsageError,
    add_cache,
    add_command,
    add_json,
    column_args,
    encode_notes,
    encoder_arg,
    encoder_from_args,
    fit_from,
    note,
    print_json,
    progress,
)
from ._distributed import encode_on_ray, engine_args, refuse_ray_options
from ._images import encode_image_files, new_collection_kind, refuse_images_for_text
from ._store import check_search_args, collection_args, eval_collection, search_collection

__all__ = ["register"]


def cmd_models(args: argparse.Namespace) -> int:
    entries = list_encoders()
    if args.json:
        print_json(
            [
                {
                    "name": e.name,
                    "kind": e.kind,
                    "width": e.width,
                    "needs_fit": e.needs_fit,
                    "source": e.source,
                    "description": e.description,
                }
                for e in entries
            ]
        )
        return 0
    w_name = max(len(e.name) for e in entries) + 1
    w_source = max(len(e.source) for e in entries) + 1
    print(f"{'name':<{w_name}} {'kind':<7} {'width':<16} {'fit':<4} {'source':<{w_source}} about")
    for e in entries:
        print(
            f"{e.name:<{w_name}} {e.kind:<7} {e.width:<16} {'yes' if e.needs_fit else 'no':<4} "
            f"{e.source:<{w_source}} {e.description}"
        )
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        if new_collection_kind([args.encoder]) == InputKind.IMAGE:
            raise UsageError("--engine ray encodes texts; encode images without it")
        return encode_on_ray(args)
    refuse_ray_options(args)
    encoder = encoder_from_args(args)
    if encoder.input_kind == InputKind.IMAGE:
        return encode_image_files(args, encoder)
    refuse_images_for_text(args.input, f"encoder {encoder.name!r} reads")
    table = read_texts(args.input, column=args.column, id_column=args.id_column)
    t0 = time.perf_counter()
    fitted_on = fit_from(encoder, args.fit_on, table.texts, "the input")
    encoded = encoder.encode_with_report(
        table.texts, batch_size=args.batch_size, progress=progress()
    )
    vectors = encoded.vectors
    seconds = time.perf_counter() - t0
    write_vectors(args.output, vectors, table.ids)
    if args.save_encoder:
        encoder.save(args.save_encoder)
    report = {
        "output": str(args.output),
        "encoder": encoder.name,
        "rows": int(vectors.shape[0]),
        "dim": int(vectors.shape[1]),
        "sparse": bool(encoder.sparse),
        "fitted_on": fitted_on,
        "seconds": round(seconds, 4),
        **encode_notes(encoded.report, table.ids),
    }
    if args.json:
        print_json(report)
    else:
        fitted = f", fitted on {fitted_on}" if fitted_on else ""
        print(
            f"wrote {report['rows']} x {report['dim']} {'sparse ' if encoder.sparse else ''}"
            f"vectors to {args.output} ({encoder.name}{fitted}, {seconds:.2f} s)"
        )
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    table = read_texts(args.input, column=args.column, id_column=args.id_column)
    encoder = load_encoder(args.encoder)
    t0 = time.perf_counter()
    encoder.fit(table.texts)
    seconds = time.perf_counter() - t0
    encoder.save(args.output)
    report = {
        "encoder": encoder.name,
        "output": str(args.output),
        "texts": len(table),
        "dim": int(encoder.dim),
        "seconds": round(seconds, 4),
    }
    if args.json:
        print_json(report)
    else:
        print(
            f"fitted {encoder.name} on {len(table)} texts (width {encoder.dim}, {seconds:.2f} s); "
            f"saved to {args.output}"
        )
    return 0


def cmd_similarity(args: argparse.Namespace) -> int:
    encoder = encoder_from_args(args)
    pair = [args.text_a, args.text_b]
    fitted_on = fit_from(encoder, args.fit_on, pair, "the two texts")
    if fitted_on == "the two texts":
        note(
            f"{encoder.name} was fitted on the two texts alone; "
            "pass --fit-on FILE for corpus statistics"
        )
    metric = encoder.metric
    encode_queries = encoder.encode_queries
    score = float(
        similarity(encode_queries([args.text_a]), encoder.encode([args.text_b]), metric)[0, 0]
    )
    if args.json:
        print_json(
            {"encoder": encoder.name, "metric": metric, "score": score, "fitted_on": fitted_on}
        )
    else:
        print(f"{score:.6f}  ({metric}, {encoder.name})")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    check_search_args(args)
    if args.collection:
        return search_collection(args)
    encoder = encoder_from_args(args)
    if encoder.input_kind != InputKind.TEXT:
        raise InputError(
            f"search --docs searches texts, but {encoder.name!r} reads {encoder.input_kind}s: "
            "index the images (embedcraft index FOLDER -c COL -e ENCODER), then search the "
            "collection with --image FILE"
        )
    table = read_texts(args.docs, column=args.column, id_column=args.id_column)
    index = MemoryIndex.from_texts(encoder, table.texts, table.ids, progress=progress())
    hits = index.search(args.query, k=args.k)
    if args.min_score is not None:
        hits = [h for h in hits if h.score >= args.min_score]
    if args.json:
        print_json([{"id": h.id, "score": h.score, "text": h.text} for h in hits])
        return 0
    if index.fitted_here:
        note(f"{encoder.name} was fitted on the {len(table)} documents of {args.docs}")
    for h in hits:
        text = h.text if len(h.text) <= 100 else h.text[:97] + "..."
        print(f"{h.rank:>3}. {h.score:8.4f}  [{h.id}]  {text}")
    return 0


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    if args.collection:
        return eval_collection(args)
    if not args.encoder or len(args.encoder) > 1:
        raise UsageError("give one --encoder, or --collection (which may take several)")
    if args.mode:
        raise UsageError("--mode needs --collection")
    args.encoder = args.encoder[0]
    data = load_beir(args.data, args.split)
    encoder = encoder_from_args(args)
    result = evaluate_retrieval(encoder, data, progress=progress())
    if args.json:
        print_json(result.to_dict())
        return 0
    m = result.metrics
    fitted = " (fitted on the corpus)" if result.fitted_on_corpus else ""
    print(f"{result.dataset} [{args.split}] with {result.encoder}{fitted}")
    print(f"  nDCG@10    {m['ndcg@10']:.4f}")
    print(f"  recall@100 {m['recall@100']:.4f}")
    print(f"  MRR@10     {m['mrr@10']:.4f}")
    print(
        f"  {result.queries} judged queries, {result.skipped_queries} skipped (no judgement), "
        f"{result.documents} documents; "
        + ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items())
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    result = run_demo(k=args.k)
    if args.json:
        print_json(result.to_dict())
    else:
        print_demo(result, sys.stdout)
    return 0


def register(sub: Any, eval_sub: Any) -> None:
    """Add these commands to the top-level and `eval` sub-parsers."""

    def command(name: str, help_: str, func: Any) -> argparse.ArgumentParser:
        return add_command(sub, name, help_, func)

    command("models", "list every encoder: kind, width, source, whether it needs fit", cmd_models)

    p = command(
        "encode", "encode the texts of a file (or images) and write the vectors", cmd_encode
    )
    add_cache(p)
    encoder_arg(p)
    p.add_argument(
        "--input",
        "-i",
        required=True,
        metavar="FILE",
        help=f"texts: {', '.join(TEXT_FORMATS)} (optionally .gz); for an image encoder, a "
        "folder of images or a table whose --column (default: path) holds image paths",
    )
    p.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="OUT",
        help=f"vectors: {', '.join(VECTOR_FORMATS)} (sparse: .npz or .parquet)",
    )
    column_args(p, "input")
    p.add_argument(
        "--fit-on",
        metavar="FILE",
        help="fit the encoder on this file (default: on the input, when it needs fitting)",
    )
    p.add_argument("--save-encoder", metavar="DIR", help="also save the (fitted) encoder to DIR")
    p.add_argument("--batch-size", type=int, metavar="N", help="texts per batch")
    engine_args(p)

    p = command("fit", "fit an encoder on a corpus file and save it to a folder", cmd_fit)
    encoder_arg(p, postprocess=False)
    p.add_argument("--input", "-i", required=True, metavar="FILE", help="the corpus")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="folder to save it to")
    column_args(p, "input")

    p = command(
        "similarity",
        "score how close two texts are",
        cmd_similarity,
    )
    p.add_argument("text_a", metavar="TEXT_A", help="first text (the query, for bm25)")
    p.add_argument("text_b", metavar="TEXT_B", help="second text (the document, for bm25)")
    encoder_arg(p)
    p.add_argument(
        "--fit-on",
        metavar="FILE",
        help="corpus to fit on (default: the two texts, for encoders that need fitting)",
    )

    p = command(
        "search",
        "search a collection (--collection), or the documents of a file in memory (--docs)",
        cmd_search,
    )
    p.add_argument("query", nargs="?", metavar="QUERY", help="the text to search for")
    p.add_argument(
        "--image",
        metavar="FILE",
        help="search a collection of images for the images closest to this one",
    )
    p.add_argument("--docs", "-d", metavar="FILE", help="documents to search in memory")
    encoder_arg(p, required=False)
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument(
        "--min-score",
        type=float,
        metavar="X",
        help="leave out hits scoring less than X (cosine for dense, the BM25 score for sparse, "
        "0..1 for hybrid)",
    )
    column_args(p, "documents")
    collection_args(p, required=False)
    p.add_argument(
        "--where",
        "-w",
        action="append",
        metavar="FILTER",
        help="metadata filter: key=value, key!=value, key>=N, key<N, key=a,b (IN); repeat to AND",
    )
    p.add_argument(
        "--explain", action="store_true", help="say which terms or words made each hit match"
    )

    p = eval_sub.add_parser(
        "retrieval",
        help="nDCG@10, recall@100, MRR@10 on a BEIR-layout folder",
        description="Rank the corpus for each judged query and print nDCG@10, recall@100, MRR@10. "
        "An encoder that needs fitting is fitted on the corpus unless a fitted one is given.",
    )
    p.set_defaults(func=cmd_eval_retrieval)
    add_cache(p)
    p.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="folder with corpus.jsonl[.gz], queries.jsonl, qrels/SPLIT.tsv",
    )
    encoder_arg(p, quantize=True, required=False, repeat=True)
    collection_args(p, required=False)
    p.add_argument("--split", default="test", help="qrels split (default: test)")
    add_json(p)

    p = command(
        "demo", "the main job: every encoder on a small shipped corpus, side by side", cmd_demo
    )
    p.add_argument("-k", type=int, default=3, help="hits per query per encoder (default 3)")
