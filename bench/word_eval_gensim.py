"""`eval words` against gensim on the same vectors and files, in one run.

Our evaluate_word_pairs / evaluate_analogies (what `embedcraft eval words` prints) next to gensim's
KeyedVectors.evaluate_word_pairs / evaluate_word_analogies on glove-6b-50d, same restrict_vocab.
Prints both numbers, their difference, and both wall times. Needs ../shared/data and gensim.

    python bench/word_eval_gensim.py [--restrict-vocab 300000]
"""

from __future__ import annotations

import argparse
import time

from _common import SHARED_DATA, machine_report
from embedcraft.evaluate.words import evaluate_analogies, evaluate_word_pairs
from embedcraft.words.sources import load_word_vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restrict-vocab", type=int, default=300_000)
    parser.add_argument("--vectors", default="glove-6b-50d")
    args = parser.parse_args()
    print(machine_report())
    wv = load_word_vectors(args.vectors)
    kv = wv.to_gensim()
    restrict = args.restrict_vocab
    print(f"vectors: {wv.name}, {len(wv):,} x {wv.dim}; restrict_vocab={restrict}\n")
    print(f"{'file':<22} {'ours':>10} {'gensim':>10} {'|diff|':>9}  pairs  oov")
    for name in ("wordsim353.tsv", "men3000.tsv", "simverb3500.tsv", "rarewords2034.tsv"):
        path = SHARED_DATA / "word_similarity" / name
        ours = evaluate_word_pairs(wv, path, restrict_vocab=restrict)
        _, spearman, _ = kv.evaluate_word_pairs(str(path), restrict_vocab=restrict)
        diff = abs(ours.spearman - spearman.statistic)
        print(
            f"{name:<22} {ours.spearman:10.6f} {spearman.statistic:10.6f} {diff:9.1e}"
            f"  {ours.pairs:5d} {ours.oov_pairs:4d}"
        )
    path = SHARED_DATA / "word_analogy" / "questions-words.txt"
    t0 = time.perf_counter()
    ours = evaluate_analogies(wv, path, restrict_vocab=restrict)
    t1 = time.perf_counter()
    score, sections = kv.evaluate_word_analogies(str(path), restrict_vocab=restrict)
    t2 = time.perf_counter()
    gensim_correct = len(sections[-1]["correct"])
    print(
        f"\nanalogies: ours {ours.accuracy:.6f} ({ours.correct}/{ours.questions}) in "
        f"{t1 - t0:.1f} s; gensim {score:.6f} ({gensim_correct}) in {t2 - t1:.1f} s; "
        f"speed ratio gensim/ours {(t2 - t1) / (t1 - t0):.1f}x"
    )
    mismatched = [
        o["section"]
        for o, g in zip(ours.sections, sections, strict=False)
        if o["correct"] != len(g["correct"])
    ]
    print(f"sections that differ: {mismatched or 'none'}")


if __name__ == "__main__":
    main()
