"""Commands over interaction logs: recommend, eval recsys."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import read_texts
from ..recommend import (
    Recommender,
    evaluate_cold_start,
    evaluate_recommender,
    read_interactions,
    read_movielens_items,
)
from ..recommend.recommender import METHODS, make_model
from ._common import UsageError, add_command, add_json, print_json

__all__ = ["register"]


def _items(path: str | None) -> dict[str, str] | None:
    """Item texts: MovieLens `u.item`, or any table with id and text columns."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    with open(p, encoding="latin-1") as fh:
        first_line = fh.readline()
    if p.name == "u.item" or "|" in first_line:  # MovieLens' pipe-separated layout
        return read_movielens_items(p)
    table = read_texts(p)
    return dict(zip(table.ids, table.texts, strict=True))


def _check_items(method: str, items: dict[str, str] | None) -> None:
    if method in ("content", "hybrid") and not items:
        raise UsageError(f"--method {method} needs item texts: --items FILE")


def cmd_recommend(args: argparse.Namespace) -> int:
    log = read_interactions(args.ratings)
    items = _items(args.items)
    _check_items(args.method, items)
    recommender = Recommender(args.method, args.encoder, workers=2).fit(log, items)
    if args.user is not None and args.user not in recommender.histories_:
        raise InputError(
            f"unknown user {args.user!r} (the log has {len(recommender.histories_)} users); "
            "for a new user give the items they liked with --liked ITEM ..."
        )
    recs = recommender.recommend(
        args.user, liked=args.liked, k=args.k, exclude_seen=not args.include_seen
    )
    out = [{"item": r.item, "score": r.score, "text": r.text, "because": r.reason} for r in recs]
    if args.json:
        print_json(out)
        return 0
    for rank, r in enumerate(out, start=1):
        label = f" {r['text']}" if r["text"] else ""
        print(f"{rank:>3}. {r['score']:8.4f}  [{r['item']}]{label}  ({r['because']})")
    return 0


def cmd_eval_recsys(args: argparse.Namespace) -> int:
    log = read_interactions(args.ratings)
    items = _items(args.items)
    _check_items(args.method, items)
    model = make_model(args.method, args.encoder, workers=2)
    if args.split == "cold-start":
        if not items:
            raise UsageError("--split cold-start needs item texts: --items FILE")
        result = evaluate_cold_start(model, log, items, k=args.k)
    else:
        test = None
        if args.split != "leave-last-out":  # MovieLens' official splits, beside the ratings file
            folder = Path(args.ratings).parent
            log = read_interactions(folder / f"{args.split}.base")
            test = read_interactions(folder / f"{args.split}.test")
        result = evaluate_recommender(model, log, k=args.k, test=test, items=items)
    result = {"method": args.method, "split": args.split, **result}
    if args.json:
        print_json(result)
        return 0
    print(f"{args.method} on {args.ratings} ({args.split}, {result['users']} users)")
    for key, value in result.items():
        if key not in ("method", "split", "users"):
            print(
                f"  {key:<18} {value:.4f}" if isinstance(value, float) else f"  {key:<18} {value}"
            )
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ratings", "-r", required=True, metavar="FILE",
                   help="interactions: MovieLens u.data (user item rating time), or a CSV with "
                   "user/userId, item/movieId[, rating, timestamp]")  # fmt: skip
    p.add_argument("--items", metavar="FILE",
                   help="item texts for content/hybrid: MovieLens u.item, or a table with id and "
                   "text columns")  # fmt: skip
    p.add_argument("--method", "-m", choices=METHODS, default="item2vec",
                   help="recommender (default item2vec)")  # fmt: skip
    p.add_argument("--encoder", "-e", default="minilm-l6",
                   help="text encoder of content/hybrid (default minilm-l6)")  # fmt: skip
    p.add_argument("-k", type=int, default=10, help="number of items (default 10)")


def register(sub: Any, eval_sub: Any) -> None:
    """Add `recommend` and `eval recsys`."""
    p = add_command(sub, "recommend", "recommend items to a user from an interaction log",
                    cmd_recommend)  # fmt: skip
    _common(p)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", "-u", help="a user id of the log")
    who.add_argument("--liked", nargs="+", metavar="ITEM", help="items a (new) user liked")
    p.add_argument("--include-seen", action="store_true", help="do not drop items already seen")

    p = eval_sub.add_parser(
        "recsys",
        help="HR@k, NDCG@k, MAP@k and coverage of a recommender on an interaction log",
        description="Leave-last-out: each user's latest interaction is held out and ranked "
        "among unseen items. Cold-start: 10%% of the items lose all their interactions and are "
        "ranked for the users who later used them (needs --items). u1..u5: MovieLens 100K's "
        "official 80/20 splits; every test item of a user counts.",
    )
    p.set_defaults(func=cmd_eval_recsys)
    _common(p)
    p.add_argument(
        "--split",
        choices=["leave-last-out", "cold-start", "u1", "u2", "u3", "u4", "u5"],
        default="leave-last-out",
        help="u1..u5: MovieLens 100K's official splits (uN.base / uN.test next to --ratings)",
    )
    add_json(p)
