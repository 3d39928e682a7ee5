"""Commands over collections: index, search --collection, collection info|rebuild|delete,
eval retrieval --collection."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..encoders.contract import InputKind
from ..errors import InputError
from ..evaluate import load_beir
from ..evaluate.retrieval import retrieval_metrics
from ..io import TextTable
from ..search import Hit
from ..store import (
    Collection,
    PostgresCollection,
    is_collection_folder,
    is_postgres_url,
    open_collection,
    parse_where,
)
from ..store.images import ImageTable, collection_input_kind
from ..store.ingest import index_documents, index_table
from ._common import UsageError, add_cache, add_command, note, print_json, progress
from ._images import (
    index_image_files,
    new_collection_kind,
    read_source,
    refuse_text_query,
    search_by_image,
)

__all__ = ["collection_args", "eval_collection", "register", "search_collection"]


def collection_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    """--collection, --mode and --where, shared by search and eval retrieval."""
    p.add_argument(
        "--collection",
        "-c",
        required=required,
        metavar="DIR_OR_URL",
        help="a collection folder, or a postgresql:// URL",
    )
    p.add_argument(
        "--mode",
        choices=["dense", "sparse", "hybrid"],
        help="with --collection: dense, sparse or hybrid (default: hybrid when the collection "
        "has a dense and a sparse encoder)",
    )
    p.add_argument(
        "--fusion",
        choices=["rrf", "weighted"],
        default="rrf",
        help="hybrid: reciprocal rank fusion (default) or a weighted blend of scaled scores",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=0.5,
        help="weighted fusion: weight of the dense side, 0..1 (default 0.5)",
    )


def _print_hits(hits: list[Hit], args: argparse.Namespace, hybrid: bool) -> None:
    """The hits as a table; a hybrid search adds each side's own score (- where that side did
    not return the hit)."""
    explain = args.explain
    if not hits:
        cut = getattr(args, "min_score", None)
        print("no results" + (f" (none scored at least --min-score {cut:g})" if cut else ""))
        return
    if hybrid:
        print(
            f"{'':>3}  {'score':>8}  {'dense':>8}  {'sparse':>8}  (score: 1 = first on both sides)"
        )
    for h in hits:
        text = h.text.replace("\n", " ")
        text = text if len(text) <= 100 else text[:97] + "..."
        sides = ""
        if hybrid:
            sides = "".join(
                f"  {'-':>8}" if v is None else f"  {v:8.4f}"
                for v in (h.dense_score, h.sparse_score)
            )
        print(f"{h.rank:>3}. {h.score:8.4f}{sides}  [{h.id}]  {text}")
        if explain and h.explanation:
            for side, why in h.explanation.items():
                if side == "scores":
                    continue
                if "terms" in why:
                    shown = [f"{t['term']} ({t['contribution']:.2f})" for t in why["terms"]]
                    terms = ", ".join(shown)
                    print(f"       {side}: {terms or 'no shared term'}")
                elif why.get("words"):
                    words = ", ".join(f"{w['word']} ({w['similarity']:.2f})" for w in why["words"])
                    print(f"       {side}: closest words {words}")
                elif why.get("note"):
                    print(f"       {side}: {why['note']}")


def where_arg(items: list[str] | None) -> dict[str, Any]:
    """The --where filters as a filter mapping; a malformed one is a usage error (exit 2)."""
    try:
        return parse_where(items or [])
    except InputError as exc:
        message = str(exc)
        raise UsageError(
            message if message.startswith("--where") else f"--where: {message}"
        ) from None


def search_collection(args: argparse.Namespace) -> int:
    """`search QUERY --collection ...`"""
    where = where_arg(args.where)
    with open_collection(args.collection) as col:
        if args.image:
            hits = search_by_image(args, col)
            if args.min_score is not None:
                hits = [h for h in hits if h.score >= args.min_score]
            _print_or_json(hits, args, False)
            return 0
        refuse_text_query(args, col)
        hits = col.search(
            args.query, k=args.k, mode=args.mode, where=where or None, encoder=args.encoder,
            fusion=args.fusion, alpha=args.alpha, explain=args.explain, min_score=args.min_score,
        )  # fmt: skip
        _print_or_json(hits, args, _is_hybrid(col, args))
    return 0


def _is_hybrid(col: Any, args: argparse.Namespace) -> bool:
    """Whether a text search of `col` with these options fuses a dense and a sparse side."""
    if args.mode or args.encoder:
        return bool(args.mode == "hybrid")
    return {col.encoder(name).sparse for name in col.encoder_names} == {True, False}


def _print_or_json(hits: list[Hit], args: argparse.Namespace, hybrid: bool) -> None:
    if args.json:
        print_json([h.to_dict() for h in hits])
    else:
        _print_hits(hits, args, hybrid)


def eval_collection(args: argparse.Namespace) -> int:
    """`eval retrieval --data DIR --collection ...`: index the corpus if needed, then score."""
    data = load_beir(args.data, args.split)
    encoders = args.encoder or None
    with open_collection(args.collection, encoders=encoders) as col:
        t0 = time.perf_counter()
        _index_corpus(col, data, args.collection)
        t1 = time.perf_counter()
        results = col.search_many(
            data.query_texts, 100, mode=args.mode, fusion=args.fusion, alpha=args.alpha
        )
        t2 = time.perf_counter()
        names = col.encoder_names
    ranked = {q: [h.id for h in hits] for q, hits in zip(data.query_ids, results, strict=True)}
    metrics = retrieval_metrics(ranked, data.qrels)
    mode = args.mode or ("hybrid" if len(names) > 1 else "default")
    out = {
        "dataset": data.name,
        "collection": str(args.collection),
        "encoders": names,
        "mode": mode,
        "metrics": metrics,
        "queries": len(data.query_ids),
        "seconds": {"index": t1 - t0, "search": t2 - t1},
    }
    if args.json:
        print_json(out)
        return 0
    print(f"{data.name} [{args.split}] through {args.collection} ({', '.join(names)}; {mode})")
    print(f"  nDCG@10    {metrics['ndcg@10']:.4f}")
    print(f"  recall@100 {metrics['recall@100']:.4f}")
    print(f"  MRR@10     {metrics['mrr@10']:.4f}")
    print(f"  {len(data.query_ids)} queries; index {t1 - t0:.2f} s, search {t2 - t1:.2f} s")
    return 0


def _index_corpus(col: Any, data: Any, where: str) -> None:
    """Bring the collection to hold exactly the corpus: index it, or resume an interrupted
    indexing (documents stored with the same text are not encoded again); refuse a collection
    that holds other documents, whose scores would not be the benchmark's."""
    keep = [i for i, text in enumerate(data.doc_texts) if text.strip()]
    table = TextTable([data.doc_ids[i] for i in keep], [data.doc_texts[i] for i in keep], [])
    before = col.count()
    states = col.compare_stored(table.texts, table.ids) if before else []
    if before > len(states) - states.count("new"):  # documents of something else
        others = sorted(set(col.ids()) - set(table.ids))
        shown = ", ".join(repr(i) for i in others[:3])
        raise InputError(
            f"{where} holds {len(others)} document(s) that are not in {data.name} ({shown}"
            f"{', ...' if len(others) > 3 else ''}), so its scores would not be the "
            "benchmark's: evaluate with a new collection"
        )
    if len(keep) < len(data.doc_ids):
        note(f"{len(data.doc_ids) - len(keep)} documents with an empty text left out")
    if not before:
        note(f"indexing the {len(keep)} documents of {data.name} into the collection")
    counts = index_table(col, table, progress=progress(), compare_metadata=False)
    if before and counts.written:
        changed = f", {counts.replaced} re-encoded (their text changed)" if counts.replaced else ""
        note(
            f"resuming the indexing of {data.name}: {counts.unchanged} documents already "
            f"indexed, {counts.added} added{changed}"
        )


def cmd_index(args: argparse.Namespace) -> int:
    # A new collection is created only once its source has been read: a bad source or a
    # text/image mix-up leaves nothing behind.
    kind = None if is_collection_folder(args.collection) else new_collection_kind(args.encoder)
    source = None if kind is None else read_source(args, kind)
    with open_collection(args.collection, encoders=args.encoder) as col:
        before = col.count()
        kind = collection_input_kind(col)
        if source is None:
            source = read_source(args, kind)
        if isinstance(source, ImageTable):
            done = index_image_files(args, col, source)
        else:
            t0 = time.perf_counter()
            made = index_documents(col, source, batch_size=args.batch_size, progress=progress())
            done = {"indexed": made.written, "seconds": time.perf_counter() - t0,
                    "added": made.added, "replaced": made.replaced,
                    "unchanged": made.unchanged}  # fmt: skip
        info = col.info()
    images = kind == InputKind.IMAGE
    out: dict[str, Any] = {
        "collection": str(args.collection),
        "indexed": done["indexed"],
        "count_before": before,
        "count": info["count"],
        "encoders": [e["name"] for e in info["encoders"]],
        "seconds": done["seconds"],
        **({"failed": done["failed"]} if images else {}),
        **{k: done[k] for k in ("added", "replaced", "unchanged") if k in done},
    }
    if args.json:
        print_json(out)
    else:
        what = "images" if images else "documents"
        tally = ""
        if "unchanged" in out:
            tally = f": {out['unchanged']} unchanged, {out['added']} added, "
            tally += f"{out['replaced']} replaced"
        print(
            f"indexed {out['indexed']} {what} from {args.source} into {args.collection} "
            f"({', '.join(out['encoders'])}) in {out['seconds']:.1f} s{tally}; the collection "
            f"holds {info['count']}"
        )
    return 0


def _confirm_delete(args: argparse.Namespace) -> None:
    """Ask before `collection delete` (unless --yes); without a terminal to ask on, refuse."""
    where = args.collection
    if not is_postgres_url(where) and not is_collection_folder(where):
        Collection.destroy(where)  # not a collection: says so, deletes nothing
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"deleting {where} cannot be undone, and there is no terminal to confirm it on: "
            "add --yes to delete it (nothing deleted)"
        )
    print(
        f"delete the collection {where} and every document in it? [y/N] ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise InputError(f"nothing deleted ({where} is as it was)")


def cmd_collection(args: argparse.Namespace) -> int:
    if args.action == "delete":
        _confirm_delete(args)
        if is_postgres_url(args.collection):
            PostgresCollection.destroy(args.collection)
        else:
            Collection.destroy(args.collection)
        out: dict[str, Any] = {"deleted": str(args.collection)}
    else:
        with open_collection(args.collection) as col:
            if args.action == "rebuild":
                t0 = time.perf_counter()
                col.rebuild()
                note(f"indexes rebuilt in {time.perf_counter() - t0:.1f} s")
            out = col.info()
    if args.json:
        print_json(out)
    elif args.action == "delete":
        print(f"deleted {args.collection}")
    else:
        where = out.get("path", out.get("url"))  # a folder, or a PostgreSQL URL
        print(f"{where}: {out['count']} documents (generation {out['generation']})")
        for e in out["encoders"]:
            kind = "sparse" if e["sparse"] else f"dense, {e['dim']} dims"
            index = e["index"]
            state = "no index yet (built on the first search)"
            if index:
                fresh = "up to date" if index["current"] else "stale: updated on the next search"
                state = f"{index['kind']} index, {fresh}"
            print(f"  {e['name']:<24} {kind:<18} {state}")
    return 0


def register(sub: Any) -> None:
    """Add `index` and `collection` to the top-level sub-parsers."""
    p = add_command(
        sub,
        "index",
        "add (or replace) the documents of a file or folder in a collection, creating it",
        cmd_index,
    )
    add_cache(p)
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="CSV/TSV/JSONL/Parquet/TXT file, or a folder of .txt/.md (for an image "
        "collection: a folder of images, or a table whose --column holds image paths)",
    )
    p.add_argument(
        "--collection", "-c", required=True, metavar="DIR_OR_URL", help="folder or postgres URL"
    )
    p.add_argument(
        "--encoder",
        "-e",
        action="append",
        metavar="NAME_OR_PATH",
        help="encoder of a new collection; repeat for several (e.g. -e bm25 -e minilm-l6)",
    )
    p.add_argument(
        "--column",
        metavar="NAME[,NAME]",
        help="text column (default: text, content, ...); several are joined; for images, the "
        "image-path column (default: path)",
    )
    p.add_argument("--id-column", metavar="NAME", help="id column (default: id, _id, ...)")
    p.add_argument("--batch-size", type=int, default=256, help="documents per transaction")

    p = add_command(
        sub, "collection", "show, rebuild the indexes of, or delete a collection", cmd_collection
    )
    p.add_argument("action", choices=["info", "rebuild", "delete"])
    p.add_argument("collection", metavar="DIR_OR_URL")
    p.add_argument("--yes", "-y", action="store_true", help="delete: do not ask for confirmation")


def check_search_args(args: argparse.Namespace) -> None:
    """search: either --docs with --encoder (in memory) or --collection; anything else is a
    usage error (exit 2)."""
    if args.collection and args.docs:
        raise UsageError("give either --docs (search a file in memory) or --collection, not both")
    if not args.collection and not args.docs:
        raise UsageError("give --docs FILE --encoder NAME, or --collection DIR_OR_URL")
    if args.docs and not args.encoder:
        raise UsageError("--docs needs --encoder")
    if not args.collection and (args.where or args.mode or args.explain):
        raise UsageError("--where, --mode and --explain need --collection")
    if args.image and args.query is not None:
        raise UsageError("give either a text QUERY or --image FILE, not both")
    if args.image and (args.mode or args.explain):
        raise UsageError("--mode and --explain apply to text queries, not --image")
    if args.image and not args.collection:
        raise UsageError("--image searches a collection of images: give --collection")
    if not args.image and args.query is None:
        raise UsageError("give a text QUERY (or --image FILE for a collection of images)")
