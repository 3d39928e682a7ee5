"""Offline ranking metrics (HR, NDCG, MAP at k, coverage) for leave-last-out, given and
cold-start splits."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..errors import InputError
from .interactions import Interactions, leave_last_out

__all__ = ["evaluate_cold_start", "evaluate_recommender"]


def evaluate_recommender(
    model: Any,
    log: Interactions,
    k: int = 10,
    test: Interactions | None = None,
    items: Any = None,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Fit, then rank each test user's held-out items among the items they have not seen.

    Without `test`: leave-last-out (fit on all but each user's latest interaction, which is
    the one item to find). With `test` (e.g. MovieLens u1.test), fit on `log` and find all of
    a user's test items. Returns hr@k (share of users with a held-out item in the top k),
    ndcg@k (binary gains), map@k (precision at each hit over min(held-out, k)), coverage (share
    of the catalogue recommended to anyone), users, fit seconds and recommend latency (ms).
    `items` (id -> text) is passed to `fit` for the content-based models. `progress` shows the
    fit and the users ranked so far as bars on stderr.
    """
    train, held = leave_last_out(log) if test is None else (log, test)
    t0 = time.perf_counter()
    _fit(model, train, items, progress)
    fit_s = time.perf_counter() - t0
    histories = train.histories()
    wanted: dict[str, set[str]] = {}
    for user, item in zip(held.users.tolist(), held.items.tolist(), strict=True):
        if user in histories:
            wanted.setdefault(user, set()).add(item)
    if not wanted:
        raise InputError("no test user has a training history: nothing to evaluate")
    hits = ndcg = ap = 0.0
    shown: set[str] = set()
    latencies = []
    for user, relevant in tqdm(
        wanted.items(), desc="ranking", unit=" users", disable=not progress, total=len(wanted)
    ):
        t0 = time.perf_counter()
        top = [i for i, _ in model.recommend(histories[user], k)]
        latencies.append(time.perf_counter() - t0)
        shown.update(top)
        found = [rank for rank, item in enumerate(top, start=1) if item in relevant]
        if found:
            hits += 1
            ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(relevant), k) + 1))
            ndcg += sum(1.0 / math.log2(r + 1) for r in found) / ideal
            ap += sum(n / r for n, r in enumerate(found, start=1)) / min(len(relevant), k)
    n = len(wanted)
    ms = np.asarray(latencies) * 1e3
    return {
        f"hr@{k}": hits / n,
        f"ndcg@{k}": ndcg / n,
        f"map@{k}": ap / n,
        "coverage": len(shown) / len(set(train.items.tolist())),
        "users": n,
        "fit_seconds": fit_s,
        "recommend_ms_p50": float(np.percentile(ms, 50)),
        "recommend_ms_p99": float(np.percentile(ms, 99)),
    }


def _fit(model: Any, log: Interactions, items: Any, progress: bool) -> None:
    """`model.fit`, asked for progress bars only when they are wanted (any model may be given)."""
    if progress:
        model.fit(log, items, progress=True)
    else:
        model.fit(log, items)


def evaluate_cold_start(
    model: Any,
    log: Interactions,
    items: Any,
    k: int = 10,
    share: float = 0.1,
    seed: int = 0,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Hold out `share` of the items entirely; rank only those for users who later used them.

    The model is fitted without any interaction on the held-out ("cold") items, with the item
    texts. For each user with a cold interaction and a warm history, the latest cold item is
    the target among all cold items. Returns hr@k, ndcg@k, users. `progress`: bars on stderr.
    """
    rng = np.random.default_rng(seed)
    catalogue = np.array(sorted(set(log.items.tolist())), dtype=object)
    cold = set(rng.choice(catalogue, size=max(1, int(share * len(catalogue))), replace=False))
    is_cold = np.array([i in cold for i in log.items.tolist()])
    train = log.subset(~is_cold)
    _fit(model, train, items, progress)
    histories = train.histories()
    targets: dict[str, tuple[int, str]] = {}
    for u, i, t in zip(
        log.users[is_cold], log.items[is_cold], log.timestamps[is_cold], strict=True
    ):
        if u in histories and (u not in targets or t > targets[u][0]):
            targets[u] = (int(t), str(i))
    candidates = np.array([model.index_[i] for i in sorted(cold) if i in model.index_], np.int64)
    names = [model.items_[c] for c in candidates]
    hits = ndcg = 0.0
    for user, (_, target) in tqdm(
        targets.items(), desc="ranking", unit=" users", disable=not progress, total=len(targets)
    ):
        scores = np.asarray(model.score(histories[user]), dtype=np.float64)[candidates]
        top = np.argsort(-scores, kind="stable")[:k]
        ranked = [names[j] for j in top]
        if target in ranked:
            hits += 1
            ndcg += 1.0 / math.log2(ranked.index(target) + 2)
    n = max(len(targets), 1)
    return {
        f"hr@{k}": hits / n,
        f"ndcg@{k}": ndcg / n,
        "users": len(targets),
        "cold_items": len(cold),
    }
