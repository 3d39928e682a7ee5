"""Our static models against model2vec's StaticModel on the same vectors.

One run prints: the machine; the one-time distillation of minilm-l6-distilled (built now, or
the time recorded when the cached model was built, and the load time); STS-B test Spearman of
the shipped minilm-l6-static and of minilm-l6-distilled with and without its Zipf (SIF) row
weights, beside minilm-l6 and glove-6b-50d-sif for context; encoding throughput of our
`StaticTransformerEncoder` (the shipped minilm-l6-static) and of model2vec's `StaticModel`
built on the SAME table and tokenizer, on IMDB reviews and on 100k of their sentences (texts/s,
best of --repeat with the sides interleaved in each round, wall and CPU time (process_time: all
threads), the speed ratios ours/model2vec of both: above 1 = ours faster, and the largest
difference between the two sides' vectors; model2vec is run without truncation, as ours, and
with its default of 512 tokens); and the RSS before and at the peak of encoding 10k, 30k and
100k IMDB reviews in one call, each count in a fresh process (Linux /proc), and how much the
growth beyond the output array changes with the count (flat: about 0).
Needs ../shared/data (stsb, imdb_reviews).

    pip install model2vec          # the peer; not a dependency of embedcraft
    python bench/static.py [--docs 50000] [--repeat 3] [--fresh-cache] [--no-context]

--fresh-cache distils into a temporary cache folder (the build time is then measured in this
run); otherwise the user cache is used and built there only if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SHARED_DATA, imdb_texts, machine_report

STSB_TEST = SHARED_DATA / "stsb" / "sts-test.tsv"
RSS_COUNTS = (10_000, 30_000, 100_000)


def unweighted(encoder):  # type: ignore[no-untyped-def]
    """A copy of `encoder` with the Zipf (SIF) row weights divided out (they are all > 0)."""
    import copy

    from embedcraft.encoders.distill import zipf_weights

    plain = copy.copy(encoder)
    ids = np.flatnonzero(encoder.known_)
    table = encoder.table_.copy()
    table[ids] /= zipf_weights(len(ids))[:, None]
    plain.table_ = table
    plain.name = encoder.name + " (no Zipf weights)"
    return plain


def peer_model(encoder, max_length):  # type: ignore[no-untyped-def]
    """model2vec's StaticModel on our table and tokenizer."""
    from model2vec import StaticModel

    return StaticModel(
        vectors=encoder.table_,
        tokenizer=encoder.tokenizer_,
        normalize=True,
        max_length=max_length,
    )


def peer_encode(model, texts, max_length):  # type: ignore[no-untyped-def]
    """model2vec's encode, restoring TOKENIZERS_PARALLELISM (model2vec sets it to false)."""
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    try:
        return model.encode(texts, max_length=max_length)
    finally:
        if before is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = before


def reviews(count: int) -> list[str]:
    """`count` IMDB reviews, the 50,000 repeated as needed."""
    texts = imdb_texts()
    return [texts[i % len(texts)] for i in range(count)]


def memory_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status (Linux).

    ru_maxrss is not used: Linux carries a parent's peak across fork + exec into the child's.
    """
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def rss_child(side: str, count: int) -> None:
    """In a fresh process: RSS before, and peak RSS while, encoding `count` reviews in one call."""
    from embedcraft import load_encoder

    encoder = load_encoder("minilm-l6-static")
    texts = reviews(count)
    if side == "ours":
        encode = encoder.encode
    else:
        model = peer_model(encoder, None)

        def encode(batch):  # type: ignore[no-untyped-def]
            return peer_encode(model, batch, None)

    encode(texts[:2000])  # warm up: thread pools, first allocations
    before, _ = memory_mib()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    t0 = time.perf_counter()
    out = encode(texts)
    seconds = time.perf_counter() - t0
    _, peak = memory_mib()
    print(json.dumps({"before": before, "peak": peak, "output": out.nbytes / 2**20, "s": seconds}))


def measure_rss(side: str, count: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--rss-child", side, str(count)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000, help="IMDB reviews to encode")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh-cache", action="store_true", help="distil into a temp cache")
    parser.add_argument("--no-context", action="store_true", help="skip minilm-l6 and GloVe")
    parser.add_argument("--rss-child", nargs=2, metavar=("SIDE", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]))
        return

    import logging

    from embedcraft import load_encoder
    from embedcraft.encoders.distill import StaticTransformerEncoder, static_model
    from embedcraft.evaluate.sts import evaluate_sts

    print(machine_report())
    for path in (STSB_TEST, SHARED_DATA / "imdb_reviews" / "imdb.jsonl.gz"):
        if not path.is_file():
            raise SystemExit(f"this benchmark needs {path}")
    try:
        import model2vec
    except ImportError:
        raise SystemExit("this benchmark needs model2vec: pip install model2vec") from None
    print(f"model2vec {model2vec.__version__}\n")
    logging.basicConfig(level=logging.INFO, format="  log: %(message)s")

    temp_cache = None
    if args.fresh_cache:
        temp_cache = tempfile.mkdtemp(prefix="embedcraft-bench-cache-")
        os.environ["EMBEDCRAFT_CACHE"] = temp_cache
    try:
        t0 = time.perf_counter()
        encoder = static_model("minilm-l6")
        seconds = time.perf_counter() - t0
        recipe = encoder.recipe_
        print(
            f"distillation: {recipe['tokens']} tokens of {recipe['model']} -> {recipe['dim']} "
            f"columns, {recipe['seconds']:.1f} s recorded at build; static_model() took "
            f"{seconds:.2f} s in this run"
        )
        folder = Path(os.environ.get("EMBEDCRAFT_CACHE", "~/.cache/embedcraft")).expanduser()
        t0 = time.perf_counter()
        StaticTransformerEncoder.load(folder / "models" / "minilm-l6-distilled")
        print(f"loading the cached model: {time.perf_counter() - t0:.3f} s\n")

        # ------------------------------------------------------------ STS-B
        print(f"STS-B test ({STSB_TEST.name}), Spearman x 100:")
        shipped = load_encoder("minilm-l6-static")
        sides = [shipped, encoder, unweighted(encoder)]
        if not args.no_context:
            sides += [load_encoder("minilm-l6"), load_encoder("glove-6b-50d-sif")]
        for side in sides:
            result = evaluate_sts(side, STSB_TEST)
            print(
                f"  {side.name:<36} {100 * result.spearman:6.2f}   "
                f"(encode {result.seconds['encode']:.2f} s, fit {result.seconds['fit']:.2f} s)"
            )

        # ------------------------------------------------------------ throughput
        encoder = shipped  # the catalog's static model (trained, shipped): what users run
        texts = imdb_texts(args.docs)
        sentences = [s for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if s][:100_000]
        chars = sum(len(t) for t in texts) / 1e6
        print(
            f"\nthroughput (best of {args.repeat}): {len(texts)} IMDB reviews ({chars:.1f} M "
            f"characters) and {len(sentences)} of their sentences"
        )
        peers = {"model2vec max_length=None": None, "model2vec default (512)": 512}
        for label, data in (("reviews", texts), ("sentences", sentences)):
            sides = {"ours": encoder.encode}
            for name, max_length in peers.items():
                model = peer_model(encoder, max_length)
                sides[name] = lambda d, m=model, x=max_length: peer_encode(m, d, x)
            for encode in sides.values():
                encode(data[:1000])  # warm up
            best = dict.fromkeys(sides, float("inf"))
            best_cpu = dict.fromkeys(sides, float("inf"))
            vectors = {}
            for _ in range(args.repeat):  # the sides interleaved in each round
                for name, encode in sides.items():
                    t0, c0 = time.perf_counter(), time.process_time()
                    vectors[name] = encode(data)
                    best[name] = min(best[name], time.perf_counter() - t0)
                    best_cpu[name] = min(best_cpu[name], time.process_time() - c0)
            ours_t, ours_c = best["ours"], best_cpu["ours"]
            print(
                f"  {label:<9} ours {ours_t:7.2f} s ({len(data) / ours_t:9,.0f} texts/s)"
                f"   CPU {ours_c:7.2f} s"
            )
            for name in peers:
                diff = float(np.abs(np.asarray(vectors[name], np.float32) - vectors["ours"]).max())
                print(
                    f"  {'':<9} {name:<26} {best[name]:7.2f} s "
                    f"({len(data) / best[name]:9,.0f} texts/s)   CPU {best_cpu[name]:7.2f} s"
                    f"   ratio ours/model2vec (speed) wall {best[name] / ours_t:5.2f}"
                    f" CPU {best_cpu[name] / ours_c:5.2f}   max |diff| {diff:.2e}"
                )

        # ------------------------------------------------------------ memory
        print("\npeak RSS encoding N reviews in one call (fresh process each; MiB):")
        beyond: dict[str, list[float]] = {"ours": [], "model2vec": []}
        for count in RSS_COUNTS:
            cells = []
            for side in ("ours", "model2vec"):
                r = measure_rss(side, count)
                growth = r["peak"] - r["before"]
                beyond[side].append(growth - r["output"])
                cells.append(
                    f"{side} {r['peak']:6.0f} peak, +{growth:5.0f} during encode "
                    f"(output {r['output']:4.0f}, beyond it {growth - r['output']:+5.0f}; "
                    f"{count / r['s']:6,.0f} texts/s)"
                )
            print(f"  {count:>7,}  " + "   ".join(cells))
        print(
            f"  growth beyond the output, {RSS_COUNTS[0]:,} -> {RSS_COUNTS[-1]:,} reviews "
            "(flat: about 0): "
            + ", ".join(f"{side} {v[-1] - v[0]:+.0f} MiB" for side, v in beyond.items())
        )
    finally:
        if temp_cache:
            shutil.rmtree(temp_cache, ignore_errors=True)


if __name__ == "__main__":
    main()
