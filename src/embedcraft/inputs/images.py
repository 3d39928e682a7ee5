"""Images as inputs: checking what a caller passes, decoding files safely, finding image files.

Image encoders read paths, in-memory images and pixel arrays through this module, so every
family decodes the same way:

- `as_images` checks a call's inputs (a single image or a list: str/PathLike paths,
  `PIL.Image.Image`s, uint8 numpy arrays (H, W), (H, W, 3) or (H, W, 4), raw encoded bytes,
  mixed) without decoding anything; a wrong type raises TypeError naming the item's index.
- `load_image` turns one input into an RGB `PIL.Image`: EXIF orientation applied, every pixel
  mode (grayscale, 16-bit, palette, RGBA, CMYK...) brought to 8-bit RGB, transparency laid on
  white. A file's pixel count is read from its header and refused over `max_pixels` *before*
  its pixels are decoded, and a big JPEG is decoded at a reduced scale (libjpeg's DCT scaling,
  "draft" mode) when the caller needs fewer pixels: so a folder of huge photos never needs
  more memory than one decoded image per worker. Anything that cannot be read raises
  InputError naming the file.
- `fit_to_size` is the geometric preprocessing image models share: a centred crop of the
  input's aspect, resized to the model's input size.
- `list_image_files` lists a folder's images, recursively, with ids = relative paths.

Pillow is imported on first use, so `embedcraft.inputs` imports without the images extra.
"""

from __future__ import annotations

import io
import math
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from ..errors import InputError, missing_dependency

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageInput",
    "as_images",
    "decode_side",
    "fit_to_size",
    "image_label",
    "is_image_file",
    "list_image_files",
    "load_image",
]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
"""File name endings (lower case) that folder listings treat as images."""

DEFAULT_MAX_PIXELS = 40_000_000
"""Pixels an image may have once opened (a JPEG counts at its reduced decode scale): 40
megapixels, about 120 MB as 8-bit RGB. Larger files are refused before decoding."""

ImageInput: TypeAlias = "str | os.PathLike[str] | Image.Image | np.ndarray | bytes"
"""One image as callers pass it: a file path, a PIL image, a uint8 array, or encoded bytes."""

_WHITE = (255, 255, 255, 255)
_ORIENTATION = 0x0112
"""The EXIF tag saying how the camera was turned (1: upright)."""
_open_lock = threading.Lock()
"""Serializes header reads, whose warnings filter (`catch_warnings`) is process-wide state."""


def _pil() -> Any:
    """The PIL.Image module, or MissingDependencyError naming the images extra."""
    try:
        from PIL import Image
    except ImportError:
        raise missing_dependency("pillow", "images", "reading images") from None
    return Image


def _is_pil_image(item: object) -> bool:
    """True for a PIL image; never imports Pillow (a caller holding one has it imported)."""
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(item, module.Image)


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path`'s name ends in an image suffix (case-insensitive); its content is not read."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _check_array(item: np.ndarray, index: int) -> None:
    if item.dtype != np.uint8:
        raise TypeError(
            f"item {index} is a {item.dtype} array: image arrays must be uint8 (0-255); "
            "convert with np.clip(a, 0, 255).astype(np.uint8)"
        )
    if item.ndim == 2 or (item.ndim == 3 and item.shape[2] in (3, 4)):
        return
    raise InputError(
        f"item {index} is an array of shape {item.shape}: an image array is (H, W), "
        "(H, W, 3) or (H, W, 4)"
    )


def as_images(inputs: Any) -> list[ImageInput]:
    """Check and return the inputs as a list of images; a single image becomes a list of one.

    Accepted: str or PathLike paths, PIL images, uint8 numpy arrays (H, W) grayscale,
    (H, W, 3) RGB or (H, W, 4) RGBA, an (N, H, W, 3) uint8 array (N images), bytes holding an
    encoded image file, or a list mixing them. Nothing is opened here: a missing or damaged
    file is found when the image is decoded. None, or any other type, raises TypeError naming
    the index of the bad item.
    """
    if inputs is None:
        raise TypeError("expected an image or a list of images, got None")
    if isinstance(inputs, str | bytes | bytearray | os.PathLike) or _is_pil_image(inputs):
        return [bytes(inputs) if isinstance(inputs, bytearray) else inputs]
    if isinstance(inputs, np.ndarray):
        if inputs.ndim == 4:
            if inputs.dtype != np.uint8 or inputs.shape[3] not in (3, 4):
                raise TypeError(
                    f"a 4-D image batch must be uint8 (N, H, W, 3), got {inputs.dtype} "
                    f"{inputs.shape}"
                )
            return list(inputs)
        _check_array(inputs, 0)
        return [inputs]
    try:
        items = list(inputs)
    except TypeError:
        raise TypeError(
            f"expected an image (a path, a PIL image, a uint8 array or bytes) or a list of "
            f"them, got {type(inputs).__name__}"
        ) from None
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            _check_array(item, i)
        elif isinstance(item, bytearray):
            items[i] = bytes(item)
        elif not (isinstance(item, str | bytes | os.PathLike) or _is_pil_image(item)):
            shown = repr(item)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise TypeError(
                f"item {i} is {type(item).__name__}, not an image (a path, a PIL image, a "
                f"uint8 array or bytes): {shown}"
            )
    return items


def image_label(item: ImageInput, index: int) -> str:
    """How messages name an input: its path, or "image <index>" for in-memory images."""
    if isinstance(item, str | os.PathLike):
        return os.fspath(item)
    return f"image {index}"


def load_image(
    source: ImageInput,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
    label: str | None = None,
) -> Image.Image:
    """One image as an 8-bit RGB PIL image, upright (EXIF orientation applied).

    `min_side`: the smallest width and height the caller needs; a JPEG at least twice as big
    is decoded at 1/2, 1/4 or 1/8 scale (never below `min_side`), which is much faster and
    smaller. A file or bytes whose pixel count (at that scale) exceeds `max_pixels` is refused
    from its header alone. Grayscale, palette, CMYK and 16-bit images become RGB; transparent
    pixels are laid on white. Raises InputError naming `label` (default: the path, or "image")
    for a missing, empty, damaged, unsupported or too large image.
    """
    pil = _pil()
    where = label or (os.fspath(source) if isinstance(source, str | os.PathLike) else "image")
    try:
        image: Image.Image = _decode(pil, source, max_pixels, min_side)
    except _Unreadable as exc:
        raise InputError(f"{where}: {exc}") from None
    return image


class _Unreadable(Exception):
    """Why an image could not be read (the caller adds which image)."""


def _decode(pil: Any, source: ImageInput, max_pixels: int, min_side: int | None) -> Any:
    if isinstance(source, np.ndarray):
        if source.size == 0:
            raise _Unreadable(f"empty array of shape {source.shape}")
        return _to_rgb(pil, pil.fromarray(np.ascontiguousarray(source)))
    if _is_pil_image(source):
        image: Any = source
        if image.width == 0 or image.height == 0:
            raise _Unreadable("empty image (0 pixels)")
        try:  # a lazily opened image decodes here: its errors are the caller's bad input
            return _to_rgb(pil, _upright(image))
        except Exception as exc:
            raise _Unreadable(f"damaged image data ({_short(exc)})") from None
    if isinstance(source, bytes):
        if not source:
            raise _Unreadable("empty data (0 bytes)")
        return _read(pil, io.BytesIO(source), max_pixels, min_side)
    if not isinstance(source, str | os.PathLike):
        raise _Unreadable(f"unsupported input type {type(source).__name__}")
    path = Path(os.fspath(source))
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _Unreadable("no such file") from None
    except OSError as exc:
        raise _Unreadable(f"cannot read the file ({exc.strerror or exc})") from None
    if path.is_dir():
        raise _Unreadable("is a folder, not an image file")
    if size == 0:
        raise _Unreadable("empty file (0 bytes)")
    try:
        with path.open("rb") as fh:
            return _read(pil, fh, max_pixels, min_side)
    except OSError as exc:  # opening failed (permissions...); decode errors are mapped below
        raise _Unreadable(f"cannot read the file ({exc.strerror or exc})") from None


def _read(pil: Any, fh: Any, max_pixels: int, min_side: int | None) -> Any:
    """Open from a binary stream: check the header size, then decode and convert."""
    try:
        with _open_lock, warnings.catch_warnings():
            # Pillow warns on headers over ~89 Mpx; the size check below decides instead
            warnings.simplefilter("ignore", pil.DecompressionBombWarning)
            image = pil.open(fh)
    except pil.DecompressionBombError as exc:
        raise _Unreadable(f"too large to open safely ({exc})") from None
    except pil.UnidentifiedImageError:
        raise _Unreadable("not an image, or a format Pillow cannot read") from None
    except Exception as exc:  # Pillow's header parsers raise many types on damaged files
        raise _Unreadable(f"damaged image header ({_short(exc)})") from None
    # no `with image`: closing it would drop the pixels returned (the caller closes `fh`)
    if min_side and image.format == "JPEG":
        image.draft(None, (min_side, min_side))
    width, height = image.size
    if width * height > max_pixels:
        raise _Unreadable(
            f"{width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is over "
            f"the limit of {max_pixels / 1e6:g} megapixels (max_pixels): downscale it "
            "first or raise max_pixels"
        )
    if width == 0 or height == 0:
        raise _Unreadable("empty image (0 pixels)")
    try:
        image.load()
        return _to_rgb(pil, _upright(image))
    except Exception as exc:  # truncated or corrupt data: any decoder error
        raise _Unreadable(f"damaged image data ({_short(exc)})") from None


def _upright(image: Any) -> Any:
    """The image turned as its EXIF orientation tag says: a new image, or `image` itself when
    it is upright (never changed in place: it may be the caller's)."""
    from PIL import ImageOps

    try:
        if image.getexif().get(_ORIENTATION, 1) in (1, None):
            return image
        turned = ImageOps.exif_transpose(image)
    except Exception:  # a damaged EXIF block must not lose the picture
        return image
    return image if turned is None else turned


def _to_rgb(pil: Any, image: Any) -> Any:
    """8-bit RGB: 16/32-bit grayscale scaled down, transparency laid on white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I"):  # 16-bit ("I;16*") or 32-bit integer grayscale
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(values, 0, 65535) / 257.0
        return pil.fromarray(np.rint(gray).astype(np.uint8)).convert("RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
        return pil.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8)).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = pil.new("RGBA", rgba.size, _WHITE)
        return pil.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def fit_to_size(
    image: Image.Image, size: tuple[int, int], crop_fraction: float = 1.0
) -> Image.Image:
    """`image` cropped to the aspect of `size` (height, width) around its centre, keeping
    `crop_fraction` of the largest such region, and resized to `size` (bicubic).

    With a square `size` of 224 and `crop_fraction` 224/256 this is the usual ImageNet
    evaluation: resize the shorter side to 256, then cut the central 224x224 (done here as
    one crop-and-resize, so no intermediate image is made).
    """
    pil = _pil()
    height, width = size
    if not 0 < crop_fraction <= 1:
        raise InputError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    scale = min(image.width / width, image.height / height) * crop_fraction
    box_w, box_h = width * scale, height * scale
    left, top = (image.width - box_w) / 2, (image.height - box_h) / 2
    resized: Image.Image = image.resize(
        (width, height),
        pil.Resampling.BICUBIC,
        box=(left, top, left + box_w, top + box_h),
        reducing_gap=3.0,
    )
    return resized


def decode_side(size: Sequence[int], crop_fraction: float) -> int:
    """The smallest side an image needs before `fit_to_size` (for `load_image(min_side=...)`)."""
    return math.ceil(max(size) / crop_fraction)


def list_image_files(folder: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """The image files under `folder`, recursively, sorted: (id, path) pairs.

    The id is the path relative to `folder` with forward slashes ("roses/01.jpg"), the same on
    every platform. Files are chosen by suffix (`IMAGE_SUFFIXES`, any case); hidden files and
    folders (names starting with ".", such as macOS "._x.jpg" resource forks) are skipped.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    found: list[tuple[str, Path]] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and is_image_file(name):
                path = Path(here) / name
                found.append((path.relative_to(root).as_posix(), path))
    found.sort(key=lambda pair: pair[0])
    return found


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:160] + "..."
