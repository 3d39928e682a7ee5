"""The embedding cache, measured: a corpus encoded twice, and a cache holding a million vectors.

1. SciFact's corpus (5,183 abstracts, ../shared/data) encoded by `--encoder` (default minilm-l6)
   through a fresh disk cache, then again: wall and CPU time of each, the ratio (the issue's bar:
   >= 50x), and whether the second run's vectors equal the first's byte for byte. The same
   second run against a fresh `encode` without cache shows what the cache returns for an
   encoder whose vectors follow the batch (cosine, lowest and mean).
2. A cache of `--entries` (default 1,000,000) 384-dim vectors: fill rate, file size, and lookup
   latency p50/p99 for one key and for 64 keys at a time (random keys, half of them absent),
   from a fresh process's view (new connection).

    python bench/cache.py [--encoder minilm-l6] [--entries 1000000] [--skip-corpus]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SHARED_DATA, machine_report
from embedcraft.cache import EmbeddingCache
from embedcraft.catalog import load_encoder

GOAL = 50.0


def scifact_texts() -> list[str]:
    with gzip.open(SHARED_DATA / "beir_scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [f"{d['title']}. {d['text']}" for d in map(json.loads, fh)]


def timed(func: object) -> tuple[float, float, object]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = func()  # type: ignore[operator]
    return time.perf_counter() - w0, time.process_time() - c0, out


def corpus_twice(encoder_name: str, folder: Path) -> None:
    texts = scifact_texts()
    encoder = load_encoder(encoder_name)
    encoder.encode(texts[:16], cache=False)  # load the model outside the timings
    cache = EmbeddingCache(folder / "corpus.sqlite")
    print(f"\n[1] SciFact corpus: {len(texts):,} texts, encoder {encoder_name}", flush=True)
    w1, c1, first = timed(lambda: encoder.encode(texts, cache=cache))
    print(f"  first run (all misses)  wall {w1:8.2f} s  CPU {c1:8.2f} s", flush=True)
    w2, c2, second = timed(lambda: encoder.encode(texts, cache=cache))
    print(f"  second run (all hits)   wall {w2:8.3f} s  CPU {c2:8.3f} s", flush=True)
    ratio, cpu_ratio = w1 / w2, c1 / max(c2, 1e-9)
    equal = first.tobytes() == second.tobytes()  # type: ignore[attr-defined]
    print(f"  speed-up: wall {ratio:,.0f}x, CPU {cpu_ratio:,.0f}x (goal >= {GOAL:.0f}x)")
    print(f"  second run's vectors equal the first's byte for byte: {equal}")
    info = cache.info()
    print(f"  cache: {info['entries']:,} entries, {info['file_bytes'] / 2**20:,.1f} MiB on disk")
    fresh = np.asarray(encoder.encode(texts, cache=False))
    cos = np.sum(fresh * np.asarray(second), axis=1) / (
        np.linalg.norm(fresh, axis=1) * np.linalg.norm(np.asarray(second), axis=1)
    )
    same = fresh.tobytes() == np.asarray(second).tobytes()
    print(
        f"  against a fresh encode: byte-equal {same}; cosine min {cos.min():.6f}, "
        f"mean {cos.mean():.6f}",
        flush=True,
    )
    print(f"  {'PASS' if ratio >= GOAL and equal else 'FAIL'}: second run >= {GOAL:.0f}x, equal")


def million(entries: int, folder: Path) -> None:
    dim, batch = 384, 10_000
    path = folder / "million.sqlite"
    rng = np.random.default_rng(0)
    cache = EmbeddingCache(path, max_bytes=1 << 40)
    print(f"\n[2] a cache of {entries:,} vectors ({dim} dims)", flush=True)
    t0 = time.perf_counter()
    for start in range(0, entries, batch):
        n = min(batch, entries - start)
        keys = [i.to_bytes(16, "big") for i in range(start, start + n)]
        rows = rng.standard_normal((n, dim), dtype=np.float32)
        cache.store(keys, [(row.tobytes(), 0) for row in rows])
    fill = time.perf_counter() - t0
    cache.close()
    size = sum(p.stat().st_size for p in folder.glob("million.sqlite*"))
    print(
        f"  filled in {fill:.1f} s ({entries / fill:,.0f} vectors/s); on disk "
        f"{size / 2**30:.2f} GiB ({size / entries:,.0f} bytes per {dim * 4}-byte vector)",
        flush=True,
    )
    t0 = time.perf_counter()
    reader = EmbeddingCache(path, max_bytes=1 << 40)
    print(f"  open: {1000 * (time.perf_counter() - t0):.1f} ms", flush=True)
    for per_call in (1, 64):
        times = []
        for _ in range(2000):
            wanted = rng.integers(0, 2 * entries, per_call)  # half of them absent
            keys = [int(i).to_bytes(16, "big") for i in wanted]
            t0 = time.perf_counter()
            reader.lookup(keys)
            times.append(time.perf_counter() - t0)
        ms = 1000 * np.asarray(times)
        print(
            f"  lookup of {per_call:>2} keys: p50 {np.percentile(ms, 50):.3f} ms, "
            f"p99 {np.percentile(ms, 99):.3f} ms ({len(times):,} calls)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="minilm-l6")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--skip-corpus", action="store_true")
    parser.add_argument("--workdir", type=Path, help="where the caches go (default: a temp dir)")
    args = parser.parse_args()
    print(machine_report(), flush=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        if not args.skip_corpus:
            corpus_twice(args.encoder, folder)
        if args.entries:
            million(args.entries, folder)
    print(f"\npid {os.getpid()} done")


if __name__ == "__main__":
    main()
