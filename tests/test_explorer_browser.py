"""The HTML explorer opened from disk in headless Chromium: search, original-space neighbours,
hover, highlight pixels, pan and zoom, and a screenshot."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from components import import_component, require_component
from embedcraft.plot import nearest_neighbours, project, write_explorer

CHROMIUM = Path("/usr/bin/chromium")
SELECTED = (228, 0, 43)
NEIGHBOUR = (255, 159, 28)
TOPICS = ("alpha", "beta", "gamma")
K = 8


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (its own browser download cannot work here)."""
    if not CHROMIUM.is_file():
        require_component("Chromium", f"no Debian chromium at {CHROMIUM} (apt install chromium)")
    sync_api = import_component("playwright.sync_api", "Chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
            ],
        )  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """600 points in 64-d (three topics), their PCA picture and neighbours, written as a page."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3, 64)) * 1.5
    topic = np.repeat(np.arange(3), 200)
    vectors = (centres[topic] + rng.normal(size=(600, 64))).astype(np.float32)
    texts = [f"{TOPICS[t]} note number {i}." for i, t in enumerate(topic)]
    coords = project(vectors).coords
    neighbours = nearest_neighbours(vectors, K)
    path = tmp_path_factory.mktemp("explorer") / "explorer.html"
    labels = [TOPICS[t] for t in topic]
    write_explorer(path, coords, texts, labels, neighbours, ids=[f"p{i}" for i in range(600)])
    return {"path": path, "coords": coords, "neighbours": neighbours, "texts": texts}


def _nearest_2d(coords: np.ndarray, i: int, k: int) -> list[int]:
    d = ((coords - coords[i]) ** 2).sum(axis=1)
    d[i] = np.inf
    return np.argsort(d, kind="stable")[:k].tolist()


def _distance(a: dict[str, float], b: dict[str, float]) -> float:
    return float(np.hypot(a["x"] - b["x"], a["y"] - b["y"]))


def _count_colour(png: bytes, colour: tuple[int, int, int]) -> int:
    from matplotlib.image import imread

    image = (imread(io.BytesIO(png), format="png")[..., :3] * 255).round().astype(int)
    return int((np.abs(image - np.array(colour)).max(axis=-1) <= 2).sum())


def test_search_highlights_original_space_neighbours(
    browser: Any, explorer: dict[str, Any], tmp_path: Path
) -> None:
    import_component("matplotlib", "Chromium")  # reads the screenshots' pixels
    page = browser.new_page(viewport={"width": 1100, "height": 750})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "request", lambda r: errors.append(f"fetched {r.url}") if r.url.startswith("http") else None
    )
    page.goto(explorer["path"].as_uri())
    page.wait_for_function("window.explorer && window.explorer.ready", timeout=60_000)
    state = page.evaluate("({n: explorer.n, k: explorer.k, first: explorer.firstPaintMs})")
    assert state["n"] == 600 and state["k"] == K and state["first"] > 0
    before = page.screenshot()
    assert _count_colour(before, SELECTED) == 0

    target = 437
    page.fill("#search", "note number 437.")
    page.wait_for_function(f"window.explorer.selected === {target}", timeout=30_000)
    highlighted = page.evaluate("window.explorer.highlighted")
    expected = explorer["neighbours"][target].tolist()
    assert highlighted == expected  # the original space, best first
    assert set(expected) != set(_nearest_2d(explorer["coords"], target, K))  # not the picture's
    assert "p437" in page.inner_text("#status") and "original space" in page.inner_text("#status")
    assert page.evaluate(f"explorer.pixel({target})")[:3] == list(SELECTED)
    shown = [tuple(page.evaluate(f"explorer.pixel({j})")[:3]) for j in expected]
    assert all(c in (NEIGHBOUR, SELECTED) for c in shown) and shown.count(NEIGHBOUR) >= K // 2
    after = page.screenshot(path=str(tmp_path / "explorer.png"))
    assert _count_colour(after, SELECTED) > 50 and _count_colour(after, NEIGHBOUR) > 100
    shot = tmp_path / "explorer.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    details = page.inner_text("#details")
    assert explorer["texts"][target] in details and explorer["texts"][expected[0]] in details

    # hover: the mouse on a point shows that point's text
    j = expected[-1]
    spot = page.evaluate(f"explorer.screenPosition({j})")
    page.mouse.move(spot["x"], spot["y"])
    page.wait_for_function(f"window.explorer.hovered === {j}", timeout=30_000)
    assert explorer["texts"][j] in page.inner_text("#tooltip") and page.is_visible("#tooltip")

    # an id finds its item; Enter moves to the next match of a text
    page.fill("#search", "p12")
    page.wait_for_function("window.explorer.selected === 12", timeout=30_000)
    page.fill("#search", "gamma note")
    page.wait_for_function("window.explorer.selected === 400", timeout=30_000)
    page.press("#search", "Enter")
    page.wait_for_function("window.explorer.selected === 401", timeout=30_000)
    page.fill("#search", "no such thing")
    page.wait_for_function("window.explorer.selected === -1", timeout=30_000)
    assert "no match" in page.inner_text("#status")
    assert errors == []
    page.close()


def test_pan_and_zoom_move_the_points(browser: Any, explorer: dict[str, Any]) -> None:
    page = browser.new_page(viewport={"width": 900, "height": 700})
    page.goto(explorer["path"].as_uri())
    page.wait_for_function("window.explorer && window.explorer.ready", timeout=60_000)
    start = page.evaluate("explorer.screenPosition(5)")
    box = page.locator("#canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 60, cy + 40, steps=5)
    page.mouse.up()
    page.wait_for_timeout(100)
    moved = page.evaluate("explorer.screenPosition(5)")
    assert moved["x"] == pytest.approx(start["x"] + 60, abs=1)
    assert moved["y"] == pytest.approx(start["y"] + 40, abs=1)
    far_before = page.evaluate("explorer.screenPosition(300)")
    page.mouse.move(moved["x"], moved["y"])
    page.mouse.wheel(0, -400)  # zoom in around the point under the mouse: it stays put
    page.wait_for_function(f"explorer.screenPosition(300).x !== {far_before['x']}")
    far = page.evaluate("explorer.screenPosition(300)")
    fixed = page.evaluate("explorer.screenPosition(5)")
    assert fixed["x"] == pytest.approx(moved["x"], abs=1.5)
    assert fixed["y"] == pytest.approx(moved["y"], abs=1.5)
    assert _distance(far, fixed) > 1.5 * _distance(far_before, moved)  # others spread out
    page.dblclick("#canvas", position={"x": 5, "y": 5})  # fit: back to the first view
    page.wait_for_timeout(100)
    again = page.evaluate("explorer.screenPosition(5)")
    assert again["x"] == pytest.approx(start["x"], abs=1)
    assert again["y"] == pytest.approx(start["y"], abs=1)
    page.close()
