"""Image inputs (embedcraft.inputs.images): checks, decoding, size limits, folder listing.

Every image here is made by the test itself with Pillow; no model is needed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from components import import_component
from embedcraft.errors import InputError
from embedcraft.inputs import (
    IMAGE_SUFFIXES,
    as_images,
    fit_to_size,
    list_image_files,
    load_image,
)

Image = import_component("PIL.Image", "Pillow (pip install 'embedcraft[images]')")


def _halves(width: int = 40, height: int = 20) -> np.ndarray:
    """Left half red, right half blue."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2 :] = (0, 0, 255)
    return pixels


def _rgb(image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image)


# ---------------------------------------------------------------------- checking inputs
def test_single_images_become_a_list_of_one(tmp_path: Path) -> None:
    array = _halves()
    pil = Image.fromarray(array)
    for single in ("photo.jpg", tmp_path / "photo.jpg", pil, array, b"\x89PNG"):
        items = as_images(single)
        assert len(items) == 1 and items[0] is single
    assert as_images(bytearray(b"ab")) == [b"ab"]
    batch = np.stack([array, array])
    assert len(as_images(batch)) == 2  # (N, H, W, 3): N images
    mixed = as_images(["a.png", tmp_path / "b.png", pil, array[:, :, 0], b"x"])
    assert len(mixed) == 5


def test_bad_inputs_name_the_item() -> None:
    with pytest.raises(TypeError, match="got None"):
        as_images(None)
    with pytest.raises(TypeError, match=r"item 1 is NoneType, not an image"):
        as_images(["a.jpg", None])
    with pytest.raises(TypeError, match=r"item 0 is int"):
        as_images([3])
    with pytest.raises(TypeError, match="got int"):
        as_images(3)
    with pytest.raises(TypeError, match=r"item 1 is a float64 array: image arrays must be uint8"):
        as_images(["a.jpg", np.zeros((4, 4, 3))])
    with pytest.raises(InputError, match=r"item 0 is an array of shape \(4, 4, 2\)"):
        as_images([np.zeros((4, 4, 2), np.uint8)])
    with pytest.raises(TypeError, match="4-D image batch must be uint8"):
        as_images(np.zeros((2, 4, 4, 3), np.float32))


# ---------------------------------------------------------------------- decoding
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_exif_orientation_is_applied(tmp_path: Path, suffix: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show the stored pixels turned 90° clockwise
    path = tmp_path / f"turned{suffix}"
    Image.fromarray(_halves()).save(path, exif=exif, quality=95)
    pixels = _rgb(load_image(path))
    assert pixels.shape == (40, 20, 3)  # upright: taller than wide
    assert np.abs(pixels[2, 10].astype(int) - (255, 0, 0)).max() <= 4  # the left half is on top
    assert np.abs(pixels[-3, 10].astype(int) - (0, 0, 255)).max() <= 4
    # a PIL image opened by the caller is turned the same way, and left as it was
    with Image.open(path) as opened:
        np.testing.assert_array_equal(_rgb(load_image(opened)), pixels)
        assert opened.size == (40, 20)


def test_every_pixel_mode_becomes_rgb(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red stays red; transparent pixels become white
    got = _rgb(load_image(Image.fromarray(rgba, "RGBA")))
    assert got[0, 0].tolist() == [255, 0, 0] and got[1, 1].tolist() == [255, 255, 255]

    palette = Image.new("P", (2, 1), 0)
    palette.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    palette.putpixel((0, 0), 1)
    palette.save(tmp_path / "p.png", transparency=0)
    assert _rgb(load_image(tmp_path / "p.png")).tolist() == [[[0, 200, 0], [255, 255, 255]]]

    gray = np.array([[0, 100, 255]], np.uint8)
    assert _rgb(load_image(gray))[0, 1].tolist() == [100, 100, 100]

    Image.fromarray(np.array([[0, 32768, 65535]], np.uint16)).save(tmp_path / "g16.png")
    assert _rgb(load_image(tmp_path / "g16.png"))[0, :, 0].tolist() == [0, 128, 255]

    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    red = _rgb(load_image(tmp_path / "cmyk.jpg"))[0, 0].astype(int)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15


def test_the_same_picture_reads_the_same_from_every_kind_of_input(tmp_path: Path) -> None:
    pixels = _halves()
    Image.fromarray(pixels).save(tmp_path / "h.png")
    data = (tmp_path / "h.png").read_bytes()
    for source in (tmp_path / "h.png", str(tmp_path / "h.png"), data, pixels):
        np.testing.assert_array_equal(_rgb(load_image(source)), pixels)


def test_too_many_pixels_are_refused_from_the_header(tmp_path: Path) -> None:
    Image.new("RGB", (2000, 1500), (9, 9, 9)).save(tmp_path / "big.png")
    cut = tmp_path / "cut.png"  # header intact, pixel data cut short
    cut.write_bytes((tmp_path / "big.png").read_bytes()[:200])
    with pytest.raises(InputError, match=r"cut\.png: damaged image data"):
        load_image(cut)  # decoding it is what fails...
    with pytest.raises(InputError, match=r"cut\.png: 2000x1500 pixels .* over the limit"):
        load_image(cut, max_pixels=1_000_000)  # ...so this refusal came before decoding
    Image.new("1", (12000, 12000)).save(tmp_path / "huge.png")  # 144 Mpx, 18 kB on disk
    with pytest.raises(InputError, match=r"huge\.png: 12000x12000 pixels \(144 megapixels\)"):
        load_image(tmp_path / "huge.png")


def test_big_jpegs_are_decoded_at_a_reduced_scale(tmp_path: Path) -> None:
    Image.new("RGB", (4000, 3000), (10, 200, 30)).save(tmp_path / "big.jpg")
    assert load_image(tmp_path / "big.jpg", min_side=256).size == (500, 375)  # 1/8, >= 256
    assert load_image(tmp_path / "big.jpg", min_side=1000).size == (2000, 1500)
    # the limit counts the pixels actually decoded
    small = load_image(tmp_path / "big.jpg", min_side=256, max_pixels=1_000_000)
    assert small.size == (500, 375)
    with pytest.raises(InputError, match="over the limit"):
        load_image(tmp_path / "big.jpg", max_pixels=1_000_000)


def test_unreadable_files_raise_input_errors_naming_them(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 10, 10)).save(buffer, "JPEG")
    (tmp_path / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a picture\n", "utf-8")
    cases = {
        "truncated.jpg": "damaged image data",
        "empty.jpg": r"empty file \(0 bytes\)",
        "text.jpg": "not an image",
        "missing.jpg": "no such file",
    }
    for name, why in cases.items():
        with pytest.raises(InputError, match=rf"{tmp_path / name}: {why}"):
            load_image(tmp_path / name)
    with pytest.raises(InputError, match="is a folder"):
        load_image(tmp_path)
    with pytest.raises(InputError, match=r"^image: empty data"):
        load_image(b"")
    with pytest.raises(InputError, match=r"^photo 3: not an image"):
        load_image(b"GIF8 but not really", label="photo 3")


# ---------------------------------------------------------------------- geometry
def test_fit_to_size_keeps_the_centre() -> None:
    pixels = np.zeros((200, 400, 3), np.uint8)
    pixels[:, :100] = (255, 0, 0)
    pixels[:, 100:300] = (0, 255, 0)
    pixels[:, 300:] = (0, 0, 255)
    square = np.asarray(fit_to_size(Image.fromarray(pixels), (50, 50)))
    assert square.shape == (50, 50, 3)  # only the middle (edges blend, as a resize would)
    assert (square[:, 2:-2] == (0, 255, 0)).all()
    wide = np.asarray(fit_to_size(Image.fromarray(pixels), (20, 40)))
    assert wide.shape == (20, 40, 3) and wide[10, 0, 0] > 200 and wide[10, -1, 2] > 200
    with pytest.raises(InputError, match="crop_fraction"):
        fit_to_size(Image.fromarray(pixels), (10, 10), 0)


def test_the_crop_is_resize_to_256_then_central_224() -> None:
    rng = np.random.default_rng(0)
    smooth = Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).resize(
        (768, 512), Image.Resampling.BICUBIC
    )  # 768x512: the shorter side to 256 is exactly 384x256, its centre exactly (80, 16)
    ours = np.asarray(fit_to_size(smooth, (224, 224), 224 / 256), dtype=np.float64)
    resized = smooth.resize((384, 256), Image.Resampling.BICUBIC)
    usual = np.asarray(resized.crop((80, 16, 304, 240)), dtype=np.float64)
    assert np.abs(ours - usual).mean() < 1.0  # the same view, resampled once instead of twice


# ---------------------------------------------------------------------- folders
def test_list_image_files_is_recursive_sorted_and_skips_the_rest(tmp_path: Path) -> None:
    for name in ("b/2.PNG", "b/1.jpg", "a.jpeg", "c/d/e.webp", "notes.txt", ".hidden.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.jpg").write_bytes(b"x")
    found = list_image_files(tmp_path)
    assert [i for i, _ in found] == ["a.jpeg", "b/1.jpg", "b/2.PNG", "c/d/e.webp"]
    assert all(path == tmp_path / i for i, path in found)
    assert ".jpg" in IMAGE_SUFFIXES and ".txt" not in IMAGE_SUFFIXES
    with pytest.raises(InputError, match="is not a folder"):
        list_image_files(tmp_path / "a.jpeg")
