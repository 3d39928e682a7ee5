"""`embedcraft.plot` and `embedcraft plot`: projections, original-space neighbours, the PNG,
the standalone explorer page, and their one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cli_runner import command
from embedcraft.errors import InputError
from embedcraft.plot import (
    encode_labels,
    nearest_neighbours,
    project,
    write_explorer,
    write_png,
)
from embedcraft.plot._collection import read_collection
from embedcraft.plot._labels import OTHER, PALETTE

TOPICS = {
    "animals": [
        "The cat sat on the mat and purred.",
        "Dogs and cats are popular pets.",
        "A puppy chased the kitten around the garden.",
        "The horse galloped across the field.",
    ],
    "finance": [
        "The stock market fell sharply on Monday.",
        "Investors sold shares as the market dropped.",
        "The central bank raised interest rates again.",
        "Bond yields rose after the inflation report.",
    ],
    "space": [
        "The telescope revealed rings around the planet.",
        "Astronomers discovered a new planet orbiting a distant star.",
        "The rocket carried a satellite into orbit.",
        "A comet passed close to the sun last night.",
    ],
}


def _clusters(n_per: int = 40, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian clusters and their cluster numbers."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim)) * 4
    labels = np.repeat(np.arange(3), n_per)
    points = centres[labels] + rng.normal(size=(3 * n_per, dim))
    return points.astype(np.float32), labels


def _brute_force(matrix: np.ndarray, k: int) -> np.ndarray:
    """Cosine neighbours by sorting every score, in float64 (ties: lower index first)."""
    dense = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    unit = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
    scores = unit @ unit.T
    np.fill_diagonal(scores, -np.inf)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _nearest_centroid(coords: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For each 2-D point, the cluster whose centre (in the picture) lies nearest."""
    centroids = np.stack([coords[labels == c].mean(axis=0) for c in range(labels.max() + 1)])
    return np.argmin(((coords[:, None] - centroids[None]) ** 2).sum(-1), axis=1)


# ---------------------------------------------------------------- projections
def test_pca_separates_clear_clusters_and_is_deterministic() -> None:
    points, labels = _clusters()
    first = project(points, "pca")
    assert first.coords.shape == (len(points), 2) and first.coords.dtype == np.float32
    assert first.method == "pca" and len(first) == len(points)
    assert (_nearest_centroid(first.coords, labels) == labels).all()
    np.testing.assert_array_equal(project(points, "pca").coords, first.coords)


def test_tsne_is_seeded_and_takes_sparse_input() -> None:
    points, labels = _clusters(n_per=20)
    a = project(points, "tsne", seed=3).coords
    np.testing.assert_array_equal(a, project(points, "tsne", seed=3).coords)
    assert (_nearest_centroid(a, labels) == labels).all()
    rng = np.random.default_rng(1)
    matrix = sp.random(30, 500, density=0.05, format="csr", random_state=rng, dtype=np.float32)
    assert project(matrix, "tsne").coords.shape == (30, 2)
    assert project(matrix, "pca").coords.shape == (30, 2)


def test_projection_errors_are_clear() -> None:
    points, _ = _clusters(n_per=2)
    with pytest.raises(InputError, match="unknown projection method 'mds'.*pca, tsne, umap"):
        project(points, "mds")
    with pytest.raises(InputError, match="no vectors to project"):
        project(np.zeros((0, 8), dtype=np.float32))
    with pytest.raises(InputError, match="tsne needs at least 5 points, got 4"):
        project(points[:4], "tsne")
    bad = points.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="vector 3 holds NaN"):
        project(bad)


# ---------------------------------------------------------------- neighbours
def test_dense_neighbours_equal_brute_force_with_and_without_faiss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    points = np.random.default_rng(2).normal(size=(400, 32)).astype(np.float32)
    expected = _brute_force(points, 7)
    found = nearest_neighbours(points, 7)
    assert found.dtype == np.int32 and found.shape == (400, 7)
    np.testing.assert_array_equal(found, expected)
    monkeypatch.setitem(sys.modules, "faiss", None)  # the numpy path
    np.testing.assert_array_equal(nearest_neighbours(points, 7), expected)


def test_approximate_neighbours_above_the_exact_limit() -> None:
    points = np.random.default_rng(3).normal(size=(2000, 16)).astype(np.float32)
    expected = _brute_force(points, 10)
    found = nearest_neighbours(points, 10, exact_limit=1000)
    assert found.shape == (2000, 10)
    assert not (found == np.arange(2000)[:, None]).any()  # never a point itself
    assert all(len(set(row)) == 10 for row in found)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, expected, strict=True)])
    assert recall > 0.95


def test_sparse_neighbours_equal_brute_force() -> None:
    rng = np.random.default_rng(4)
    matrix = sp.random(300, 400, density=0.03, format="csr", random_state=rng, dtype=np.float32)
    found = nearest_neighbours(matrix, 5)
    np.testing.assert_array_equal(found, _brute_force(matrix.toarray(), 5))


def test_neighbour_count_is_capped() -> None:
    points = np.eye(3, dtype=np.float32)
    assert nearest_neighbours(points, 10).shape == (3, 2)
    assert nearest_neighbours(points[:1], 10).shape == (1, 0)


# ---------------------------------------------------------------- PNG
def test_png_is_a_coloured_picture_with_a_legend(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    points, labels = _clusters()
    coords = project(points).coords
    names = np.array(["alpha", "beta", "gamma"])[labels]
    out = write_png(tmp_path / "sub" / "p.png", coords, list(names), title="three clusters")
    assert out.is_file() and 10_000 < out.stat().st_size < 1_000_000
    image = imread(out)[..., :3]
    assert image.shape[0] > 400 and image.shape[1] > 400
    non_white = (image < 0.95).any(axis=-1).mean()
    assert 0.005 < non_white < 0.6
    for hex_colour in PALETTE[:3]:  # each label's colour is on the picture
        rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
        assert (np.abs(image - rgb).max(axis=-1) < 0.04).sum() > 20, hex_colour
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["p.png"]


def test_labels_beyond_the_palette_share_other() -> None:
    values = [f"l{i % 30}" for i in range(300)] + [None]
    labels = encode_labels(values, len(values))
    assert len(labels.names) == len(PALETTE) and labels.names[-1] == OTHER
    assert labels.names[:19] == [f"l{i}" for i in range(19)] and labels.counts[-1] == 111
    assert labels.colours[-1] not in PALETTE and len(set(labels.colours[:-1])) == 19
    assert labels.codes.dtype == np.uint16 and labels.codes[300] == len(PALETTE) - 1


# ---------------------------------------------------------------- explorer page
def _page_data(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page)
    assert found is not None
    return json.loads(found.group(1))


def test_explorer_is_one_offline_file_with_the_data(tmp_path: Path) -> None:
    texts = ["plain text", "</script><script>alert(1)</script> & <b>bold</b>", "x" * 1000]
    coords = np.array([[0, 0], [1, 1], [2, 0]], dtype=np.float32)
    neighbours = np.array([[1, 2], [0, 2], [1, 0]])
    out = write_explorer(
        tmp_path / "e.html", coords, texts, ["a", "b", "a"], neighbours,
        ids=["d1", "d2", "d3"], title="<T>", label_column="kind",
    )  # fmt: skip
    page = out.read_text(encoding="utf-8")
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=|<link\b|https?://|@import", page)
    assert page.count("</script>") == 2  # the data and the script: no text closes either
    assert "<title>&lt;T&gt;</title>" in page
    data = _page_data(page)
    assert data["ids"] == ["d1", "d2", "d3"] and data["labelColumn"] == "kind"
    assert data["texts"][1].startswith("</script>") and len(data["texts"][2]) == 280
    import base64

    xy = np.frombuffer(base64.b64decode(data["xy"]), dtype="<f4").reshape(3, 2)
    np.testing.assert_array_equal(xy, coords)
    nb = np.frombuffer(base64.b64decode(data["neighbours"]), dtype="<i4").reshape(3, 2)
    np.testing.assert_array_equal(nb, neighbours)
    assert [p.name for p in tmp_path.iterdir()] == ["e.html"]  # no temporary file left


def test_explorer_write_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "e.html"
    target.write_text("old", encoding="utf-8")
    coords = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(InputError, match="neighbour indices"):
        write_explorer(target, coords, ["a", "b"], None, np.array([[5], [0]]))
    with pytest.raises(InputError, match="2 texts but points of shape"):
        write_explorer(target, coords[:1], ["a", "b"], None, np.array([[1], [0]]))
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["e.html"]


# ---------------------------------------------------------------- collection and CLI
@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plot")
    rows = ["id\ttopic\ttext"]
    for topic, texts in TOPICS.items():
        rows += [f"{topic[:2]}{i}\t{topic}\t{t}" for i, t in enumerate(texts)]
    (root / "docs.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "empty.tsv").write_text("id\ttopic\ttext\n", encoding="utf-8")
    return root


def _run(args: list[object], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        command(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def test_cli_plot_writes_png_and_explorer(workdir: Path) -> None:
    pytest.importorskip("matplotlib")
    args = ["plot", "docs.tsv", "-e", "glove-6b-50d", "--label-column", "topic"]
    result = _run(
        [*args, "--png", "out/p.png", "--html", "out/p.html", "--neighbours", 3, "--json"], workdir
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["points"] == 12 and out["encoder"] == "glove-6b-50d" and out["method"] == "pca"
    assert (workdir / "out" / "p.png").stat().st_size > 10_000
    data = _page_data((workdir / "out" / "p.html").read_text(encoding="utf-8"))
    assert data["n"] == 12 and data["k"] == 3 and data["ids"][0] == "an0"
    assert data["labels"]["names"] == ["animals", "finance", "space"]
    from embedcraft.catalog import load_encoder

    vectors = load_encoder("glove-6b-50d").encode([t for ts in TOPICS.values() for t in ts])
    nb = np.frombuffer(__import__("base64").b64decode(data["neighbours"]), dtype="<i4")
    np.testing.assert_array_equal(nb.reshape(12, 3), _brute_force(vectors, 3))


def test_cli_plot_errors_are_one_line(workdir: Path) -> None:
    cases = {
        "no column 'colour' to colour by; other columns: topic": [
            "plot", "docs.tsv", "-e", "glove-6b-50d", "--label-column", "colour", "--png", "x.png",
        ],
        "empty.tsv: no texts to plot": ["plot", "empty.tsv", "-e", "tfidf", "--png", "x.png"],
        "nothing to write": ["plot", "docs.tsv", "-e", "glove-6b-50d"],
        "tsne needs at least 5 points, got 3": [
            "plot", "docs.tsv", "-e", "tfidf", "--method", "tsne", "--limit", 3, "--html", "x.html",
        ],
        "either an INPUT file or --collection": ["plot", "--html", "x.html"],
    }  # fmt: skip
    for message, args in cases.items():
        result = _run(args, workdir)
        usage = message in ("nothing to write", "either an INPUT file or --collection")
        assert result.returncode == (2 if usage else 1), (args, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert message in lines[-1] and "Traceback" not in result.stderr, result.stderr
    assert not (workdir / "x.png").exists() and not (workdir / "x.html").exists()


def test_collection_vectors_and_metadata_are_plotted(workdir: Path) -> None:
    from embedcraft.catalog import load_encoder
    from embedcraft.store import Collection

    texts = [t for ts in TOPICS.values() for t in ts]
    topics = [topic for topic, ts in TOPICS.items() for _ in ts]
    folder = workdir / "col"
    with Collection(folder, encoders=["bm25", "glove-6b-50d"]) as col:
        col.add(texts, [f"d{i}" for i in range(12)], [{"topic": t} for t in topics])
    stored = read_collection(folder)
    assert stored.encoder == "glove-6b-50d" and stored.ids[0] == "d0"
    np.testing.assert_allclose(
        stored.vectors, load_encoder("glove-6b-50d").encode(texts), rtol=1e-6
    )
    sparse = read_collection(folder, "bm25", limit=5)
    assert sp.issparse(sparse.vectors) and sparse.vectors.shape[0] == 5
    no_such = "no encoder 'minilm-l6' in this collection; it has: bm25, glove-6b-50d"
    with pytest.raises(InputError, match=no_such):
        read_collection(folder, "minilm-l6")
    result = _run(
        ["plot", "--collection", "col", "--label-column", "topic", "--html", "c.html", "--json"],
        workdir,
    )
    assert result.returncode == 0, result.stderr
    data = _page_data((workdir / "c.html").read_text(encoding="utf-8"))
    assert data["labelColumn"] == "topic" and sorted(data["labels"]["names"]) == sorted(TOPICS)
    assert data["ids"] == [f"d{i}" for i in range(12)]


def test_projection_says_what_it_does_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    points, _ = _clusters(n_per=10, dim=64)
    quiet = project(points, "tsne", seed=1).coords
    assert capsys.readouterr().err == ""
    shown = project(points, "tsne", seed=1, progress=True).coords
    err = capsys.readouterr().err
    assert "t-SNE: projecting 30 points (first reduced to 50 dimensions)..." in err, err
    assert re.search(r"t-SNE: 30 points projected in \d+\.\d s", err), err
    np.testing.assert_array_equal(shown, quiet)


def test_cli_plot_progress_shows_umap_epochs_in_a_log_file(workdir: Path) -> None:
    """--progress reports the projection on stderr even when it is a file (UMAP: its epochs
    as a bar); --quiet says nothing but notes."""
    pytest.importorskip("umap")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    base = ["plot", "docs.tsv", "-e", "tfidf", "--html", "p.html", "--seed", 1]
    procs = {
        key: subprocess.Popen(
            command(args),
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key, args in {
            "umap": ["--progress", *base, "--method", "umap"],
            "quiet": [*base, "--method", "tsne", "-q"],
        }.items()
    }
    runs = {key: proc.communicate(timeout=300) for key, proc in procs.items()}
    for key, proc in procs.items():
        assert proc.returncode == 0, (key, runs[key][1])
    err = runs["umap"][1]
    assert "UMAP: projecting 12 points (first reduced to 50 dimensions)..." in err, err
    assert re.search(r"umap epochs: +\d+%\|", err) and "UMAP: 12 points projected in" in err, err
    quiet = runs["quiet"][1]
    assert "projecting" not in quiet and "%|" not in quiet, quiet
    assert all(line.startswith("note: ") for line in quiet.splitlines()), quiet
