"""Recommenders on MovieLens 100K: quality, fit time and per-user latency, with `implicit` as peer.

Every method of `embedcraft.recommend` is fitted on the leave-last-out training split (each user's
latest rating held out) and asked for each user's top 10 one user at a time, as a service would;
the table gives NDCG@10 / HR@10, fit seconds and recommend latency p50/p99. In the same run the
peer, the `implicit` library's ALS used directly (its own `recommend` with the user's row), is
timed on the same matrix, so the cost of our wrapper is a printed ratio. Needs
../shared/data/movielens_100k.

    python bench/recsys.py [--methods popularity,item2vec,als,content,hybrid] [--encoder minilm-l6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from _common import SHARED_DATA, machine_report
from embedcraft.recommend import (
    evaluate_cold_start,
    evaluate_recommender,
    leave_last_out,
    read_interactions,
    read_movielens_items,
)
from embedcraft.recommend.recommender import METHODS, make_model

K = 10


def implicit_direct(train: object, ours: object) -> dict[str, float]:
    """The peer: implicit's ALS with our settings, fitted and queried directly (one user per call).

    `recalculate_user=True` solves the user's factors from their row at query time, as our
    wrapper does (it serves histories, including new users'); the stored-factor path is timed too.
    """
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    users = sorted(set(train.users.tolist()))  # type: ignore[attr-defined]
    items = sorted(set(train.items.tolist()))  # type: ignore[attr-defined]
    u_index = {u: i for i, u in enumerate(users)}
    i_index = {it: i for i, it in enumerate(items)}
    rows = [u_index[u] for u in train.users.tolist()]  # type: ignore[attr-defined]
    cols = [i_index[i] for i in train.items.tolist()]  # type: ignore[attr-defined]
    matrix = sp.csr_matrix(
        (np.full(len(rows), ours.alpha, np.float32), (rows, cols))  # type: ignore[attr-defined], shape=(len(users), len(items))
    )
    matrix.sum_duplicates()
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=ours.factors, regularization=ours.regularization,  # type: ignore[attr-defined]
            alpha=1.0, iterations=ours.iterations, random_state=ours.seed,  # type: ignore[attr-defined]
        )  # fmt: skip
        t0 = time.perf_counter()
        model.fit(matrix, show_progress=False)
        fit_s = time.perf_counter() - t0
        out = {"fit_seconds": fit_s}
        for recalculate in (True, False):
            latencies = []
            for u in range(len(users)):
                t0 = time.perf_counter()
                model.recommend(
                    u, matrix[u], N=K, filter_already_liked_items=True,
                    recalculate_user=recalculate,
                )  # fmt: skip
                latencies.append(time.perf_counter() - t0)
            ms = np.asarray(latencies) * 1e3
            tag = "recalc" if recalculate else "stored"
            out[f"{tag}_p50"] = float(np.percentile(ms, 50))
            out[f"{tag}_p99"] = float(np.percentile(ms, 99))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--encoder", default="minilm-l6", help="text encoder of content/hybrid")
    parser.add_argument("--workers", type=int, default=2, help="item2vec training threads")
    args = parser.parse_args()
    folder = SHARED_DATA / "movielens_100k"
    if not (folder / "u.data").is_file():
        raise SystemExit(f"this benchmark needs {folder}/u.data")
    print(machine_report())
    log = read_interactions(folder / "u.data")
    items = read_movielens_items(folder / "u.item")
    print(f"MovieLens 100K: {len(log.users)} ratings; leave-last-out, top {K}, one user per call")
    print(
        f"{'method':<12}{'fit s':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'NDCG@10':>9}{'HR@10':>8}{'coverage':>10}"
    )
    results = {}
    for method in args.methods.split(","):
        model = make_model(method, args.encoder, args.workers)
        r = evaluate_recommender(model, log, K, items=items)
        results[method] = r
        print(
            f"{method:<12}{r['fit_seconds']:>8.2f}{r['recommend_ms_p50']:>9.3f}"
            f"{r['recommend_ms_p99']:>9.3f}{r[f'ndcg@{K}']:>9.4f}{r[f'hr@{K}']:>8.4f}"
            f"{r['coverage']:>10.3f}"
        )
    if "als" in results:
        ours = make_model("als")
        train, _ = leave_last_out(log)
        peer = implicit_direct(train, ours)
        print(
            f"{'implicit ALS':<12}{peer['fit_seconds']:>8.2f}{peer['recalc_p50']:>9.3f}"
            f"{peer['recalc_p99']:>9.3f}   (used directly, user factors solved per query)"
        )
        print(
            f"{'':<12}{'':>8}{peer['stored_p50']:>9.3f}{peer['stored_p99']:>9.3f}"
            "   (used directly, stored user factors: known users only)"
        )
        a = results["als"]
        print(
            f"our ALS / implicit: fit {a['fit_seconds'] / peer['fit_seconds']:.2f}x time, "
            f"recommend p50 {a['recommend_ms_p50'] / peer['recalc_p50']:.2f}x time "
            "(same work: factors solved from the history)"
        )
    cold = [m for m in ("content", "hybrid") if m in results]
    if cold:
        print("cold start: 10% of items held out of training entirely, ranked by their texts")
        scores = {}
        for method in cold:
            r = evaluate_cold_start(make_model(method, args.encoder, args.workers), log, items, K)
            scores[method] = r[f"ndcg@{K}"]
            print(f"{method:<12} NDCG@10 {r[f'ndcg@{K}']:.4f}  HR@10 {r[f'hr@{K}']:.4f}")
        if len(scores) == 2:
            ok = scores["hybrid"] >= scores["content"]
            print(f"goal hybrid >= content on cold items: {'PASS' if ok else 'FAIL'}")
    base = results.get("popularity")
    if base:
        for method in ("item2vec", "als"):
            if method in results:
                ok = results[method][f"ndcg@{K}"] > base[f"ndcg@{K}"]
                print(f"goal {method} NDCG@10 > popularity: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
