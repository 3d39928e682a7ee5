"""Word2Vec (skip-gram), FastText and our GloVe trained on the same IMDB corpus, side by side.

Same tokens, width, window and min-count for all three. Each model trains in its own process so
its peak RSS is its own. Prints WordSim-353 and MEN Spearman, Google analogy accuracy, training
wall time, tokens/s and peak RSS. Needs ../shared/data (imdb_reviews, word_similarity,
word_analogy).

    python bench/words.py [--dim 100] [--window 5] [--min-count 5] [--glove-epochs 20]
                          [--glove-c DIR]

--glove-c DIR runs the reference C GloVe (Stanford's vocab_count, cooccur, shuffle and glove
binaries, built by you in DIR; not shipped here) on the same tokens with the same settings, and
prints its scores and our wall time as a ratio of its.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import SHARED_DATA, imdb_texts, machine_report
from embedcraft.evaluate.words import evaluate_analogies, evaluate_word_pairs
from embedcraft.training.corpus import TokenStream
from embedcraft.words import WordVectors


def _train(kind: str, corpus: str, args: argparse.Namespace, out: Any) -> None:
    """Runs in a child process: train one model, evaluate it, send back the numbers."""
    stream = TokenStream(corpus)
    common = {
        "dim": args.dim,
        "window": args.window,
        "min_count": args.min_count,
        "seed": 0,
        "workers": args.workers,
    }
    t0 = time.perf_counter()
    if kind == "glove":
        from embedcraft.training.glove import train_glove

        result = train_glove(stream, epochs=args.glove_epochs, **common)
        wv = WordVectors(result.words, result.vectors, result.counts, name="glove")
        tokens, epochs = result.tokens, args.glove_epochs
    else:
        from embedcraft.training.gensim_models import train_fasttext, train_word2vec

        trainer = train_word2vec if kind == "word2vec" else train_fasttext
        wv, report = trainer(stream, epochs=args.epochs, **common)
        tokens, epochs = report.tokens, args.epochs
    seconds = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scores = {}
    for name in ("wordsim353.tsv", "men3000.tsv"):
        r = evaluate_word_pairs(wv, SHARED_DATA / "word_similarity" / name, restrict_vocab=None)
        scores[name] = (r.spearman, r.pairs, r.oov_pairs)
    analogy = evaluate_analogies(
        wv, SHARED_DATA / "word_analogy" / "questions-words.txt", restrict_vocab=30_000
    )
    out.put(
        {
            "kind": kind,
            "seconds": seconds,
            "tokens": tokens,
            "epochs": epochs,
            "words": len(wv),
            "peak_mib": peak_mib,
            "scores": scores,
            "analogy": (analogy.accuracy, analogy.questions, analogy.oov_questions),
        }
    )


def _reference_glove(build: Path, corpus: str, tmp: Path, args: argparse.Namespace) -> dict:
    """Run the reference C GloVe tools on our tokens; time the whole pipeline (all 4 steps)."""
    tokens = tmp / "tokens.txt"
    with open(tokens, "w", encoding="utf-8") as fh:
        for sentence in TokenStream(corpus):
            fh.write(" ".join(sentence) + "\n")
    vocab, cooc, shuf, out = (tmp / n for n in ("vocab.txt", "cooc.bin", "shuf.bin", "vectors"))

    def step(command: list[str], stdin: Path, stdout: Path | None) -> None:
        with open(stdin, "rb") as fin, open(stdout or "/dev/null", "wb") as fout:
            subprocess.run(command, stdin=fin, stdout=fout, check=True, stderr=subprocess.DEVNULL)

    t0 = time.perf_counter()
    step([str(build / "vocab_count"), "-min-count", str(args.min_count), "-verbose", "0"],
         tokens, vocab)  # fmt: skip
    step([str(build / "cooccur"), "-memory", "4.0", "-vocab-file", str(vocab), "-verbose", "0",
          "-window-size", str(args.window), "-symmetric", "1"], tokens, cooc)  # fmt: skip
    step([str(build / "shuffle"), "-memory", "4.0", "-verbose", "0"], cooc, shuf)
    step([str(build / "glove"), "-save-file", str(out), "-threads", str(args.workers),
          "-input-file", str(shuf), "-x-max", "100", "-alpha", "0.75", "-eta", "0.05",
          "-iter", str(args.glove_epochs), "-vector-size", str(args.dim), "-binary", "0",
          "-model", "2", "-vocab-file", str(vocab), "-verbose", "0"], tokens, None)  # fmt: skip
    seconds = time.perf_counter() - t0
    from embedcraft.words.sources import load_word_vectors

    wv = load_word_vectors(str(out) + ".txt")
    ws = evaluate_word_pairs(
        wv, SHARED_DATA / "word_similarity" / "wordsim353.tsv", restrict_vocab=None
    )
    men = evaluate_word_pairs(
        wv, SHARED_DATA / "word_similarity" / "men3000.tsv", restrict_vocab=None
    )
    return {"seconds": seconds, "ws353": ws.spearman, "men": men.spearman, "words": len(wv)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5, help="Word2Vec and FastText epochs")
    parser.add_argument("--glove-epochs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--models", default="word2vec,fasttext,glove")
    parser.add_argument("--glove-c", type=Path, help="folder with the built reference C GloVe")
    args = parser.parse_args()
    print(machine_report())
    tag = re.compile(r"<[^<>\n]{0,40}>")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "imdb.txt"
        corpus.write_text("\n".join(tag.sub(" ", t).replace("\n", " ") for t in imdb_texts()))
        print(
            f"corpus: IMDB reviews, 50,000 documents; dim={args.dim} window={args.window} "
            f"min_count={args.min_count}; analogies over the 30k most frequent words\n"
        )
        header = (
            f"{'model':<9} {'epochs':>6} {'train s':>8} {'Mtok/s':>7} {'peak MiB':>9} "
            f"{'words':>7} {'WS353':>7} {'MEN':>7} {'analogy':>8}"
        )
        print(header)
        ctx = mp.get_context("spawn")
        results = {}
        for kind in args.models.split(","):
            queue = ctx.Queue()
            child = ctx.Process(target=_train, args=(kind, str(corpus), args, queue))
            child.start()
            r = queue.get()
            child.join()
            results[kind] = r
            ws, men = r["scores"]["wordsim353.tsv"], r["scores"]["men3000.tsv"]
            rate = r["tokens"] * r["epochs"] / r["seconds"] / 1e6
            print(
                f"{kind:<9} {r['epochs']:>6} {r['seconds']:>8.1f} {rate:>7.2f} "
                f"{r['peak_mib']:>9.0f} {r['words']:>7} {ws[0]:>7.4f} {men[0]:>7.4f} "
                f"{r['analogy'][0]:>8.4f}"
            )
        if args.glove_c is not None:
            ref = _reference_glove(args.glove_c, str(corpus), Path(tmp), args)
            print(
                f"{'C GloVe':<9} {args.glove_epochs:>6} {ref['seconds']:>8.1f} "
                f"{results_rate(ref, results):>7} {'':>9} {ref['words']:>7} "
                f"{ref['ws353']:>7.4f} {ref['men']:>7.4f} {'':>8}"
            )
            if "glove" in results:
                ratio = results["glove"]["seconds"] / ref["seconds"]
                print(f"\nour GloVe wall time / reference C GloVe: {ratio:.2f} (goal <= 2)")
    if "glove" in results and "word2vec" in results:
        gap = (
            results["word2vec"]["scores"]["wordsim353.tsv"][0]
            - results["glove"]["scores"]["wordsim353.tsv"][0]
        )
        print(f"\nWordSim-353: GloVe is {gap:+.4f} below Word2Vec (bar: within 0.03)")
    first = next(iter(results.values()))
    ws = first["scores"]["wordsim353.tsv"]
    print(
        f"pairs scored: WordSim-353 {ws[1]} ({ws[2]} OOV dropped) for {first['kind']}; "
        "Spearman over pairs whose words are both in that model's vocabulary"
    )


def results_rate(ref: dict, results: dict) -> str:
    """Reference tokens/s, using the token count our GloVe read (same corpus)."""
    if "glove" not in results:
        return ""
    r = results["glove"]
    return f"{r['tokens'] * r['epochs'] / ref['seconds'] / 1e6:.2f}"


if __name__ == "__main__":
    main()
