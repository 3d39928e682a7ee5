"""Commands over interaction logs: recommend, eval recsys.

`recommend` keeps each model it fits: in the embedcraft cache folder, named by a hash of the log,
the item texts, the method (and encoder) and the embedcraft version, or in the folder given with
--model. The next call with the same log and settings loads it instead of fitting again; it says
so on stderr, and --refit fits anew.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from .. import __version__
from .._cache import cache_dir
from ..errors import EmbedcraftError, InputError
from ..io import read_texts
from ..recommend import (
    Interactions,
    Recommender,
    evaluate_cold_start,
    evaluate_recommender,
    read_interactions,
    read_movielens_items,
)
from ..recommend.recommender import (
    METHODS,
    SAVED_FILE,
    SAVED_FORMAT_VERSION,
    data_fingerprint,
    make_model,
)
from ._common import UsageError, add_command, add_json, note, print_json, progress

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


def _settings(method: str, encoder: str) -> tuple[str, str | None]:
    """What makes two fits of one log the same model (the encoder only matters to some)."""
    return method, encoder if method in ("content", "hybrid") else None


def _load(folder: Path) -> Recommender | None:
    """The recommender saved in `folder`, or None (with a note) when it cannot be read."""
    try:
        return Recommender.load(folder)
    except (EmbedcraftError, OSError) as exc:
        note(f"the saved model in {folder} cannot be used ({exc}); fitting it again")
        return None


def _fitted(
    args: argparse.Namespace, log: Interactions, items: dict[str, str] | None
) -> Recommender:
    """The recommender of this log and these settings: loaded when saved before, else fitted
    and saved (in --model DIR, or the cache folder)."""
    fingerprint = data_fingerprint(log, items)
    wanted = _settings(args.method, args.encoder)
    if args.model:
        folder = Path(args.model)
        if folder.exists() and not (folder / SAVED_FILE).exists() and any(folder.iterdir()):
            raise InputError(
                f"{folder} holds other files and no saved recommender: give --model a new folder"
            )
    else:
        key = json.dumps([SAVED_FORMAT_VERSION, __version__, *wanted, fingerprint])
        folder = cache_dir("recommenders") / hashlib.sha256(key.encode()).hexdigest()[:32]
    saved = _load(folder) if (folder / SAVED_FILE).exists() and not args.refit else None
    if saved is not None:
        if (
            _settings(saved.method, saved.encoder) == wanted
            and saved.data_fingerprint_ == fingerprint
        ):
            note(
                f"reusing the {saved.method} model fitted on this log before (saved in {folder}); "
                "--refit fits it again"
            )
            return saved
        note(f"{folder} holds a model of another log or other settings; fitting a new one there")
    recommender = Recommender(args.method, args.encoder, workers=args.workers)
    recommender.fit(log, items, progress=progress())
    try:
        recommender.save(folder)
    except OSError as exc:
        note(f"could not keep the fitted model in {folder} ({exc}); the next run fits it again")
    else:
        if args.model:
            note(f"saved the fitted {args.method} model to {folder}; --model {folder} reuses it")
    return recommender


def _unknown_user(user: str, users: int) -> InputError:
    return InputError(
        f"unknown user {user!r} (the log has {users} users); "
        "for a new user give the items they liked with --liked ITEM ..."
    )


def _recommender(args: argparse.Namespace) -> Recommender:
    """The recommender to ask: loaded from --model DIR alone, else the log's (saved or fitted)."""
    if args.ratings is None:
        if not args.model:
            raise UsageError("give --ratings FILE (an interaction log) or --model DIR (saved)")
        if args.refit:
            raise UsageError("--refit needs --ratings FILE, the log to fit on")
        if args.items:
            note("a saved model keeps the item texts it was fitted with; --items is ignored")
        recommender = Recommender.load(args.model)
        note(
            f"reusing the {recommender.method} model saved in {args.model}; "
            "to fit it again give --ratings FILE --refit"
        )
        if args.user is not None and args.user not in recommender.histories_:
            raise _unknown_user(args.user, len(recommender.histories_))
        return recommender
    log = read_interactions(args.ratings)
    users = set(log.users.tolist())
    if args.user is not None and args.user not in users:  # said before any fitting
        raise _unknown_user(args.user, len(users))
    items = _items(args.items)
    _check_items(args.method, items)
    return _fitted(args, log, items)


def cmd_recommend(args: argparse.Namespace) -> int:
    recommender = _recommender(args)
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
        result = evaluate_recommender(
            model, log, k=args.k, test=test, items=items, progress=progress()
        )
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


def _workers(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of threads, 1 or more: {value!r}"
        )
    return number


def _common(p: argparse.ArgumentParser, *, ratings_required: bool = True) -> None:
    p.add_argument("--ratings", "-r", required=ratings_required, metavar="FILE",
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
    p.add_argument("--workers", type=_workers, metavar="N",
                   help="item2vec threads (default: every core available; 1 gives the same "
                   "model at every fit)")  # fmt: skip


def register(sub: Any, eval_sub: Any) -> None:
    """Add `recommend` and `eval recsys`."""
    p = add_command(sub, "recommend", "recommend items to a user from an interaction log",
                    cmd_recommend)  # fmt: skip
    p.description = (
        "Recommend items to a user of the log (--user) or to someone who liked some items "
        "(--liked). The fitted model is kept (in the embedcraft cache, or in --model DIR) and "
        "reused while the log and the settings stay the same; --refit fits it again."
    )
    _common(p, ratings_required=False)
    p.add_argument("--model", metavar="DIR",
                   help="keep the fitted model in this folder (fitted and saved there on "
                   "first use, loaded afterwards); without --ratings, use the model saved "
                   "there")  # fmt: skip
    p.add_argument("--refit", action="store_true",
                   help="fit again even when a saved model fits this log and these "
                   "settings")  # fmt: skip
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
