"""Offline ranking metrics for one held-out item per user, and a leave-last-out evaluation."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .interactions import Interactions, leave_last_out

__all__ = ["evaluate_recommender"]


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
