"""embedcraft plot on 50k IMDB reviews: projection (PCA, UMAP), original-space neighbours, HTML
build time and size, and the browser's time to first paint; then 200k points in the browser.

Vectors come from a fast static encoder (default `minilm-l6-static`) and are cached under the
embedcraft cache folder. The browser is Debian's Chromium driven by Playwright (headless, CPU
rendering). Usage: python bench/plot.py [--encoder NAME] [--skip-umap] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import SHARED_DATA, machine_report
from embedcraft._cache import cache_dir
from embedcraft.plot import (
    encode_labels,
    nearest_neighbours,
    project,
    write_explorer,
    write_png,
)

CHROMIUM = "/usr/bin/chromium"
K = 10


def imdb(limit: int) -> tuple[list[str], list[str]]:
    """IMDB review texts and their pos/neg labels."""
    path = SHARED_DATA / "imdb_reviews" / "imdb.jsonl.gz"
    if not path.is_file():
        raise SystemExit(f"this benchmark needs {path}")
    texts, labels = [], []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.append(row["text"].replace("<br />", " "))
            labels.append(row["label"])
            if len(texts) >= limit:
                break
    return texts, labels


def vectors_cached(name: str, texts: list[str]) -> tuple[np.ndarray, float]:
    """The texts' vectors (encoded once, then loaded from the cache) and the encode seconds."""
    from embedcraft.catalog import load_encoder

    key = hashlib.sha256("\n".join([name, *texts]).encode()).hexdigest()[:16]
    path = cache_dir("bench") / f"plot-{name}-{key}.npy"
    if path.is_file():
        return np.load(path), float("nan")
    t0 = time.perf_counter()
    vectors = np.asarray(load_encoder(name).encode(texts), dtype=np.float32)
    seconds = time.perf_counter() - t0
    np.save(path, vectors)
    return vectors, seconds


def timed(func: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = func()
    return time.perf_counter() - t0, result


class Browser:
    """Headless Chromium opening explorer pages from disk and reading `window.explorer`."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
            ],
        )  # fmt: skip

    def open(self, path: Path) -> tuple[Any, float, float]:
        """A page with the explorer loaded: (page, firstPaintMs from navigation start, wall s)."""
        page = self.browser.new_page(viewport={"width": 1280, "height": 800})
        t0 = time.perf_counter()
        page.goto(path.as_uri(), timeout=300_000)
        page.wait_for_function("window.explorer && window.explorer.ready", timeout=300_000)
        wall = time.perf_counter() - t0
        return page, float(page.evaluate("window.explorer.firstPaintMs")), wall

    def first_paint(self, path: Path, repeat: int) -> tuple[float, float]:
        """Median first paint (ms after navigation start) and median wall seconds, fresh pages."""
        paints, walls = [], []
        for _ in range(repeat):
            page, paint, wall = self.open(path)
            paints.append(paint)
            walls.append(wall)
            page.close()
        return statistics.median(paints), statistics.median(walls)

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


def interaction(page: Any, repeat: int = 15) -> dict[str, float]:
    """Median JS redraw ms of a pan and a zoom; ms per frame of 30 pans each followed by a frame
    (rasterising included; 16.7 ms is the 60 Hz floor); ms of a first and a second search."""
    pans = [page.evaluate("explorer.panBy(7, -5)") for _ in range(repeat)]
    zooms = [page.evaluate(f"explorer.zoomBy({f})") for f in [1.25, 0.8] * (repeat // 2 + 1)]
    frame = page.evaluate(
        "(async () => { const t = performance.now(); for (let i = 0; i < 30; i++) {"
        " explorer.panBy(3, 2); await new Promise((r) => requestAnimationFrame(r)); }"
        " return (performance.now() - t) / 30; })()"
    )
    searches = [
        page.evaluate(
            f"(() => {{ const t = performance.now(); explorer.search('{q}');"
            " return performance.now() - t; })()"
        )
        for q in ("wonderful film", "terrible acting")
    ]
    return {
        "pan": statistics.median(pans),
        "zoom": statistics.median(zooms),
        "frame": frame,
        "search1": searches[0],
        "search2": searches[1],
    }


def report(act: dict[str, float]) -> None:
    print(
        f"  redraw (JS): pan {act['pan']:.1f} ms, zoom {act['zoom']:.1f} ms (median); "
        f"pan with a frame each: {act['frame']:.1f} ms/frame"
    )
    print(
        f"  search + highlight: first {act['search1']:.0f} ms (builds the lower-case index), "
        f"then {act['search2']:.0f} ms"
    )


def million(browser: Browser, folder: Path, repeat: int) -> None:
    """1M synthetic points (Gaussian layout, random neighbours, 80-character texts)."""
    n = 1_000_000
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(n, 2)).astype(np.float32)
    neighbours = rng.integers(0, n, size=(n, K), dtype=np.int32)
    texts = [f"point {i}: " + "lorem ipsum dolor sit amet " * 3 for i in range(n)]
    labels = rng.choice(["a", "b", "c", "d"], n).tolist()
    path = folder / "million.html"
    build_s, _ = timed(lambda: write_explorer(path, xy, texts, labels, neighbours, max_text=80))
    print(
        f"{n} synthetic points: HTML {build_s:.1f} s to write, {path.stat().st_size / 1e6:.0f} MB"
    )
    paint, wall = browser.first_paint(path, repeat)
    print(f"  first paint {paint:.0f} ms after navigation start ({wall:.2f} s wall)")
    page, _, _ = browser.open(path)
    report(interaction(page))
    page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm-l6-static")
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--big", type=int, default=200_000, help="points of the browser check")
    parser.add_argument("--skip-umap", action="store_true")
    parser.add_argument("--skip-million", action="store_true", help="no 1M-point page check")
    parser.add_argument("--repeat", type=int, default=3, help="page loads per first-paint median")
    args = parser.parse_args()
    print(machine_report())
    texts, sentiment = imdb(args.n)
    vectors, encode_s = vectors_cached(args.encoder, texts)
    encoded = "loaded from cache" if np.isnan(encode_s) else f"encoded in {encode_s:.1f} s"
    print(f"{len(texts)} IMDB reviews, {vectors.shape[1]}-dim {args.encoder} vectors ({encoded})")

    pca = project(vectors, "pca")
    print(f"PCA:        {pca.seconds:7.2f} s")
    if not args.skip_umap:
        warm = project(vectors[:300], "umap")  # numba compiles on first use in a process
        print(f"UMAP warm-up (300 points, numba compile): {warm.seconds:.1f} s")
        umap = project(vectors, "umap")
        print(f"UMAP:       {umap.seconds:7.2f} s")
    nb_s, neighbours = timed(lambda: nearest_neighbours(vectors, K))
    print(f"neighbours: {nb_s:7.2f} s  (k={K}, exact cosine, FAISS flat inner product)")
    layout = umap if not args.skip_umap else pca
    labels = encode_labels(sentiment, len(texts))
    folder = Path(tempfile.mkdtemp(prefix="embedcraft-bench-plot-"))
    html = folder / "imdb.html"
    build_s, _ = timed(lambda: write_explorer(html, layout.coords, texts, labels, neighbours))
    png_s, _ = timed(lambda: write_png(folder / "imdb.png", layout.coords, labels, title="IMDB"))
    size = html.stat().st_size / 1e6
    print(f"HTML:       {build_s:7.2f} s to write, {size:.1f} MB ({layout.method} layout)")
    print(f"PNG:        {png_s:7.2f} s")
    total = layout.seconds + nb_s + build_s
    print(f"HTML build in all (projection + neighbours + page): {total:.1f} s")

    browser = Browser()
    try:
        paint, wall = browser.first_paint(html, args.repeat)
        print(
            f"browser, {len(texts)} points: first paint {paint:.0f} ms after navigation start "
            f"(median of {args.repeat}; {wall:.2f} s wall from goto to ready)"
        )
        page, _, _ = browser.open(html)
        report(interaction(page))
        page.close()

        reps = -(-args.big // len(texts))
        rng = np.random.default_rng(0)
        spread = float(np.ptp(layout.coords, axis=0).max()) * 0.004
        big_xy = np.concatenate(
            [
                layout.coords + rng.normal(scale=spread, size=layout.coords.shape)
                for _ in range(reps)
            ]
        )[: args.big].astype(np.float32)
        big_nb = np.concatenate([neighbours + r * len(texts) for r in range(reps)])[: args.big]
        big_nb = np.where(big_nb < args.big, big_nb, big_nb % len(texts))
        big_texts = [f"{t} ({r})" for r in range(reps) for t in texts][: args.big]
        big_labels = (sentiment * reps)[: args.big]
        big = folder / "big.html"
        build_s, _ = timed(lambda: write_explorer(big, big_xy, big_texts, big_labels, big_nb))
        print(
            f"{args.big} points (the {len(texts)} repeated with jitter): HTML {build_s:.1f} s to "
            f"write, {big.stat().st_size / 1e6:.1f} MB"
        )
        paint, wall = browser.first_paint(big, args.repeat)
        print(f"  first paint {paint:.0f} ms after navigation start ({wall:.2f} s wall)")
        page, _, _ = browser.open(big)
        report(interaction(page))
        page.close()
        if not args.skip_million:
            million(browser, folder, args.repeat)
    finally:
        browser.close()
    print(f"(pages in {folder})")


if __name__ == "__main__":
    main()
