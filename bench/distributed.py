"""Encoding on Ray against one process, on the same 100k texts: overhead, start-up, memory, scaling.

The corpus is 100k two-sentence IMDB passages (as bench/search.py builds them), written once to a
Parquet file. One run prints: the machine; the single-process encode (`encoder.encode` on the
list in memory, the encoder's own threads); `ray.init` for a local Ray; then
`embedcraft.distributed.encode_dataset` from the Parquet file into shards with 1 and with 2
workers (each worker capped at 1 compute thread), every side the best of --repeat runs (this
machine is shared, and timings swing by 2x between runs), each with its start-up (actors started and
their encoders loaded), its encode time, throughput against the single process (above 1 = Ray
faster), and the peak RSS of each worker process (Linux VmHWM, sampled while it runs).

The default encoder is `minilm-l6-static` (the static model trained from MiniLM): tokenizing
dominates its cost, ~5k passages/s here, so 100k texts take seconds per run instead of the
~10 minutes a transformer would need on 2 cores, while encoding still outweighs the Ray
bookkeeping enough for the ratio to mean something. Pass --encoder minilm-l3 --docs 20000 for a
transformer. Needs ../shared/data/imdb_reviews.

    python bench/distributed.py [--docs 100000] [--encoder minilm-l6-static] [--shard-rows 5000]
                                 [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from _common import SHARED_DATA, best_of, machine_report

RAY_TITLE = "ShardEncoder"
"""What Ray puts in the command line of an encoder actor's process."""


def peak_kib(pid: int) -> int:
    """The peak resident memory of a process so far (VmHWM), KiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class WorkerMemory:
    """Samples the peak RSS of every encoder actor process while a run goes on."""

    def __init__(self) -> None:
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline"]):
                if RAY_TITLE in " ".join(proc.info["cmdline"] or []):
                    pid = proc.info["pid"]
                    self.peaks[pid] = max(self.peaks.get(pid, 0), peak_kib(pid))
            self._stop.wait(0.2)


def ray_system_rss_mib() -> float:
    """Resident memory of the Ray processes this process started (GCS, raylet, idle workers)."""
    import psutil

    children = psutil.Process().children(recursive=True)
    total = 0
    for child in children:
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 2**20


def write_corpus(texts: list[str], folder: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "passages.parquet"
    table = pa.table({"id": [f"p{i}" for i in range(len(texts))], "text": texts})
    pq.write_table(table, path, row_group_size=10_000)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000, help="passages (default 100000)")
    parser.add_argument("--encoder", default="minilm-l6-static", help="catalog name")
    parser.add_argument("--shard-rows", type=int, default=5000, help="rows per shard")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; best kept")
    args = parser.parse_args()
    if not (SHARED_DATA / "imdb_reviews").is_dir():
        raise SystemExit(f"skipped: this benchmark needs {SHARED_DATA / 'imdb_reviews'}")

    import ray

    from embedcraft import load_encoder
    from embedcraft.distributed import RayOptions, encode_dataset, read_shards
    from search import passages

    print(machine_report())
    texts = passages(args.docs)
    tmp = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    try:
        source = write_corpus(texts, tmp)
        print(
            f"{len(texts)} IMDB passages (mean {sum(map(len, texts)) / len(texts):.0f} chars), "
            f"encoder {args.encoder}, shards of {args.shard_rows} rows"
        )

        encoder = load_encoder(args.encoder)
        encoder.encode(texts[:100])  # load the model before timing
        single, reference = best_of(args.repeat, lambda: encoder.encode(texts))
        single_rate = len(texts) / single
        print(
            f"\nsingle process: {single:.2f} s, {single_rate:,.0f} texts/s "
            f"(peak RSS of this process so far {peak_kib(os.getpid()) / 1024:.0f} MiB)"
        )

        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING",
                 log_to_driver=False)  # fmt: skip
        init = time.perf_counter() - t0
        time.sleep(1.0)  # let the idle worker pool settle before measuring it
        print(
            f"ray.init (local, {os.cpu_count()} CPUs): {init:.2f} s; Ray's own processes hold "
            f"{ray_system_rss_mib():.0f} MiB RSS"
        )

        encode_times = {}
        for workers in (1, 2):
            runs = []
            for r in range(args.repeat):
                out = tmp / f"out-{workers}-{r}"
                with WorkerMemory() as memory:
                    result = encode_dataset(
                        source,
                        args.encoder,
                        out,
                        shard_rows=args.shard_rows,
                        ray=RayOptions(workers=workers, threads_per_worker=1),
                    )
                peaks = sorted(memory.peaks.get(pid, 0) // 1024 for pid in result.worker_pids)
                runs.append((result.seconds - result.startup_seconds, result, peaks, out))
            encode_s, result, peaks, out = min(runs, key=lambda run: run[0])
            encode_times[workers] = encode_s
            _, vectors = read_shards(out)
            same = bool(abs(vectors - reference).max() < 1e-5)
            print(
                f"\nray, {workers} worker(s), best of {args.repeat}: start-up "
                f"{result.startup_seconds:.2f} s (actors + encoder load), encode {encode_s:.2f} s, "
                f"total {result.seconds:.2f} s; vectors equal to the single process: {same}"
            )
            rate = len(texts) / encode_s
            print(
                f"  throughput {rate:,.0f} texts/s after start-up = {rate / single_rate:.2f}x "
                f"the single process; {len(texts) / result.seconds:,.0f} texts/s end to end "
                f"= {single / result.seconds:.2f}x"
            )
            print(f"  peak RSS per worker: {', '.join(f'{p} MiB' for p in peaks) or 'not seen'}")
        one, two = encode_times[1], encode_times[2]
        print(
            f"\nscaling, measured: 2 workers encode {one / two:.2f}x as fast as 1 worker on this "
            f"{os.cpu_count()}-core machine (ideal 2.00x)."
        )
        print(
            "scaling, reasoned (not measured): shards are independent and each worker holds its "
            "own model, so with W workers on W free cores the encode time falls about as 1/W "
            "until the driver saturates: it alone reads the source and writes every shard, so "
            "a cheap encoder hits that limit sooner than a transformer does; on a cluster, "
            "moving texts and vectors over the network adds to it. Start-up does not shrink "
            "with W: it is paid once per run (plus ray.init, or joining a cluster)."
        )
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
