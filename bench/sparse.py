"""Sparse encoders against plain scikit-learn (and bm25s) on the same texts, in one run.

Prints the machine, then for each job the seconds of each side (best of --repeat) and the ratio
ours / peer: 1.10 means our layer costs 10% more. Needs ../shared/data/imdb_reviews.

    python bench/sparse.py [--docs 25000] [--queries 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from _common import best_of, imdb_texts, machine_report
from embedcraft import BM25Encoder, TextAnalyzer, TfidfEncoder, top_k


def plain_sklearn_bm25(texts: list[str], k1: float, b: float) -> sp.csr_matrix:
    """BM25 document weights written directly over CountVectorizer: the baseline."""
    counts = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b\w+\b").fit_transform(
        texts
    )
    counts = counts.astype(np.float32).tocsr()
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    rows = np.repeat(np.arange(n), np.diff(counts.indptr))
    tf = counts.data
    norm = k1 * (1 - b + b * lengths / lengths.mean())
    counts.data = (idf[counts.indices] * tf * (k1 + 1) / (tf + norm[rows])).astype(np.float32)
    return counts


def row(job: str, ours: float, peer: float, peer_name: str, n: int) -> None:
    print(
        f"{job:<34} ours {ours:7.2f} s ({n / ours:9,.0f} docs/s)   {peer_name} {peer:7.2f} s"
        f"   ratio ours/peer {ours / peer:5.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=25_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine_report())
    texts = imdb_texts(args.docs)
    queries = [" ".join(t.split()[:6]) for t in imdb_texts(args.docs + args.queries)[args.docs :]]
    n = len(texts)
    print(
        f"data: {n} IMDB reviews, {sum(len(t) for t in texts) / 1e6:.1f} M characters; "
        f"{len(queries)} queries; best of {args.repeat}\n"
    )

    # TF-IDF, default settings on both sides: fit + transform, then transform alone
    peer_t, peer_m = best_of(
        args.repeat, lambda: TfidfVectorizer(dtype=np.float32).fit_transform(texts)
    )
    ours_t, ours_m = best_of(args.repeat, lambda: TfidfEncoder().fit_transform(texts))
    assert abs(ours_m - peer_m).max() < 1e-5, "TF-IDF vectors differ from scikit-learn's"
    row("tfidf fit+encode vs TfidfVectorizer", ours_t, peer_t, "sklearn", n)
    fitted_peer, fitted_ours = (
        TfidfVectorizer(dtype=np.float32).fit(texts),
        TfidfEncoder().fit(texts),
    )
    peer_t, _ = best_of(args.repeat, lambda: fitted_peer.transform(texts))
    ours_t, _ = best_of(args.repeat, lambda: fitted_ours.encode(texts))
    row("tfidf encode vs transform", ours_t, peer_t, "sklearn", n)

    # BM25 with the same analysis (stop words, no stemming) vs CountVectorizer + weighting
    same = TextAnalyzer(token_pattern=r"(?u)\b\w+\b", stop_words="english")
    peer_t, peer_m = best_of(args.repeat, lambda: plain_sklearn_bm25(texts, 0.9, 0.4))
    ours_t, ours_m = best_of(args.repeat, lambda: BM25Encoder(analyzer=same).fit_transform(texts))
    assert ours_m.shape == peer_m.shape
    row("bm25 fit+encode vs sklearn+numpy", ours_t, peer_t, "sklearn", n)

    # BM25 with stemming (our default) vs bm25s indexing, then retrieval of the top 10
    try:
        import bm25s
        import Stemmer
    except ImportError:
        print("bm25s / PyStemmer not installed: pip install 'embedcraft[bench]' for that row")
        return
    stemmer = Stemmer.Stemmer("english")

    def bm25s_index() -> object:
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
        model = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
        model.index(tokens, show_progress=False)
        return model

    peer_t, model = best_of(args.repeat, bm25s_index)
    ours = BM25Encoder()
    ours_t, doc_vectors = best_of(args.repeat, lambda: ours.fit_transform(texts))
    row("bm25 (stemmed) fit+encode vs bm25s", ours_t, peer_t, "bm25s", n)

    def bm25s_search() -> object:
        q = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False)
        return model.retrieve(q, k=10, show_progress=False, n_threads=1)

    peer_t, _ = best_of(args.repeat, bm25s_search)
    ours_t, _ = best_of(
        args.repeat, lambda: top_k(ours.encode_queries(queries), doc_vectors, 10, "dot")
    )
    print(
        f"{'bm25 top-10 search vs bm25s':<34} ours {ours_t:7.2f} s "
        f"({len(queries) / ours_t:9,.0f} q/s)"
        f"     bm25s {peer_t:7.2f} s   ratio ours/peer {ours_t / peer_t:5.2f}"
    )


if __name__ == "__main__":
    main()
