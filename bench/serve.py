"""A bounded load test of `embedcraft serve` on loopback, against direct library encodes.

Starts the server itself (a subprocess running `embedcraft serve`), sends a fixed number of
/v1/embeddings requests from several concurrent clients (stopping early at --duration seconds),
then stops the server. Prints requests/s, p50/p99 latency, the error count, how well the server
batched, and the embedding throughput through the server against a direct `encoder.encode` of the
same texts in this process (one call, the encoder's default batch size), measured in the same
round: the wall-time ratio (the goal: >= 0.9x, best of --repeat rounds) and beside it the
CPU-time ratio, for the server alone and with the clients.

The clients run in this process, on the same cores as the server: their CPU time is printed
apart. They use aiohttp when it is installed (its C HTTP parser costs ~0.4 ms of CPU per request
here, httpx's pure-Python pool ~2 ms, all of it taken from the cores the server needs), else
httpx; `--client httpx` forces httpx. Either way each request is a real HTTP/1.1 request over a
kept-alive loopback connection, and each response is parsed and its vectors decoded and checked.
Both sides tokenize in one thread (TOKENIZERS_PARALLELISM=false, `embedcraft serve`'s default).
Each round also prints the CPU time other processes on the machine took meanwhile: a round where
they took much is not a fair measure of either side.

Texts: the STS-B test sentences from ../shared/data (both columns), cycled to fill the requests.
This comparison runs the server with `--cache off` (its default keeps vectors in memory, and
the cycled sentences repeat), so the server encodes every text the direct side encodes.

Then the cache phase (`--repeated 0.5`, 0 to skip): a load of as many STS-B test texts where
that share of them repeats a text sent earlier, sent to a server with `--cache off` and to one
with its default in-memory cache, a new server each round (so the cache starts empty):
throughput with the cache against without (the goal: >= 1.5x, best of --repeat each), and the
hit rate and encoding time saved that /health reports.

    python bench/serve.py [--encoder minilm-l6] [--clients 32] [--requests 300] [--per-request 16]
                          [--duration 60] [--format base64] [--repeat 3] [--client auto]
                          [--repeated 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from _common import SHARED_DATA, machine_report

GOAL = 0.9
CACHE_GOAL = 1.5
"""Throughput with the server's cache / without it, at --repeated 0.5."""
"""Server throughput / direct encode throughput (wall time, best of the rounds) asked for."""


def read_sentences(path: Path) -> list[str]:
    """Both sentence columns of an STS-B file, in order."""
    out: list[str] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            out += [row["sentence1"], row["sentence2"]]
    return out


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used so far (Linux; 0 elsewhere): less this
    benchmark's own, the CPU other work took during a round."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other work competing for the cores)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: argparse.Namespace, port: int, cache: str = "off") -> subprocess.Popen[str]:
    """`embedcraft serve --cache CACHE` in a subprocess; returns once /health answers."""
    import httpx

    argv = [sys.executable, "-m", "embedcraft.cli", "serve", "--port", str(port)]
    argv += ["--cache", cache]
    argv += ["-e", args.encoder, "--log-level", "warning", "--max-batch", str(args.max_batch)]
    argv += ["--max-wait-ms", str(args.max_wait_ms)]
    argv += ["--transformer-batch-size", str(args.transformer_batch_size)]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).raise_for_status()
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"the server did not start:\n{proc.communicate()[1]}") from None
            time.sleep(0.2)


Post = Callable[[dict[str, Any]], Awaitable[Any]]
"""Sends one /v1/embeddings body; returns the response's `data` (None on any failure)."""


@contextlib.asynccontextmanager
async def http_client(url: str, clients: int, kind: str) -> AsyncIterator[Post]:
    """A `Post` over at most `clients` kept-alive connections, with aiohttp or httpx."""
    if kind == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=clients)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

            async def post_aiohttp(body: dict[str, Any]) -> Any:
                try:
                    async with session.post("/v1/embeddings", json=body) as response:
                        if response.status != 200:
                            return None
                        return (await response.json())["data"]
                except (aiohttp.ClientError, ValueError, KeyError):
                    return None

            yield post_aiohttp
        return
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def post_httpx(body: dict[str, Any]) -> Any:
            try:
                response = await http.post("/v1/embeddings", json=body)
                return response.json()["data"] if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError, KeyError):
                return None

        yield post_httpx


async def load_test(
    url: str,
    model: str,
    requests: list[list[str]],
    clients: int,
    duration: float,
    fmt: str,
    kind: str,
) -> tuple[list[float], int, int, float]:
    """Send `requests` from `clients` concurrent connections; stop early after `duration` s.

    Returns (latencies of the successful requests, errors, texts embedded, wall seconds).
    """
    latencies: list[float] = []
    errors = 0
    texts_done = 0
    next_index = 0

    async def client(post: Post) -> None:
        nonlocal next_index, errors, texts_done
        while next_index < len(requests) and time.perf_counter() - start < duration:
            texts = requests[next_index]
            next_index += 1
            t0 = time.perf_counter()
            data = await post({"model": model, "input": texts, "encoding_format": fmt})
            elapsed = time.perf_counter() - t0
            if data is None or len(data) != len(texts):
                errors += 1
                continue
            if fmt == "base64":  # decode like a client would, and check the width
                width = {len(base64.b64decode(d["embedding"])) // 4 for d in data}
            else:
                width = {len(d["embedding"]) for d in data}
            if len(width) != 1:
                errors += 1
                continue
            latencies.append(elapsed)
            texts_done += len(texts)

    async with http_client(url, clients, kind) as post:
        start = time.perf_counter()
        await asyncio.gather(*(client(post) for _ in range(clients)))
        wall = time.perf_counter() - start
    return latencies, errors, texts_done, wall


def client_kind(asked: str) -> str:
    """aiohttp or httpx: what --client asked for, aiohttp for auto when it is installed."""
    if asked != "auto":
        return asked
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return "httpx"
    return "aiohttp"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm-l6")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=300, help="requests sent in all")
    parser.add_argument("--per-request", type=int, default=16, help="texts per request")
    parser.add_argument("--duration", type=float, default=60.0, help="stop sending after (s)")
    parser.add_argument("--format", choices=["base64", "float"], default="base64")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--transformer-batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of (direct, server)")
    parser.add_argument(
        "--repeated",
        type=float,
        default=0.5,
        help="share of repeated texts in the cache phase (default 0.5; 0 skips the phase)",
    )
    parser.add_argument(
        "--client",
        choices=["auto", "aiohttp", "httpx"],
        default="auto",
        help="HTTP client of the load (auto: aiohttp when installed, else httpx)",
    )
    args = parser.parse_args()

    path = SHARED_DATA / "stsb" / "sts-test.tsv"
    if not path.is_file():
        raise SystemExit(f"skipped: this benchmark needs {path} (the shared benchmark data)")
    sentences = read_sentences(path)
    n = args.per_request
    requests = [
        [sentences[(i * n + j) % len(sentences)] for j in range(n)] for i in range(args.requests)
    ]
    all_texts = [t for r in requests for t in r]
    kind = client_kind(args.client)

    import embedcraft
    from embedcraft import load_encoder

    print(machine_report(), flush=True)
    print(f"load average before the run (other work on the machine): {load_average()}")
    print(
        f"embedcraft {embedcraft.__version__}; encoder {args.encoder}; {args.requests} requests "
        f"x {n} texts ({len(all_texts)} texts, STS-B test sentences), {args.clients} concurrent "
        f"{kind} clients in this process, {args.format}; server micro-batch <= {args.max_batch} "
        f"texts, wait {args.max_wait_ms} ms, model runs of <= {args.transformer_batch_size}; "
        f"direct: one encoder.encode of all {len(all_texts)} texts (default batch size); best of "
        f"{args.repeat} rounds; stop after {args.duration:.0f} s\n",
        flush=True,
    )

    encoder = load_encoder(args.encoder)
    encoder.encode(all_texts[:64])  # load the model before timing
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args, port)
    import httpx

    direct_best, served_best = float("inf"), float("inf")
    direct_cpu_best, server_cpu_best, both_cpu_best = float("inf"), float("inf"), float("inf")
    total_errors = 0
    try:
        for round_no in range(1, args.repeat + 1):
            t0, c0, m0 = time.perf_counter(), time.process_time(), machine_busy()
            encoder.encode(all_texts)
            direct_s = time.perf_counter() - t0
            direct_cpu = time.process_time() - c0
            direct_others = max(machine_busy() - m0 - direct_cpu, 0.0)
            direct_best = min(direct_best, direct_s)
            direct_cpu_best = min(direct_cpu_best, direct_cpu)
            print(
                f"round {round_no}: direct encode {len(all_texts) / direct_s:8.1f} texts/s "
                f"({direct_s:.2f} s wall, {direct_cpu:.2f} s CPU; other processes "
                f"{direct_others:.2f} s CPU meanwhile)",
                flush=True,
            )
            before = httpx.get(f"{url}/health").json()["batching"][args.encoder]
            cpu0, server_cpu0, m0 = time.process_time(), process_cpu(proc.pid), machine_busy()
            latencies, errors, done, wall = asyncio.run(
                load_test(
                    url, args.encoder, requests, args.clients, args.duration, args.format, kind
                )
            )
            client_cpu = time.process_time() - cpu0
            server_cpu = process_cpu(proc.pid) - server_cpu0
            served_others = max(machine_busy() - m0 - client_cpu - server_cpu, 0.0)
            after = httpx.get(f"{url}/health").json()["batching"][args.encoder]
            busy = after["encode_seconds"] - before["encode_seconds"]
            encodes = after["batches"] - before["batches"]
            total_errors += errors
            lat = np.array(latencies) * 1000
            p50, p99 = np.percentile(lat, [50, 99]) if len(lat) else (float("nan"),) * 2
            complete = done == len(all_texts)
            if complete:
                served_best = min(served_best, wall)
                server_cpu_best = min(server_cpu_best, server_cpu)
                both_cpu_best = min(both_cpu_best, server_cpu + client_cpu)
            print(
                f"         server        {done / wall:8.1f} texts/s ({wall:.2f} s wall), "
                f"{len(latencies) / wall:.1f} requests/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                f"errors {errors}, {len(latencies)}/{len(requests)} requests; other processes "
                f"{served_others:.2f} s CPU meanwhile",
                flush=True,
            )
            print(
                f"         server side: {encodes} encodes (~{done / max(encodes, 1):.0f} texts "
                f"each), encoding {busy:.2f} s of the {wall:.2f} s ({busy / wall:.0%}), "
                f"{done / max(busy, 1e-9):.1f} texts/s while encoding"
            )
            print(
                f"         this round: wall {direct_s / wall:.2f}x direct; CPU seconds: direct "
                f"{direct_cpu:.2f}, server {server_cpu:.2f} + {kind} clients {client_cpu:.2f} "
                f"-> {direct_cpu / server_cpu:.2f}x (server alone), "
                f"{direct_cpu / (server_cpu + client_cpu):.2f}x (server + clients)"
                + ("" if complete else " [incomplete round: not counted]"),
                flush=True,
            )
        batching = httpx.get(f"{url}/health").json()["batching"][args.encoder]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    stopped = proc.returncode == 0 and "server stopped" in err
    mean_batch = batching["texts"] / max(batching["batches"], 1)
    print(
        f"\nserver batching: {batching['requests']} requests in {batching['batches']} encodes "
        f"(~{mean_batch:.0f} texts per encode; the warm-up counts as one)"
    )
    print(f"server stopped cleanly: {'yes' if stopped else 'NO: ' + err[-500:]}")
    print(f"errors over all rounds: {total_errors}")
    print(f"load average after the run: {load_average()}")
    if served_best == float("inf"):
        print("FAIL: no round sent every request within --duration (raise it or lower --requests)")
        return
    ratio = direct_best / served_best
    verdict = "PASS" if ratio >= GOAL else "FAIL"
    print(
        f"best of {args.repeat}: direct {len(all_texts) / direct_best:.1f} texts/s, through the "
        f"server {len(all_texts) / served_best:.1f} texts/s -> wall {ratio:.2f}x direct | CPU "
        f"{direct_cpu_best / server_cpu_best:.2f}x (server alone), "
        f"{direct_cpu_best / both_cpu_best:.2f}x (server + clients)"
    )
    print(f"{verdict}: wall {ratio:.2f}x direct, goal >= {GOAL}x", flush=True)
    if args.repeated > 0:
        cache_phase(args, kind)


def repeated_load(args: argparse.Namespace) -> list[list[str]]:
    """The requests of a load like the main one (STS-B test sentences) in which `args.repeated`
    of the texts repeat one sent earlier (each repeat placed at random after its original)."""
    import random

    distinct = list(dict.fromkeys(read_sentences(SHARED_DATA / "stsb" / "sts-test.tsv")))
    total = args.requests * args.per_request
    unique = round(total * (1 - args.repeated))
    if unique > len(distinct):
        raise SystemExit(f"the cache phase needs {unique} distinct sentences, has {len(distinct)}")
    block = distinct[:unique]
    stream = list(block)
    rng = random.Random(0)
    for i in range(total - unique):
        original = block[i % unique]
        stream.insert(rng.randint(stream.index(original) + 1, len(stream)), original)
    n = args.per_request
    return [stream[i * n : (i + 1) * n] for i in range(args.requests)]


def cache_phase(args: argparse.Namespace, kind: str) -> None:
    """Throughput at --repeated repeats, without and with the server's memory cache; each round
    starts a new server, so every round of the cached side begins with an empty cache."""
    import httpx

    requests = repeated_load(args)
    texts = sum(map(len, requests))
    print(
        f"\ncache phase: {texts} STS-B test texts of which {args.repeated:.0%} repeat one sent "
        f"earlier; a new server (empty cache) each round",
        flush=True,
    )
    best: dict[str, float] = {}
    for round_no in range(1, args.repeat + 1):
        for cache in ("off", "memory"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = start_server(args, port, cache)
            try:
                cpu0 = process_cpu(proc.pid)
                _, errors, done, wall = asyncio.run(
                    load_test(
                        url, args.encoder, requests, args.clients, args.duration, args.format, kind
                    )
                )
                server_cpu = process_cpu(proc.pid) - cpu0
                health = httpx.get(f"{url}/health").json()
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
            if done == texts:
                best[cache] = max(best.get(cache, 0.0), done / wall)
            hits = ""
            if health.get("cache"):
                stats = health["cache"]["stats"]
                hits = (
                    f"; /health: hit rate {stats['hit_rate']:.2f}, encoding saved "
                    f"{stats['seconds_saved']:.2f} s"
                )
            print(
                f"  round {round_no} --cache {cache:<6} {done / wall:8.1f} texts/s ({wall:.2f} s "
                f"wall, server CPU {server_cpu:.2f} s), errors {errors}{hits}"
                + ("" if done == texts else " [incomplete round: not counted]"),
                flush=True,
            )
    if len(best) < 2:
        print("FAIL: a cache-phase side had no complete round")
        return
    ratio = best["memory"] / best["off"]
    print(
        f"best of {args.repeat}: without cache {best['off']:.1f} texts/s, with the memory cache "
        f"{best['memory']:.1f} texts/s -> {ratio:.2f}x"
    )
    print(f"{'PASS' if ratio >= CACHE_GOAL else 'FAIL'}: {ratio:.2f}x, goal >= {CACHE_GOAL}x")


if __name__ == "__main__":
    main()
