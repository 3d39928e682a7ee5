"""A bounded load test of `embedcraft serve` on loopback, against direct library encodes.

Starts the server itself (a subprocess running `embedcraft serve`), sends a fixed number of
/v1/embeddings requests from several concurrent clients (stopping early at --duration seconds),
then stops the server. Prints requests/s, p50/p99 latency, the error count, how well the server
batched, and the embedding throughput through the server against a direct `encode` of the same
texts in this process, measured in the same run (the goal: >= 0.8x).

Texts: the STS-B test sentences from ../shared/data (both columns), cycled to fill the requests.

    python bench/serve.py [--encoder minilm-l6] [--clients 32] [--requests 300] [--per-request 16]
                          [--duration 60] [--format base64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from _common import SHARED_DATA, machine_report

GOAL = 0.8
"""Server throughput / direct encode throughput the issue asks for."""


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


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other work competing for the cores)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen[str]:
    """`embedcraft serve` in a subprocess; returns once /health answers."""
    import httpx

    argv = [sys.executable, "-m", "embedcraft.cli", "serve", "--port", str(port)]
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


async def load_test(
    url: str, model: str, requests: list[list[str]], clients: int, duration: float, fmt: str
) -> tuple[list[float], int, int, float]:
    """Send `requests` from `clients` concurrent connections; stop early after `duration` s.

    Returns (latencies of the successful requests, errors, texts embedded, wall seconds).
    """
    import httpx

    latencies: list[float] = []
    errors = 0
    texts_done = 0
    next_index = 0
    start = time.perf_counter()

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal next_index, errors, texts_done
        while next_index < len(requests) and time.perf_counter() - start < duration:
            texts = requests[next_index]
            next_index += 1
            body = {"model": model, "input": texts, "encoding_format": fmt}
            t0 = time.perf_counter()
            try:
                response = await http.post("/v1/embeddings", json=body)
                data = response.json()["data"] if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                data = None
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

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return latencies, errors, texts_done, time.perf_counter() - start


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
    parser.add_argument("--transformer-batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of (direct, server)")
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

    import embedcraft
    from embedcraft import load_encoder

    print(machine_report())
    print(f"load average before the run (other work on the machine): {load_average()}")
    print(
        f"embedcraft {embedcraft.__version__}; encoder {args.encoder}; {args.requests} requests "
        f"x {n} texts ({len(all_texts)} texts, STS-B test sentences), {args.clients} concurrent "
        f"clients, {args.format}; server micro-batch <= {args.max_batch} texts, wait "
        f"{args.max_wait_ms} ms, model runs of {args.transformer_batch_size}; best of "
        f"{args.repeat} rounds; stop after {args.duration:.0f} s\n"
    )

    encoder = load_encoder(args.encoder)
    encoder.encode(all_texts[:64])  # load the model before timing
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args, port)
    import httpx

    direct_best, served_best = float("inf"), float("inf")
    total_errors = 0
    cpu_ratio = 0.0
    try:
        for round_no in range(1, args.repeat + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            encoder.encode(all_texts)
            direct_s = time.perf_counter() - t0
            direct_cpu = time.process_time() - c0
            direct_best = min(direct_best, direct_s)
            before = httpx.get(f"{url}/health").json()["batching"][args.encoder]
            cpu0, server_cpu0 = time.process_time(), process_cpu(proc.pid)
            latencies, errors, done, wall = asyncio.run(
                load_test(url, args.encoder, requests, args.clients, args.duration, args.format)
            )
            client_cpu = time.process_time() - cpu0
            server_cpu = process_cpu(proc.pid) - server_cpu0
            after = httpx.get(f"{url}/health").json()["batching"][args.encoder]
            busy = after["encode_seconds"] - before["encode_seconds"]
            encodes = after["batches"] - before["batches"]
            total_errors += errors
            lat = np.array(latencies) * 1000
            p50, p99 = np.percentile(lat, [50, 99]) if len(lat) else (float("nan"),) * 2
            served_rate = done / wall
            if done == len(all_texts):
                served_best = min(served_best, wall)
            print(
                f"round {round_no}: direct encode {len(all_texts) / direct_s:8.1f} texts/s | "
                f"server {len(latencies) / wall:7.1f} requests/s, {served_rate:8.1f} texts/s, "
                f"p50 {p50:6.1f} ms, p99 {p99:6.1f} ms, errors {errors}, "
                f"{len(latencies)}/{len(requests)} requests in {wall:.1f} s"
            )
            print(
                f"         server side: {encodes} encodes (~{done / max(encodes, 1):.0f} texts "
                f"each), encoding {busy:.2f} s of the {wall:.2f} s ({busy / wall:.0%}), "
                f"{done / max(busy, 1e-9):.1f} texts/s while encoding"
            )
            print(
                f"         CPU seconds: direct {direct_cpu:.2f} s, server {server_cpu:.2f} s + "
                f"clients {client_cpu:.2f} s"
            )
            if done == len(all_texts):
                cpu_ratio = max(cpu_ratio, direct_cpu / (server_cpu + client_cpu))
        batching = httpx.get(f"{url}/health").json()["batching"][args.encoder]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    stopped = proc.returncode == 0 and "server stopped" in err
    mean_batch = batching["requests"] / max(batching["batches"], 1) * n
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
        f"best: direct {len(all_texts) / direct_best:.1f} texts/s, through the server "
        f"{len(all_texts) / served_best:.1f} texts/s -> {ratio:.2f}x direct "
        f"(goal >= {GOAL}x): {verdict}"
    )
    print(
        f"CPU time per text, direct / (server + clients), best round: {cpu_ratio:.2f}x "
        "(less sensitive than wall time to other work on the machine)"
    )


if __name__ == "__main__":
    main()
