"""Image encoders: efficientnet-lite0 on ONNX Runtime (checked against torch), model folders,
bad files reported per image, and the pixel baseline.

The ONNX export happens once per test run (tests/conftest.py gives each run its own cache).
Photos: images the tests make themselves, scikit-learn's two sample photos (shipped inside
scikit-learn), and a few files from ../shared/data/images when that folder exists.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import pickle
import shutil
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from components import import_component
from embedcraft import list_encoders, load_encoder
from embedcraft.encoders import image_models
from embedcraft.encoders.contract import EncoderKind, InputKind
from embedcraft.encoders.image import ImageEncoder, PixelsEncoder
from embedcraft.errors import EmbedcraftError, InputError, MissingDependencyError
from embedcraft.inputs import DEFAULT_MAX_PIXELS

Image = import_component("PIL.Image", "Pillow (pip install 'embedcraft[images]')")
torch = import_component(
    "torch", "torch, for the one-time export (pip install 'embedcraft[images]')"
)

SAMPLES = resources.files("sklearn.datasets") / "images"
CHINA, FLOWER = Path(str(SAMPLES / "china.jpg")), Path(str(SAMPLES / "flower.jpg"))


@pytest.fixture(scope="module")
def lite0() -> ImageEncoder:
    encoder = load_encoder("efficientnet-lite0")
    assert isinstance(encoder, ImageEncoder)
    return encoder


@pytest.fixture(scope="module")
def torch_lite0():
    return image_models.build_torch_model()


def _flowers(shared_data: Path, per_class: int) -> list[tuple[Path, str]]:
    """The first `per_class` photos of each flowers5 class (sorted by path): (path, label)."""
    root = shared_data / "images" / "flowers5"
    with open(root / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda row: row["path"])
    taken: dict[str, int] = {}
    chosen = []
    for row in rows:
        if taken.get(row["label"], 0) < per_class:
            taken[row["label"]] = taken.get(row["label"], 0) + 1
            chosen.append((root / row["path"], row["label"]))
    return chosen


def _bad_folder(folder: Path) -> dict[str, str]:
    """Three good photos and the four bad files of the issue; {file name: expected reason}."""
    folder.mkdir()
    shutil.copy(CHINA, folder / "a-china.jpg")
    shutil.copy(FLOWER, folder / "b-flower.jpg")
    Image.fromarray(np.full((60, 90, 3), (30, 120, 200), np.uint8)).save(folder / "c-blue.png")
    data = CHINA.read_bytes()
    (folder / "d-truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "e-empty.jpg").write_bytes(b"")
    (folder / "f-text.jpg").write_text("this is a text file with a .jpg name\n", "utf-8")
    Image.new("1", (12000, 12000)).save(folder / "g-huge.png")  # 144 Mpx, 18 kB on disk
    return {
        "d-truncated.jpg": "damaged image data",
        "e-empty.jpg": "empty file",
        "f-text.jpg": "not an image",
        "g-huge.png": "12000x12000 pixels",
    }


# ---------------------------------------------------------------------- the catalog
def test_the_catalog_names_the_image_encoders() -> None:
    entries = {e.name: e for e in list_encoders()}
    lite0, pixels = entries["efficientnet-lite0"], entries["pixels"]
    assert lite0.input_kind is InputKind.IMAGE and pixels.input_kind is InputKind.IMAGE
    assert (lite0.width, pixels.width) == ("1280", "832")
    assert lite0.kind is EncoderKind.CONTEXTUAL and not lite0.needs_fit
    encoder = load_encoder("pixels")
    assert isinstance(encoder, PixelsEncoder) and encoder.name == "pixels"
    assert encoder.input_kind is InputKind.IMAGE and encoder.dim == 832
    built = load_encoder("efficientnet-lite0")
    assert isinstance(built, ImageEncoder) and built.name == "efficientnet-lite0"
    assert (built.kind, built.metric, built.token_unit) == (
        EncoderKind.CONTEXTUAL,
        "cosine",
        "images",
    )
    assert built.is_fitted() and not built.needs_fit and built.dim == 1280


# ---------------------------------------------------------------------- the model
def test_sample_photos_get_sensible_imagenet_labels(lite0: ImageEncoder) -> None:
    china, flower = lite0.classify([CHINA, FLOWER], k=5)
    print("\nchina.jpg:", china, "\nflower.jpg:", flower)
    assert china[0][0] in {"palace", "monastery", "bell tower", "church", "castle"}
    assert {"palace", "monastery"} <= {label for label, _ in china}
    assert flower[0][0] == "daisy"
    for top in (china, flower):
        probs = [p for _, p in top]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6


def _onnx_against_torch(lite0: ImageEncoder, torch_lite0, photos: list) -> tuple[float, int]:
    """(lowest cosine, top-1 agreements) of the ONNX encoder and the torch model on `photos`."""
    pixels = torch.from_numpy(lite0.preprocess(photos))
    with torch.no_grad():
        embedding, logits = (t.numpy() for t in torch_lite0(pixels))
    reference = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    vectors = lite0.encode(photos)
    cosines = (vectors.astype(np.float64) * reference).sum(axis=1)
    labels = image_models.imagenet_labels()
    ours = [top[0][0] for top in lite0.classify(photos, k=1)]
    agree = sum(a == labels[b] for a, b in zip(ours, logits.argmax(axis=1), strict=True))
    return float(cosines.min()), agree


def test_onnx_matches_torch_on_the_sample_photos(lite0: ImageEncoder, torch_lite0) -> None:
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in (CHINA, FLOWER)]
    photos = [CHINA, FLOWER, *arrays, np.ascontiguousarray(arrays[0][:, ::-1])]
    lowest, agree = _onnx_against_torch(lite0, torch_lite0, photos)
    print(f"\nsample photos: lowest cosine {lowest:.6f}, top-1 agreement {agree}/{len(photos)}")
    assert lowest >= 0.9999 and agree == len(photos)


@pytest.mark.shared_data
def test_onnx_matches_torch_on_real_flower_photos(
    lite0: ImageEncoder, torch_lite0, shared_data: Path
) -> None:
    photos = [path for path, _ in _flowers(shared_data, per_class=2)]
    lowest, agree = _onnx_against_torch(lite0, torch_lite0, photos)
    print(f"\nflowers5: lowest cosine {lowest:.6f}, top-1 agreement {agree}/{len(photos)}")
    assert lowest >= 0.9999 and agree == len(photos)


@pytest.mark.shared_data
def test_efficientnet_beats_the_pixel_baseline_on_real_photos(
    lite0: ImageEncoder, shared_data: Path
) -> None:
    chosen = _flowers(shared_data, per_class=30)
    paths, labels = [p for p, _ in chosen], np.array([label for _, label in chosen])

    def one_nn_accuracy(vectors: np.ndarray) -> float:  # leave-one-out nearest neighbour
        similarity = vectors @ vectors.T
        np.fill_diagonal(similarity, -np.inf)
        return float((labels[similarity.argmax(axis=1)] == labels).mean())

    model = one_nn_accuracy(lite0.encode(paths))
    baseline = one_nn_accuracy(PixelsEncoder().encode(paths))
    print(f"\n1-NN accuracy, 150 flowers5 photos: lite0 {model:.2f}, pixels {baseline:.2f}")
    # measured: 0.63 against 0.43 (128 px squashed photos; 10-NN on all 4,317: 0.71 against 0.52)
    assert model >= 0.55 and model >= baseline + 0.12


def test_vectors_are_unit_length_and_inputs_of_any_kind_agree(
    lite0: ImageEncoder, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    pixels = np.asarray(
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((320, 240))
    )
    Image.fromarray(pixels).save(tmp_path / "p.png")
    data = (tmp_path / "p.png").read_bytes()
    sources = [tmp_path / "p.png", str(tmp_path / "p.png"), Image.fromarray(pixels), pixels, data]
    vectors = lite0.encode(sources)
    assert vectors.shape == (5, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, np.repeat(vectors[:1], 5, axis=0), atol=1e-6)
    assert lite0.encode(pixels).shape == (1280,)  # one image, one vector
    assert lite0.count_tokens(sources) == [1] * 5
    assert lite0.encode([]).shape == (0, 1280)


def test_exif_rotation_and_pixel_modes_reach_the_model(lite0: ImageEncoder, tmp_path: Path) -> None:
    upright = np.asarray(Image.open(FLOWER).convert("RGB"))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter counter-clockwise; shown turned back
    Image.fromarray(np.rot90(upright)).save(tmp_path / "turned.png", exif=exif)
    vectors = lite0.encode([upright, tmp_path / "turned.png", np.rot90(upright).copy()])
    assert float(vectors[0] @ vectors[1]) > 0.99999  # the tag was applied: the same picture
    assert float(vectors[0] @ vectors[2]) < 0.95  # ignoring it would give another vector

    gray = upright.mean(axis=2).astype(np.uint8)
    rgba = np.dstack([upright, np.full(upright.shape[:2], 255, np.uint8)])
    palette = Image.fromarray(upright).convert("P")
    encoded = lite0.encode_with_report([gray, np.dstack([gray] * 3), rgba, palette, upright])
    assert encoded.report.failed == {} and encoded.report.inputs == 5
    v = encoded.vectors
    assert float(v[0] @ v[1]) > 0.99999  # grayscale is read as gray RGB
    assert float(v[2] @ v[4]) > 0.99999  # an opaque alpha channel changes nothing
    assert float(v[3] @ v[4]) > 0.9  # 256 colours: the same flower


def test_a_bad_file_gets_a_zero_vector_and_a_reason_while_the_rest_encode(
    lite0: ImageEncoder, tmp_path: Path
) -> None:
    expected = _bad_folder(tmp_path / "photos")
    paths = sorted((tmp_path / "photos").iterdir())
    encoded = lite0.encode_with_report(paths, batch_size=3)
    failed = encoded.report.failed
    assert sorted(Path(paths[i]).name for i in failed) == sorted(expected)
    for i, why in failed.items():
        assert why.startswith(f"{paths[i]}: ") and expected[paths[i].name] in why
    good = [i for i in range(len(paths)) if i not in failed]
    assert len(good) == 3 and encoded.report.inputs == len(paths)
    np.testing.assert_allclose(np.linalg.norm(encoded.vectors[good], axis=1), 1.0, atol=1e-5)
    assert not encoded.vectors[sorted(failed)].any()
    alone = lite0.encode([paths[i] for i in good])
    np.testing.assert_allclose(encoded.vectors[good], alone, atol=1e-5)
    # in-memory images are named by their position in the call
    report = lite0.encode_with_report([FLOWER, b"not an image"], batch_size=1).report
    assert report.failed == {1: "image 1: not an image, or a format Pillow cannot read"}
    assert lite0.classify([FLOWER, b""], k=2)[1] == []


def test_vectors_and_reports_do_not_depend_on_batch_size(
    lite0: ImageEncoder, tmp_path: Path
) -> None:
    _bad_folder(tmp_path / "photos")
    rng = np.random.default_rng(2)
    photos: list = sorted((tmp_path / "photos").iterdir())
    photos += [rng.integers(0, 256, (50 + 10 * i, 70, 3), dtype=np.uint8) for i in range(4)]
    whole = lite0.encode_with_report(photos, batch_size=64)
    for size in (1, 3, 5):
        part = lite0.encode_with_report(photos, batch_size=size)
        np.testing.assert_allclose(part.vectors, whole.vectors, atol=1e-5)
        assert part.report == whole.report


def test_classify_checks_k(lite0: ImageEncoder) -> None:
    with pytest.raises(InputError, match="k must be between 1 and 1000"):
        lite0.classify(FLOWER, k=0)
    top = lite0.classify(FLOWER, k=1000)[0]
    assert len(top) == 1000 and sum(p for _, p in top) == pytest.approx(1.0, abs=1e-4)


def test_save_load_and_pickle_keep_the_parameters(lite0: ImageEncoder, tmp_path: Path) -> None:
    spec, arrays = lite0.to_spec()
    assert spec["params"] == {
        "model": "efficientnet-lite0",
        "threads": None,
        "max_pixels": DEFAULT_MAX_PIXELS,
        "name": "efficientnet-lite0",
    }
    assert arrays == {} and not lite0.has_learned_state()
    tuned = ImageEncoder(threads=1, max_pixels=1_000_000, name="photos")
    tuned.save(tmp_path / "saved")
    loaded = load_encoder(tmp_path / "saved")
    assert isinstance(loaded, ImageEncoder)
    assert (loaded.name, loaded.threads, loaded.max_pixels) == ("photos", 1, 1_000_000)
    np.testing.assert_allclose(loaded.encode(FLOWER), lite0.encode(FLOWER), atol=1e-5)
    lite0.encode(FLOWER)  # a loaded session is dropped when pickling (Ray ships encoders)
    copy = pickle.loads(pickle.dumps(lite0))
    np.testing.assert_allclose(copy.encode(FLOWER), lite0.encode(FLOWER), atol=1e-6)


# ---------------------------------------------------------------------- model folders
def _model_folder(lite0: ImageEncoder, folder: Path, **config: object) -> Path:
    folder.mkdir()
    shutil.copy(lite0.spec.onnx, folder / "model.onnx")
    settings = {"input_size": [224, 224], "mean": [127, 127, 127], "std": 128.0, **config}
    (folder / image_models.IMAGE_MODEL_CONFIG).write_text(json.dumps(settings), "utf-8")
    return folder


def test_a_model_folder_loads_as_an_image_encoder(lite0: ImageEncoder, tmp_path: Path) -> None:
    names = "\n".join(image_models.imagenet_labels())
    folder = _model_folder(
        lite0, tmp_path / "my-cnn", output="embedding", logits="logits", labels="labels.txt"
    )
    (folder / "labels.txt").write_text(names + "\n", "utf-8")
    encoder = load_encoder(folder)
    assert isinstance(encoder, ImageEncoder) and encoder.name == "my-cnn"
    assert encoder.dim == 1280 and encoder.input_kind is InputKind.IMAGE
    np.testing.assert_allclose(
        encoder.encode([CHINA, FLOWER]), lite0.encode([CHINA, FLOWER]), atol=1e-5
    )
    assert encoder.classify(FLOWER, k=1)[0][0][0] == "daisy"
    plain = load_encoder(_model_folder(lite0, tmp_path / "plain", output="embedding"))
    assert plain.encode(FLOWER).shape == (1280,)
    with pytest.raises(InputError, match="has no class labels"):
        plain.classify(FLOWER)


def test_a_model_folder_with_bad_settings_says_what_is_wrong(
    lite0: ImageEncoder, tmp_path: Path
) -> None:
    wrong_output = _model_folder(lite0, tmp_path / "a", output="features")
    with pytest.raises(InputError, match="no output named 'features'"):
        load_encoder(wrong_output).encode(FLOWER)
    missing = _model_folder(lite0, tmp_path / "b")
    with pytest.raises(InputError, match=r"missing settings \['output'\]"):
        load_encoder(missing).encode(FLOWER)
    unknown = _model_folder(lite0, tmp_path / "c", output="embedding", resize="area")
    with pytest.raises(InputError, match=r"unknown settings \['resize'\]"):
        load_encoder(unknown).encode(FLOWER)
    wrong_size = _model_folder(lite0, tmp_path / "d", output="embedding", input_size=[256, 256])
    with pytest.raises(InputError, match=r"reads 224x224 images, but its settings say"):
        load_encoder(wrong_size).encode(FLOWER)
    no_logits = _model_folder(lite0, tmp_path / "e", output="embedding", labels=["a", "b"])
    with pytest.raises(InputError, match="labels need 'logits'"):
        load_encoder(no_logits).encode(FLOWER)


# ---------------------------------------------------------------------- the export
def test_the_export_is_cached_and_a_missing_package_is_named(
    lite0: ImageEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = image_models.efficientnet_lite0_onnx()
    stamp = first.stat().st_mtime_ns
    assert image_models.efficientnet_lite0_onnx() == first and first.stat().st_mtime_ns == stamp
    manifest = json.loads(first.with_suffix(".json").read_text("utf-8"))
    assert manifest["export"]["max_abs_diff"] < 1e-3
    print(f"\nexport: {manifest['export']['total_s']:.1f} s, {manifest['bytes'] / 1e6:.1f} MB")

    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(
        MissingDependencyError, match=r"'torch'.*pip install 'embedcraft\[images\]'"
    ):
        ImageEncoder().encode(FLOWER)  # a clear error, not a zero vector per image
    monkeypatch.setattr(image_models, "_ARCH_PACKAGE", "no-such-efficientnet-package")
    with pytest.raises(
        MissingDependencyError, match=r"no-such-efficientnet-package.*embedcraft\[images\]"
    ):
        image_models.efficientnet_lite0_onnx()


@pytest.mark.slow
def test_a_failed_export_is_one_clear_error_and_the_next_use_exports_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(target: Path) -> dict:
        Path(target).write_bytes(b"half a model")  # as if the exporter died midway
        raise RuntimeError("exporter crashed")

    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(image_models, "export_efficientnet_lite0", broken)
    with pytest.raises(EmbedcraftError, match=r"one-time ONNX export .* \(RuntimeError: exporter"):
        ImageEncoder().encode(FLOWER)
    monkeypatch.undo()
    # the next use does not trust what the failed one left: it exports again, for real
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path / "cache"))
    assert ImageEncoder().classify(FLOWER, k=1)[0][0][0] == "daisy"


@pytest.mark.slow
def test_a_damaged_cached_export_is_rebuilt_quietly(
    lite0: ImageEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    good = image_models.efficientnet_lite0_onnx()
    cache = tmp_path / "cache" / "models" / "efficientnet-lite0"
    cache.mkdir(parents=True)
    shutil.copy(good, cache / good.name)
    shutil.copy(good.with_suffix(".json"), cache / good.with_suffix(".json").name)
    with open(cache / good.name, "r+b") as fh:
        fh.truncate(good.stat().st_size // 2)
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path / "cache"))
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="embedcraft"):
        rebuilt = image_models.efficientnet_lite0_onnx()
    assert rebuilt == cache / good.name and rebuilt.stat().st_size == good.stat().st_size
    assert "is damaged; exporting it again" in caplog.text
    assert "exported to ONNX in" in caplog.text
    assert capfd.readouterr() == ("", "")  # the export prints nothing of its own
    assert [p.name for p in cache.iterdir() if p.name.startswith(".lite0")] == []


# ---------------------------------------------------------------------- the pixel baseline
def test_the_pixel_baseline(tmp_path: Path) -> None:
    encoder = PixelsEncoder()
    red = np.full((40, 60, 3), (220, 30, 30), np.uint8)
    redder = np.full((50, 50, 3), (240, 20, 20), np.uint8)
    blue = np.full((40, 60, 3), (30, 30, 220), np.uint8)
    encoded = encoder.encode_with_report([red, redder, blue, b"junk", FLOWER])
    v = encoded.vectors
    assert v.shape == (5, 832) and encoded.report.failed == {
        3: "image 3: not an image, or a format Pillow cannot read"
    }
    np.testing.assert_allclose(np.linalg.norm(v[[0, 1, 2, 4]], axis=1), 1.0, atol=1e-5)
    assert not v[3].any()
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.3
    encoder.save(tmp_path / "pixels")
    loaded = load_encoder(tmp_path / "pixels")
    assert isinstance(loaded, PixelsEncoder)
    np.testing.assert_array_equal(loaded.encode([red, FLOWER]), v[[0, 4]])
    small = PixelsEncoder(size=8)
    assert small.dim == 8 * 8 * 3 + 64 and small.encode(FLOWER).shape == (256,)
    with pytest.raises(InputError, match="size must be a positive integer"):
        PixelsEncoder(size=0).encode(red)
    buffer = io.BytesIO()
    Image.fromarray(red).save(buffer, "PNG")
    np.testing.assert_allclose(encoder.encode(buffer.getvalue()), v[0], atol=1e-6)
