"""Commands over interaction logs: recommend, similar-items, eval recsys."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import read_texts
from ..recommend import (
    ALSRecommender,
    ContentRecommender,
    HybridRecommender,
    Item2VecRecommender,
    PopularityRecommender,
    evaluate_cold_start,
    evaluate_recommender,
    read_interactions,
    read_movielens_items,
)
from ._common import add_command, add_json, print_json

__all__ = ["register"]

METHODS = ("popularity", "item2vec", "als", "content", "hybrid")


def _items(path: str | None) -> dict[str, str] | None:
    """Item texts: MovieLens `u.item`, or any table with id and text columns."""
    if path is None:
        return None
    p = Path(path)
    if p.name == "u.item" or "|" in p.read_text(encoding="latin-1")[:2000].split("\n", 1)[0]:
        return read_movielens_items(p)
    table = read_texts(p)
    return dict(zip(table.ids, table.texts, strict=True))


def _model(method: str, encoder: str, items: dict[str, str] | None) -> Any:
    if method in ("content", "hybrid") and not items:
        raise InputError(f"--method {method} needs item texts: --items FILE")
    if method == "popularity":
        return PopularityRecommender()
    if method == "item2vec":
        return Item2VecRecommender(workers=2)
    if method == "als":
        return ALSRecommender()
    if method == "content":
        return ContentRecommender(encoder=encoder)
    return HybridRecommender(Item2VecRecommender(workers=2), ContentRecommender(encoder=encoder))


def _fit(model: Any, log: Any, items: dict[str, str] | None) -> Any:
    if isinstance(model, ContentRecommender | HybridRecommender):
        return model.fit(log, items)
    return model.fit(log)


class _WithItems:
    """Lets evaluate_cold_start call fit(log, items) on interaction-only models."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, log: Any, items: Any = None) -> Any:
        _fit(self.model, log, items)
        self.items_, self.index_ = self.model.items_, self.model.index_
        return self

    def score(self, history: Any) -> Any:
        return self.model.score(history)


def cmd_recommend(args: argparse.Namespace) -> int:
    log = read_interactions(args.ratings)
    items = _items(args.items)
    model = _fit(_model(args.method, args.encoder, items), log, items)
    if args.liked:
        history = list(args.liked)
        unknown = [i for i in history if i not in model.index_]
        if unknown:
            raise InputError(f"unknown item(s): {', '.join(unknown[:5])}")
    else:
        histories = log.histories()
        if args.user not in histories:
            raise InputError(
                f"unknown user {args.user!r} (the log has {len(histories)} users); for a new user "
                "give the items they liked with --liked ITEM ..."
            )
        history = histories[args.user]
    recs = model.recommend(history, k=args.k, exclude_seen=not args.include_seen)
    texts = items or {}
    out = []
    for item, score in recs:
        liked = model.because(history, item)
        reason = (
            f"because you liked {texts.get(liked, liked)}" if liked else "popular with everyone"
        )
        out.append({"item": item, "score": score, "text": texts.get(item), "because": reason})
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
    model = _model(args.method, args.encoder, items)
    if args.split == "cold-start":
        if not items:
            raise InputError("--split cold-start needs item texts: --items FILE")
        result = evaluate_cold_start(_WithItems(model), log, items, k=args.k)
    else:
        if isinstance(model, ContentRecommender | HybridRecommender):
            model = _BoundItems(model, items)
        test = None
        if args.split != "leave-last-out":  # MovieLens' official splits, beside the ratings file
            folder = Path(args.ratings).parent
            log = read_interactions(folder / f"{args.split}.base")
            test = read_interactions(folder / f"{args.split}.test")
        result = evaluate_recommender(model, log, k=args.k, test=test)
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


class _BoundItems:
    """A content/hybrid model whose fit(log) also passes the item texts."""

    def __init__(self, model: Any, items: dict[str, str] | None) -> None:
        self.model, self.items = model, items

    def fit(self, log: Any) -> Any:
        self.model.fit(log, self.items)
        return self

    def recommend(self, history: Any, k: int) -> Any:
        return self.model.recommend(history, k)


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
