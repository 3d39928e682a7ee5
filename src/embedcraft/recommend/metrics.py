"""Offline ranking metrics for one held-out item per user, and a leave-last-out evaluation."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .interactions import Interactions, leave_last_out

__all__ = ["evaluate_cold_start", "evaluate_recommender"]


def evaluate_recommender(model: Any, log: Interactions, k: int = 10) -> dict[str, Any]:
    """Fit on all but each user's latest interaction; rank that one among unseen items.

    Returns hr@k (held-out item in the top k), ndcg@k (1 / log2(rank + 1) when it is),
    map@k (1 / rank: the average precision of a single relevant item), coverage (share of the
    catalogue recommended to anyone), users evaluated, fit seconds and recommend latency.
    """
    train, test = leave_last_out(log)
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    histories = train.histories()
    hits = ndcg = ap = 0.0
    shown: set[str] = set()
    latencies = []
    for user, item in zip(test.users.tolist(), test.items.tolist(), strict=True):
        t0 = time.perf_counter()
        top = [i for i, _ in model.recommend(histories.get(user, []), k)]
        latencies.append(time.perf_counter() - t0)
        shown.update(top)
        if item in top:
            rank = top.index(item) + 1
            hits += 1
            ndcg += 1.0 / math.log2(rank + 1)
            ap += 1.0 / rank
    n = len(test)
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


def evaluate_cold_start(
    model: Any, log: Interactions, items: Any, k: int = 10, share: float = 0.1, seed: int = 0
) -> dict[str, Any]:
    """Hold out `share` of the items entirely; rank only those for users who later used them.

    The model is fitted without any interaction on the held-out ("cold") items, with the item
    texts. For each user with a cold interaction and a warm history, the latest cold item is
    the target among all cold items. Returns hr@k, ndcg@k, users.
    """
    rng = np.random.default_rng(seed)
    catalogue = np.array(sorted(set(log.items.tolist())), dtype=object)
    cold = set(rng.choice(catalogue, size=max(1, int(share * len(catalogue))), replace=False))
    is_cold = np.array([i in cold for i in log.items.tolist()])
    train = log.subset(~is_cold)
    model.fit(train, items)
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
    for user, (_, target) in targets.items():
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
