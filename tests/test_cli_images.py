"""Images through the `embedcraft` command, run for real in subprocesses: encode a folder or a
table of image paths, index and search a collection of images, find near duplicates; bad files
are reported by path and left out, and a text/image mix-up is one clear error."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cli_runner import run_many
from components import import_component
from embedcraft import load_encoder
from pictures import gradient

Image = import_component("PIL.Image", "Pillow (pip install 'embedcraft[images]')")

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
TIMEOUT = 600  # efficientnet-lite0 is exported to ONNX on its first use in a test run


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """photos/: a.png, its shrunk JPEG copy sub/a_copy.jpg, two unrelated pictures, a text file
    named .jpg and an empty .png; table.csv lists four of them with labels."""
    root = tmp_path_factory.mktemp("cli_images")
    folder = root / "photos"
    (folder / "sub").mkdir(parents=True)
    gradient(0).save(folder / "a.png")
    gradient(0).resize((64, 48)).save(folder / "sub" / "a_copy.jpg", quality=70)
    gradient(1).save(folder / "b.png")
    gradient(2).save(folder / "c.png")
    (folder / "bad.jpg").write_text("this is not a JPEG")
    (folder / "empty.png").write_bytes(b"")
    (root / "table.csv").write_text(
        "id,path,label,year\n"
        "a,photos/a.png,gradient,2001\n"
        "copy,photos/sub/a_copy.jpg,gradient,2002\n"
        "b,photos/b.png,stripes,2003\n"
        "bad,photos/bad.jpg,none,2004\n"
    )
    (root / "texts.txt").write_text("a cat on a mat\nstock prices fell\n")
    return root


GOOD = ["a.png", "b.png", "c.png", "sub/a_copy.jpg"]


@pytest.fixture(scope="module")
def results(photos: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    return run_many(
        {
            "folder": ["encode", "-i", "photos", "-o", "v.parquet", "-e", "pixels", "--json"],
            "table": ["encode", "-i", "table.csv", "-o", "t.npz", "-e", "pixels"],
            "lite0": ["encode", "-i", "photos", "-o", "e.parquet", "-e", "efficientnet-lite0"],
            "text_enc": ["encode", "-i", "photos", "-o", "x.npy", "-e", "glove-6b-50d"],
            "image_enc": ["encode", "-i", "texts.txt", "-o", "x.npy", "-e", "pixels"],
            "dedup": ["dedup", "photos", "-e", "pixels", "--threshold", "0.95", "--json"],
            "dedup_text": ["dedup", "photos", "-e", "pixels", "--threshold", "0.95"],
        },
        photos,
        ENV,
        TIMEOUT,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("embedcraft: error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def _bad_reported(stderr: str, photos: Path, done: str) -> None:
    for name in ("bad.jpg", "empty.png"):
        assert f"note: could not read {(photos / 'photos' / name).resolve()}: " in stderr
    assert f"2 image(s) could not be read and were left out; {done}" in stderr


def test_encode_a_folder_writes_every_good_image_and_names_the_bad(
    results: dict[str, subprocess.CompletedProcess[str]], photos: Path
) -> None:
    result = results["folder"]
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["rows"], report["dim"], report["encoder"]) == (4, 832, "pixels")
    assert sorted(f["id"] for f in report["failed"]) == ["bad.jpg", "empty.png"]
    _bad_reported(result.stderr, photos, "the 4 others were written")
    table = pq.read_table(photos / "v.parquet").to_pydict()
    assert table["id"] == GOOD
    direct = load_encoder("pixels").encode([photos / "photos" / name for name in GOOD])
    np.testing.assert_allclose(np.array(table["vector"], dtype=np.float32), direct, atol=1e-6)


def test_encode_a_table_reads_paths_relative_to_it(
    results: dict[str, subprocess.CompletedProcess[str]], photos: Path
) -> None:
    result = results["table"]
    assert result.returncode == 0, result.stderr
    assert "wrote 3 x 832 vectors" in result.stdout
    assert f"could not read {(photos / 'photos' / 'bad.jpg').resolve()}" in result.stderr
    saved = np.load(photos / "t.npz")
    assert list(saved["ids"]) == ["a", "copy", "b"]


def test_efficientnet_encodes_a_folder_and_a_copy_stays_close(
    results: dict[str, subprocess.CompletedProcess[str]], photos: Path
) -> None:
    import_component("torch", "torch, for the one-time export (pip install 'embedcraft[images]')")
    result = results["lite0"]
    assert result.returncode == 0, result.stderr
    assert "wrote 4 x 1280 vectors" in result.stdout
    table = pq.read_table(photos / "e.parquet").to_pydict()
    vectors = dict(zip(table["id"], np.array(table["vector"], dtype=np.float32), strict=True))
    np.testing.assert_allclose(np.linalg.norm(list(vectors.values()), axis=1), 1.0, atol=1e-5)
    copy = float(vectors["a.png"] @ vectors["sub/a_copy.jpg"])
    others = [float(vectors["a.png"] @ vectors[o]) for o in ("b.png", "c.png")]
    assert copy > max(others) + 0.1, (copy, others)  # its copy is its nearest image


def test_text_and_image_mixups_are_one_clear_error(
    results: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    assert "photos is a folder of images, but encoder 'glove-6b-50d' reads text" in (
        _one_line_error(results["text_enc"])
    )
    assert "texts.txt is a text file; an image encoder reads a folder of images" in (
        _one_line_error(results["image_enc"])
    )


def test_dedup_groups_an_image_with_its_copy_only(
    results: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    report = json.loads(results["dedup"].stdout)
    assert [g["ids"] for g in report["groups"]] == [["a.png", "sub/a_copy.jpg"]]
    assert report["groups"][0]["similarities"][0] == 1.0
    assert 0.95 <= report["groups"][0]["similarities"][1] < 1.0
    assert len(report["failed"]) == 2
    printed = results["dedup_text"].stdout.splitlines()
    assert printed[0] == "group 1 (2 images):"
    assert [line.split()[-1] for line in printed[1:]] == ["a.png", "sub/a_copy.jpg"]


def _cli(photos: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return run_many({"one": list(args)}, photos, ENV, TIMEOUT)["one"]


def test_index_search_by_image_and_dedup_a_collection(photos: Path) -> None:
    made = _cli(photos, "index", "table.csv", "-c", "col", "-e", "pixels", "--json")
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    assert (report["indexed"], report["count"]) == (3, 3)
    assert [f["id"] for f in report["failed"]] == ["bad"]
    by_image = ["search", "-c", "col", "--image"]
    runs = run_many(
        {
            "image": [*by_image, "photos/sub/a_copy.jpg", "-k", "2", "--json"],
            "where": [*by_image, "photos/a.png", "-w", "label=stripes", "--json"],
            "text": ["search", "-c", "col", "a gradient"],
            "dedup": ["dedup", "-c", "col", "--threshold", "0.95", "--json"],
            "mixed": ["index", "photos", "-c", "col2", "-e", "pixels", "-e", "bm25"],
            "texts": ["index", "texts.txt", "-c", "tcol", "-e", "hashing"],
            "images_to_text": ["index", "photos", "-c", "never", "-e", "hashing"],
            "image_mode": [*by_image, "photos/a.png", "--mode", "sparse"],
            "ray": ["encode", "-i", "photos", "-o", "r.npy", "-e", "pixels", "--engine", "ray"],
        },
        photos,
        ENV,
        TIMEOUT,
    )  # fmt: skip
    hits = json.loads(runs["image"].stdout)
    assert [h["id"] for h in hits] == ["copy", "a"]
    assert hits[0]["text"] == str((photos / "photos" / "sub" / "a_copy.jpg").resolve())
    assert hits[1]["metadata"] == {"label": "gradient", "year": 2001}
    assert [h["id"] for h in json.loads(runs["where"].stdout)] == ["b"]
    assert "col is a collection of images: search it with --image FILE" in _one_line_error(
        runs["text"]
    )
    assert [g["ids"] for g in json.loads(runs["dedup"].stdout)["groups"]] == [["a", "copy"]]
    assert "must all read the same kind of input (pixels reads image, bm25 reads text)" in (
        _one_line_error(runs["mixed"])
    )
    assert runs["texts"].returncode == 0, runs["texts"].stderr
    assert "photos is a folder of images, but the collection's encoders read text" in (
        _one_line_error(runs["images_to_text"])
    )
    assert not (photos / "never").exists()  # a refused source creates no collection
    for key, said in (("image_mode", "--mode and --explain apply"), ("ray", "--engine ray")):
        assert runs[key].returncode == 2 and said in runs[key].stderr  # usage errors
    wrong = _cli(photos, "search", "-c", "tcol", "--image", "photos/a.png")
    assert "tcol is a collection of texts: --image searches collections of images" in (
        _one_line_error(wrong)
    )
