"""Plots of images: thumbnails as data URLs, the explorer carrying them, `embedcraft plot` on an
image folder, a table of image paths and an image collection, and hover showing the picture."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli_runner import run_many
from components import import_component, require_component
from embedcraft.errors import InputError
from embedcraft.plot import make_thumbnails, nearest_neighbours, project, write_explorer

import_component("PIL.Image", "Pillow (pip install 'embedcraft[images]')")

COLOURS = {"red": (200, 30, 30), "green": (30, 170, 40), "blue": (30, 40, 190)}
CHROMIUM = Path("/usr/bin/chromium")


def _page_data(page: str) -> dict[str, Any]:
    start = page.index('id="explorer-data">') + len('id="explorer-data">')
    data: dict[str, Any] = json.loads(page[start : page.index("</script>", start)])
    return data


def _decoded(url: str) -> Any:
    from PIL import Image

    assert url.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """class/image.png for three colour classes (8 each), one bad file, and a table of paths."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    rows = ["path,kind"]
    for name, colour in COLOURS.items():
        (root / name).mkdir()
        for i in range(8):
            pixels = np.array(colour) + rng.normal(0, 20, size=(40, 60 + i, 3))
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / name / f"{i}.png")
            rows.append(f"{name}/{i}.png,{name}")
    (root / "blue" / "bad.jpg").write_bytes(b"\xff\xd8\xff truncated")
    (root / "table.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_thumbnails_are_small_jpegs_and_bounded(photos: Path, tmp_path: Path) -> None:
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("RGB", (900, 300), (10, 200, 10)).save(big)
    made = make_thumbnails([big, photos / "red" / "0.png", photos / "blue" / "bad.jpg"], size=48)
    first = _decoded(made.urls[0] or "")
    assert first.size == (48, 16) and first.format == "JPEG"
    assert max(_decoded(made.urls[1] or "").size) == 48
    assert made.urls[2] is None and list(made.failed) == [2] and "bad.jpg" in made.failed[2]
    assert made.bytes == len(made.urls[0] or "") + len(made.urls[1] or "")
    arrays = [np.full((20, 20, 3), i % 251, dtype=np.uint8) for i in range(300)]
    capped = make_thumbnails(arrays, size=16, budget=20_000)
    assert capped.bytes <= 20_000 and capped.over_budget > 0
    assert sum(u is not None for u in capped.urls) + capped.over_budget == 300
    with pytest.raises(InputError, match="thumbnail size"):
        make_thumbnails(arrays, size=4)


def test_explorer_carries_thumbnails(photos: Path, tmp_path: Path) -> None:
    urls = make_thumbnails([photos / "red" / "0.png", photos / "green" / "0.png"]).urls
    coords = np.array([[0, 0], [1, 1]], dtype=np.float32)
    out = write_explorer(
        tmp_path / "e.html", coords, ["a", "b"], ["red", "green"], np.array([[1], [0]]),
        thumbnails=urls,
    )  # fmt: skip
    data = _page_data(out.read_text(encoding="utf-8"))
    assert data["images"] == urls
    with pytest.raises(InputError, match="2 texts but 1 thumbnails"):
        write_explorer(
            tmp_path / "x.html", coords, ["a", "b"], None, np.zeros((2, 1)), thumbnails=urls[:1]
        )
    with pytest.raises(InputError, match="data:image"):
        write_explorer(
            tmp_path / "x.html", coords, ["a", "b"], None, np.zeros((2, 1)),
            thumbnails=["javascript:alert(1)", None],
        )  # fmt: skip
    assert not (tmp_path / "x.html").exists()


@pytest.fixture(scope="module")
def plotted(photos: Path) -> dict[str, Any]:
    """`embedcraft plot` on the folder, the table and an image collection (pixels encoder)."""
    import_component("matplotlib", "matplotlib (pip install 'embedcraft[plot]')")
    from embedcraft.store import Collection
    from embedcraft.store.images import index_images, read_images

    with Collection(photos / "col", encoders=["pixels"]) as col:
        index_images(col, read_images(photos / "table.csv"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = run_many(
        {
            "folder": [
                "plot", "red", "-e", "pixels", "--png", "out/f.png", "--html", "out/f.html",
                "--neighbours", 3, "--json",
            ],
            "parent": ["plot", ".", "-e", "pixels", "--html", "out/all.html", "--json"],
            "table": [
                "plot", "table.csv", "-e", "pixels", "--column", "path", "--label-column", "kind",
                "--html", "out/t.html", "--png", "out/t.png", "--thumbnail-size", 32,
            ],
            "collection": ["plot", "-c", "col", "--label-column", "kind", "--html", "out/c.html"],
            "text encoder": ["plot", ".", "-e", "tfidf", "--html", "out/x.html"],
        },
        photos,
        env,
        timeout=300,
    )  # fmt: skip
    return {"runs": runs, "root": photos}


def test_cli_plot_image_folder(plotted: dict[str, Any]) -> None:
    runs, root = plotted["runs"], plotted["root"]
    result = runs["folder"]
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["points"] == 8 and out["encoder"] == "pixels" and out["thumbnails"]["bytes"] > 0
    assert (root / "out" / "f.png").stat().st_size > 5_000
    data = _page_data((root / "out" / "f.html").read_text(encoding="utf-8"))
    assert data["ids"][0] == "0.png" and len(data["images"]) == 8 and all(data["images"])
    result = runs["parent"]  # class folders: coloured by folder, the bad file left out
    assert result.returncode == 0, result.stderr
    assert "left out blue/bad.jpg" in result.stderr
    data = _page_data((root / "out" / "all.html").read_text(encoding="utf-8"))
    assert data["n"] == 24 and data["labels"]["names"] == ["blue", "green", "red"]
    assert data["labelColumn"] == "folder" and all(data["images"])
    assert _decoded(data["images"][0]).size == (60, 40)  # small images are not enlarged
    result = runs["text encoder"]
    assert result.returncode == 1 and "needs an image encoder" in result.stderr


def test_cli_plot_image_table_and_collection(plotted: dict[str, Any]) -> None:
    runs, root = plotted["runs"], plotted["root"]
    for key, page in (("table", "t.html"), ("collection", "c.html")):
        result = runs[key]
        assert result.returncode == 0, (key, result.stderr)
        data = _page_data((root / "out" / page).read_text(encoding="utf-8"))
        assert data["n"] == 24 and sorted(data["labels"]["names"]) == ["blue", "green", "red"]
        assert len(data["images"]) == 24 and all(data["images"]), key
    table = _page_data((root / "out" / "t.html").read_text(encoding="utf-8"))
    assert max(_decoded(table["images"][0]).size) == 32


# ---------------------------------------------------------------- hover in Chromium
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        require_component("Chromium", f"no Debian chromium at {CHROMIUM} (apt install chromium)")
    sync_api = import_component("playwright.sync_api", "Chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def test_hover_shows_the_picture(browser: Any, photos: Path, tmp_path: Path) -> None:
    paths = [photos / name / f"{i}.png" for name in COLOURS for i in range(8)]
    from embedcraft.encoders.image import PixelsEncoder

    vectors = np.asarray(PixelsEncoder().encode([str(p) for p in paths]))
    ids = [f"{p.parent.name}/{p.name}" for p in paths]
    page_path = write_explorer(
        tmp_path / "e.html", project(vectors).coords, ids, [p.parent.name for p in paths],
        nearest_neighbours(vectors, 3), ids=ids, thumbnails=make_thumbnails(paths).urls,
    )  # fmt: skip
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_path.as_uri())
    page.wait_for_function("window.explorer && window.explorer.ready", timeout=60_000)
    j = 9
    spot = page.evaluate(f"explorer.screenPosition({j})")
    page.mouse.move(spot["x"], spot["y"])
    page.wait_for_function(f"window.explorer.hovered === {j}", timeout=30_000)
    hovered = page.evaluate("explorer.hovered")
    img = page.locator("#tooltip img")
    assert img.count() == 1 and page.is_visible("#tooltip img")
    assert img.get_attribute("alt") == ids[hovered]
    assert (img.get_attribute("src") or "").startswith("data:image/jpeg;base64,")
    assert 0 < page.evaluate("document.querySelector('#tooltip img').naturalWidth") <= 64
    page.fill("#search", ids[0])
    page.wait_for_function("window.explorer.selected === 0", timeout=30_000)
    assert page.locator("#details img").count() == 4  # the selected image and 3 neighbours
    assert errors == []
    page.close()
