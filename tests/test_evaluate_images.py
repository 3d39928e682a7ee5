"""Image classification evaluation (k-NN, probe, precision@10), its CLI (`eval images`) and the
image task of `compare`; small images made here, and a floor on a slice of the staged flowers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")

from cli_runner import run_many
from embedcraft.compare import ImageClassificationTask, compare_encoders
from embedcraft.compare._tasks import StsTask
from embedcraft.encoders.image import PixelsEncoder
from embedcraft.errors import InputError
from embedcraft.evaluate import (
    LabelledImages,
    evaluate_image_classification,
    load_labelled_images,
)
from embedcraft.evaluate.images import knn_figures

FLOWERS = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "flowers5"
COLOURS = {"red": (200, 30, 30), "green": (30, 170, 40), "blue": (30, 40, 190)}


def _image(path: Path, colour: tuple[int, int, int], seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = np.array(colour, dtype=np.float32)
    pixels = base + rng.normal(0, 25, size=(24 + seed % 9, 28, 3))
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """class/image.png for three colour classes (12 each), a bad file, and a labels CSV."""
    root = tmp_path_factory.mktemp("labelled")
    rows = ["path,label,split"]
    for c, (name, colour) in enumerate(COLOURS.items()):
        (root / name).mkdir()
        for i in range(12):
            _image(root / name / f"{i:02d}.png", colour, seed=c * 100 + i)
            rows.append(f"{name}/{i:02d}.png,{name},{'test' if i % 4 == 0 else 'train'}")
    (root / "red" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (root / "loose.png").write_bytes((root / "red" / "00.png").read_bytes())  # no class: skipped
    (root / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_folder_layout_scores_and_bad_files(images: Path) -> None:
    data = load_labelled_images(images)
    assert len(data.ids) == 37 and "loose.png" not in data.ids and data.split is None
    assert set(data.labels) == set(COLOURS) and data.ids[0].startswith("blue/")
    result = evaluate_image_classification(PixelsEncoder(), data)
    assert result.images == 36 and result.classes == 3 and result.k == 10
    assert list(result.failed) == ["red/broken.jpg"] and "red/broken.jpg" in str(result.failed)
    assert result.knn_accuracy > 0.9 and result.probe_accuracy > 0.8
    assert result.precision_at_10 > 0.8
    assert result.split == "stratified 80/20" and result.train + result.test == 36
    shown = result.as_dict()
    assert shown["knn@10_accuracy"] == round(result.knn_accuracy, 4) and shown["failed"] == 1


def test_csv_layout_uses_its_split_and_relative_paths(images: Path, tmp_path: Path) -> None:
    data = load_labelled_images(images / "labels.csv")
    assert len(data.ids) == 36 and data.split is not None and data.paths[0].is_file()
    result = evaluate_image_classification(PixelsEncoder(), images / "labels.csv")
    assert result.split == "data" and (result.train, result.test) == (27, 9)
    other = tmp_path / "other.tsv"
    other.write_text(
        "file\tcategory\n"
        + "".join(f"{images / n / '01.png'}\t{n}\n{images / n / '02.png'}\t{n}\n" for n in COLOURS),
        encoding="utf-8",
    )
    guessed = load_labelled_images(other)  # columns guessed, absolute paths kept
    assert guessed.labels == [n for n in COLOURS for _ in range(2)]
    named = load_labelled_images(other, path_column="file", label_column="category")
    assert named.paths == guessed.paths


def test_head_takes_classes_evenly() -> None:
    data = LabelledImages(
        "x", [str(i) for i in range(9)], [Path(str(i)) for i in range(9)], list("aaaaaaabc")
    )
    assert sorted(data.head(3).labels) == ["a", "b", "c"]
    assert data.head(100) is data


def test_knn_figures_by_hand() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array(["a", "a", "b", "b"], dtype=object)
    accuracy, precision = knn_figures(vectors, labels, 1)
    assert accuracy == 1.0 and precision == pytest.approx(1 / 3)  # 10 asked, 3 others exist


def test_clear_errors(images: Path, tmp_path: Path) -> None:
    from embedcraft.catalog import load_encoder

    with pytest.raises(InputError, match="reads text, not images"):
        evaluate_image_classification(load_encoder("tfidf"), images)
    with pytest.raises(InputError, match="no such file or folder"):
        load_labelled_images(tmp_path / "missing")
    with pytest.raises(InputError, match="is one image"):
        load_labelled_images(images / "red" / "00.png")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes((images / "red" / "00.png").read_bytes())
    with pytest.raises(InputError, match="expected class folders"):
        load_labelled_images(flat)
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="which column holds the image path"):
        load_labelled_images(bad)
    with pytest.raises(InputError, match="no label column 'nope'"):
        load_labelled_images(images / "labels.csv", label_column="nope")
    with pytest.raises(InputError, match="k=40 needs 41"):
        evaluate_image_classification(PixelsEncoder(), images, k=40)


def test_compare_runs_image_tasks_on_image_encoders_only(images: Path) -> None:
    sts = images / "sts.tsv"
    sts.write_text(
        "sentence1\tsentence2\tscore\n" + "a cat sat\ta cat sits\t4.5\nthe sky\tsome tax\t0.5\n"
        "red car\ta red car\t4.8\nblue sea\tgreen tea\t1.0\n",
        encoding="utf-8",
    )
    tasks = [ImageClassificationTask(path=str(images)), StsTask(path=str(sts))]
    result = compare_encoders(["pixels", "tfidf"], tasks, isolate=False)
    image_title = tasks[0].title
    cell = result.cell("pixels", image_title)
    assert cell.scores["knn"] > 90 and {"logreg", "p@10", "images/s"} <= set(cell.scores)
    assert "1 unreadable images left out" in cell.note
    assert "tfidf reads texts; this task gives images" in result.cell("tfidf", image_title).skipped
    assert "pixels reads images" in result.cell("pixels", tasks[1].title).skipped
    assert "spearman" in result.cell("tfidf", tasks[1].title).scores


def test_cli_eval_images_and_compare_images(images: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = run_many(
        {
            "json": ["eval", "images", "labels.csv", "-e", "pixels", "--json"],
            "text": ["eval", "images", ".", "-e", "pixels", "-k", "5"],
            "text encoder": ["eval", "images", ".", "-e", "tfidf"],
            "compare": ["compare", "-e", "pixels", "-e", "tfidf", "--images", ".", "--in-process"],
        },
        images,
        env,
        timeout=300,
    )
    result = runs["json"]
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["images"] == 36 and out["split"] == "data" and out["knn@10_accuracy"] > 0.9
    result = runs["text"]
    assert result.returncode == 0, result.stderr
    assert "5-NN accuracy" in result.stdout and "left out red/broken.jpg" in result.stderr
    result = runs["text encoder"]
    assert result.returncode == 1 and "reads text, not images" in result.stderr
    result = runs["compare"]
    assert result.returncode == 0, result.stderr
    assert "knn" in result.stdout and "tfidf reads texts; this task gives images" in result.stdout


def test_efficientnet_beats_pixels_on_real_flowers() -> None:
    """A floor well below the bench's figures (10-NN 0.71 vs 0.55 on all 4,317 photos)."""
    if not (FLOWERS / "labels.csv").is_file():
        pytest.skip(f"the staged photos are not here ({FLOWERS})")
    pytest.importorskip("onnxruntime")
    from embedcraft.encoders.image import ImageEncoder
    from embedcraft.errors import MissingDependencyError

    data = load_labelled_images(FLOWERS / "labels.csv").head(200)
    try:
        cnn = evaluate_image_classification(ImageEncoder(threads=2), data)
    except MissingDependencyError as exc:
        pytest.skip(f"efficientnet-lite0 cannot be built here: {exc}")
    base = evaluate_image_classification(PixelsEncoder(), data)
    assert cnn.images == 200 and cnn.classes == 5
    assert cnn.knn_accuracy > 0.5 and cnn.knn_accuracy > base.knn_accuracy + 0.05
    assert cnn.precision_at_10 > base.precision_at_10 + 0.05
