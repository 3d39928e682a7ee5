"""Image embeddings on CPU: efficientnet-lite0 on ONNX Runtime against the same model in eager
torch, on the real photos of ../shared/data/images (flowers5, and cifar10_subset), one run.

Parts, each printed as soon as it is measured:
  (d) the one-time ONNX export, in a fresh process with an empty cache folder;
  (a) correctness: ONNX vs torch on the same preprocessed pixels of --check photos (mean and
      min cosine of the 1,280-wide embedding, top-1 ImageNet class agreement), and the top-5
      labels of scikit-learn's two sample photos;
  (b) speed: images/s end to end (decode + preprocess + model) of our encoder vs eager torch
      fed by a straightforward PIL loop (open, RGB, shorter side to 256 bicubic, centre crop
      224, normalize, stack), batch --batch, --threads threads on both sides; wall-time and
      CPU-time ratios; the torch loop's vectors are also compared with ours;
  (c) peak RSS of a fresh process encoding 1k, 5k, 20k images (the photos cycled);
  (e) quality: 10-NN (leave-one-out, cosine) and logistic-probe accuracy and precision@10 of
      efficientnet-lite0 and the `pixels` baseline (evaluate_image_classification).

The peer needs torch (the `images` extra installs the CPU build). Usage:

    python bench/images.py [--threads 2] [--batch 32] [--check 200] [--speed 256]
                           [--rss-sizes 1000,5000,20000] [--cifar 2000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import SHARED_DATA, machine_report

FLOWERS = SHARED_DATA / "images" / "flowers5"
CIFAR = SHARED_DATA / "images" / "cifar10_subset"
BARS = {"cosine": 0.9999, "speed": 2.0}


def say(text: str = "") -> None:
    print(text, flush=True)


def photos() -> Any:
    """flowers5 as LabelledImages (all 4,317 photos, fixed train/test split)."""
    from embedcraft.evaluate.images import load_labelled_images

    if not (FLOWERS / "labels.csv").is_file():
        raise SystemExit(f"this benchmark needs {FLOWERS} (see ../shared/data/images/README)")
    return load_labelled_images(FLOWERS / "labels.csv")


# ------------------------------------------------------------------------------ the peer
def peer_pixels(path: str) -> np.ndarray:
    """One photo as eager-torch users commonly prepare it: PIL, RGB, shorter side to 256
    (bicubic), centre crop 224, (x - 127) / 128, CHW."""
    from PIL import Image

    with Image.open(path) as raw:
        image = raw.convert("RGB")
    w, h = image.size
    scale = 256 / min(w, h)
    image = image.resize((round(w * scale), round(h * scale)), Image.Resampling.BICUBIC)
    w, h = image.size
    left, top = (w - 224) // 2, (h - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    x = (np.asarray(image, dtype=np.float32) - 127.0) / 128.0
    return x.transpose(2, 0, 1)


def peer_encode(model: Any, paths: list[str], batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Eager torch end to end: the PIL loop, then the model; (unit embeddings, logits)."""
    import torch

    embeddings, logits = [], []
    with torch.no_grad():
        for start in range(0, len(paths), batch):
            x = torch.from_numpy(np.stack([peer_pixels(p) for p in paths[start : start + batch]]))
            pooled, scores = model(x)
            embeddings.append(pooled.numpy())
            logits.append(scores.numpy())
    e = np.concatenate(embeddings)
    return e / np.linalg.norm(e, axis=1, keepdims=True), np.concatenate(logits)


def torch_on(model: Any, pixels: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The torch model on given (n, 3, 224, 224) inputs: (unit embeddings, logits)."""
    import torch

    embeddings, logits = [], []
    with torch.no_grad():
        for start in range(0, len(pixels), batch):
            pooled, scores = model(torch.from_numpy(pixels[start : start + batch]))
            embeddings.append(pooled.numpy())
            logits.append(scores.numpy())
    e = np.concatenate(embeddings)
    return e / np.linalg.norm(e, axis=1, keepdims=True), np.concatenate(logits)


# ------------------------------------------------------------------------------ parts
def export_part() -> float:
    """(d) The one-time export in a fresh process with an empty cache; its seconds."""
    with tempfile.TemporaryDirectory(prefix="embedcraft-bench-") as cache:
        env = dict(os.environ, EMBEDCRAFT_CACHE=cache)
        code = "from embedcraft.encoders.image_models import efficientnet_lite0_onnx as f; f()"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        wall = time.perf_counter() - t0
        manifest = next((Path(cache) / "models" / "efficientnet-lite0").glob("lite0-*.json"))
        stats = json.loads(manifest.read_text())["export"]
    say(
        f"(d) one-time ONNX export (fresh process, empty cache): {wall:.1f} s wall in all "
        f"(python + imports included); inside: load {stats['load_s']:.1f} s, export "
        f"{stats['export_s']:.1f} s, check vs torch {stats['check_s']:.1f} s; "
        f"{stats['bytes'] / 1e6:.1f} MB, largest |onnx - torch| on the check batch "
        f"{stats['max_abs_diff']:.1e}, torch {stats['torch']}"
    )
    return wall


def correctness_part(encoder: Any, model: Any, paths: list[str], batch: int) -> dict[str, Any]:
    """(a) ONNX vs torch on the same preprocessed pixels, and the sample photos' labels."""
    from sklearn.datasets import load_sample_images

    ours = np.asarray(encoder.encode(paths, batch_size=batch))
    top_ours = [c[0][0] for c in encoder.classify(paths, k=1, batch_size=batch)]
    pixels = encoder.preprocess(paths)
    theirs, logits = torch_on(model, pixels, batch)
    labels = encoder.spec.labels()
    top_theirs = [labels[i] for i in logits.argmax(axis=1)]
    cos = (ours * theirs).sum(axis=1)
    agree = sum(a == b for a, b in zip(top_ours, top_theirs, strict=True))
    ok = cos.mean() >= BARS["cosine"] and agree == len(paths)
    say(
        f"(a) ONNX vs eager torch, same pixels, {len(paths)} flowers5 photos: cosine mean "
        f"{cos.mean():.7f}, min {cos.min():.7f}; top-1 ImageNet class identical on "
        f"{agree}/{len(paths)}  [{'PASS' if ok else 'FAIL'}: mean >= {BARS['cosine']}, all equal]"
    )
    sample = load_sample_images()
    names = [Path(f).name for f in sample.filenames]
    top5 = encoder.classify(list(sample.images), k=5)
    _, sample_logits = torch_on(model, encoder.preprocess(list(sample.images)), batch)
    for name, found, scores in zip(names, top5, sample_logits, strict=True):
        shown = ", ".join(f"{label} {p:.2f}" for label, p in found)
        torch_top = [labels[i] for i in np.argsort(-scores)[:5]]
        same = "same top-5 in torch" if torch_top == [x[0] for x in found] else f"torch {torch_top}"
        say(f"    sklearn sample {name}: {shown}  ({same})")
    return {"ours": ours, "cos_mean": float(cos.mean()), "agree": agree}


def speed_part(
    encoder: Any, model: Any, paths: list[str], batch: int, repeat: int, ours_check: np.ndarray
) -> float:
    """(b) Images/s end to end, ours vs eager torch + PIL loop; the wall-time ratio."""
    encoder.encode(paths[:batch], batch_size=batch)  # warm both sides
    peer_encode(model, paths[:batch], batch)
    best_ours = best_peer = (float("inf"), float("inf"))
    peer_vectors = np.empty(0)
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        ours = np.asarray(encoder.encode(paths, batch_size=batch))
        best_ours = min(best_ours, (time.perf_counter() - t0, time.process_time() - c0))
        t0, c0 = time.perf_counter(), time.process_time()
        peer_vectors, _ = peer_encode(model, paths, batch)
        best_peer = min(best_peer, (time.perf_counter() - t0, time.process_time() - c0))
    n = len(paths)
    wall_ratio, cpu_ratio = best_peer[0] / best_ours[0], best_peer[1] / best_ours[1]
    say(
        f"(b) end to end, {n} photos, batch {batch}: embedcraft {n / best_ours[0]:.1f} images/s "
        f"({best_ours[1]:.1f} CPU s), eager torch + PIL loop {n / best_peer[0]:.1f} images/s "
        f"({best_peer[1]:.1f} CPU s), best of {repeat}: wall {wall_ratio:.2f}x, "
        f"CPU time {cpu_ratio:.2f}x  "
        f"[{'PASS' if wall_ratio >= BARS['speed'] else 'FAIL'}: wall >= {BARS['speed']}x]"
    )
    m = len(ours_check)
    same_run = float((ours[:m] * ours_check).sum(axis=1).min())
    cos = (ours * peer_vectors).sum(axis=1)
    say(
        f"    our vectors vs the torch loop's (its own PIL resize + crop): cosine mean "
        f"{cos.mean():.4f}, min {cos.min():.4f}; ours vs the check run: min cosine {same_run:.7f}"
    )
    return wall_ratio


def peak_rss() -> int:
    """This process's peak resident set in bytes (VmHWM: unlike ru_maxrss, not carried over
    from the parent across exec)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def rss_child(count: int, threads: int, batch: int) -> None:
    """In a fresh process: encode `count` photos (cycled); print one JSON line."""
    from embedcraft.encoders.image import ImageEncoder

    data = photos()
    paths = [str(data.paths[i % len(data.paths)]) for i in range(count)]
    encoder = ImageEncoder(threads=threads)
    encoder.encode(paths[:batch], batch_size=batch)
    before = peak_rss()
    t0 = time.perf_counter()
    vectors = np.asarray(encoder.encode(paths, batch_size=batch))
    seconds = time.perf_counter() - t0
    peak = peak_rss()
    print(json.dumps({"before": before, "peak": peak, "out": vectors.nbytes, "s": seconds}))


def rss_part(sizes: list[int], threads: int, batch: int) -> None:
    """(c) Peak RSS of a fresh process per image count."""
    mib = 2**20
    rows = []
    for count in sizes:
        args = [sys.executable, __file__, "--rss-child", str(count)]
        args += ["--threads", str(threads), "--batch", str(batch)]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rows.append(r)
        say(
            f"(c) {count:>6,} images: peak RSS {r['peak'] / mib:.0f} MiB (after loading + one "
            f"batch {r['before'] / mib:.0f} MiB; the returned vectors {r['out'] / mib:.0f} MiB; "
            f"peak less vectors {(r['peak'] - r['out']) / mib:.0f} MiB), "
            f"{count / r['s']:.1f} images/s"
        )
    if len(rows) > 1:
        grow = (rows[-1]["peak"] - rows[-1]["out"]) - (rows[0]["peak"] - rows[0]["out"])
        say(
            f"    peak RSS less the returned vectors grows {grow / mib:+.0f} MiB from "
            f"{sizes[0]:,} to {sizes[-1]:,} images"
        )


def quality_part(data: Any, name: str, threads: int, batch: int) -> None:
    """(e) k-NN / probe accuracy and precision@10, efficientnet-lite0 vs pixels."""
    from embedcraft.encoders.image import ImageEncoder, PixelsEncoder
    from embedcraft.evaluate.images import evaluate_image_classification

    results = {}
    for encoder in (ImageEncoder(threads=threads), PixelsEncoder()):
        r = evaluate_image_classification(encoder, data, batch_size=batch)
        results[encoder.name] = r
        say(
            f"(e) {name} ({r.images:,} images, {r.classes} classes, probe {r.train:,}/{r.test:,} "
            f"{r.split}) {encoder.name:>18}: 10-NN {r.knn_accuracy:.3f}, probe "
            f"{r.probe_accuracy:.3f}, precision@10 {r.precision_at_10:.3f}  "
            f"(encode {r.encode_seconds:.1f} s, all {r.seconds:.1f} s)"
        )
    a, b = results["efficientnet-lite0"], results["pixels"]
    say(
        f"    margin over pixels: 10-NN {a.knn_accuracy - b.knn_accuracy:+.3f}, probe "
        f"{a.probe_accuracy - b.probe_accuracy:+.3f}, precision@10 "
        f"{a.precision_at_10 - b.precision_at_10:+.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--check", type=int, default=200, help="photos for ONNX vs torch")
    parser.add_argument("--speed", type=int, default=256, help="photos for images/s")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rss-sizes", default="1000,5000,20000", help="'' to skip")
    parser.add_argument("--cifar", type=int, default=2000, help="cifar10 images (0: skip)")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args.rss_child:
        rss_child(args.rss_child, args.threads, args.batch)
        return
    started = time.perf_counter()
    say(machine_report())
    say(f"threads {args.threads} on both sides, batch {args.batch}; {load()}")
    export_part()

    import torch

    from embedcraft.encoders.image import ImageEncoder
    from embedcraft.encoders.image_models import build_torch_model

    torch.set_num_threads(args.threads)
    say(f"peer: torch {torch.__version__} eager, torch.set_num_threads({args.threads})")
    data = photos()
    spread = data.head(max(args.check, args.speed))
    paths = [str(p) for p in spread.paths]
    encoder = ImageEncoder(threads=args.threads)
    model = build_torch_model()
    check = correctness_part(encoder, model, paths[: args.check], args.batch)
    speed_part(encoder, model, paths[: args.speed], args.batch, args.repeat, check["ours"])
    sizes = [int(s) for s in args.rss_sizes.split(",") if s.strip()]
    if sizes:
        rss_part(sizes, args.threads, args.batch)
    quality_part(data, "flowers5", args.threads, args.batch)
    if args.cifar and (CIFAR / "labels.csv").is_file():
        from embedcraft.evaluate.images import load_labelled_images

        cifar = load_labelled_images(CIFAR / "labels.csv").head(args.cifar)
        quality_part(cifar, "cifar10 (32x32)", args.threads, args.batch)
    say(f"total run time {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
