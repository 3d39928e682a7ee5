"""The image family: a CNN's pooled features on ONNX Runtime, and a pixel baseline.

`ImageEncoder` embeds images with a named image model (`efficientnet-lite0`, exported once to
ONNX, see `image_models`) or a model folder: each image is decoded (`inputs.images.load_image`:
upright, RGB, big JPEGs decoded at reduced scale), centre-cropped and resized to the model's
input, normalized as the model was trained, and run in batches; the vectors are unit length
and compared by cosine. For efficientnet-lite0 the preprocessing is the model's reference
evaluation: a centred square of 224/256 of the shorter side (the same as resizing the shorter
side to 256 and cutting the central 224x224), bicubic resize to 224x224, (pixel - 127) / 128.

`PixelsEncoder` is the no-model baseline: a small colour thumbnail beside a colour histogram.

Images are decoded batch by batch (a few worker threads per batch), so memory stays bounded
whatever the number of images. An image that cannot be read (missing, empty, damaged, not an
image, over `max_pixels`) gets a zero vector and is named in the report's `failed`
(`encode_with_report`), and the call goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError, missing_dependency
from ..inputs.images import (
    DEFAULT_MAX_PIXELS,
    ImageInput,
    as_images,
    decode_side,
    fit_to_size,
    image_label,
    load_image,
)
from ._onnx import cpu_session
from .base import BaseEncoder
from .contract import CatalogEntry, EncodeReport, EncoderKind, InputKind
from .image_models import (
    IMAGE_MODEL_CONFIG,
    NAMED_IMAGE_MODELS,
    ImageModelSpec,
    is_image_model_folder,
    locate_image_model,
)

__all__ = ["ImageEncoder", "ImageModelRuntime", "PixelsEncoder"]

_MAX_WORKERS = 8
_HIST_BINS = 4
"""Histogram levels per RGB channel (4 x 4 x 4 = 64 colour bins)."""
_HIST_SIDE = 64
"""Side of the square the histogram is counted on."""

_Item = tuple[int, ImageInput]
"""An input and its position in the call (so messages name "image 12", not a batch index)."""


def _workers(threads: int | None, count: int) -> int:
    """Threads decoding one batch: `threads`, else the cores this process may use (at most 8)."""
    if threads:
        return max(1, min(threads, count))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_WORKERS, count))


def decode_batch(
    batch: Sequence[_Item],
    convert: Callable[[Any], np.ndarray],
    *,
    max_pixels: int,
    min_side: int | None,
    threads: int | None,
) -> tuple[list[np.ndarray | None], dict[int, str]]:
    """Decode each image of `batch` and `convert` it (a PIL RGB image -> an array), on a few
    threads; returns the arrays (None where an image failed) and {batch index: why}."""

    def one(item: _Item) -> np.ndarray | str:
        index, source = item
        try:
            image = load_image(
                source,
                max_pixels=max_pixels,
                min_side=min_side,
                label=image_label(source, index),
            )
            return convert(image)
        except InputError as exc:
            return str(exc)

    workers = _workers(threads, len(batch))
    if workers == 1:
        results = [one(item) for item in batch]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
            results = list(pool.map(one, batch))
    arrays: list[np.ndarray | None] = []
    failed: dict[int, str] = {}
    for j, result in enumerate(results):
        if isinstance(result, str):
            arrays.append(None)
            failed[j] = result
        else:
            arrays.append(result)
    return arrays, failed


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: np.ndarray = (matrix / norms).astype(np.float32)
    return out


class ImageModelRuntime:
    """A loaded image model: its ONNX session and how to feed it."""

    def __init__(self, spec: ImageModelSpec, threads: int | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise missing_dependency("onnxruntime", "images", "image encoders") from None
        if not Path(spec.onnx).is_file():
            raise InputError(f"{spec.name}: model file {spec.onnx} is missing")
        self.session = cpu_session(ort, spec.onnx, threads, varying_shapes=False, quiet=True)
        self.spec = spec
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise InputError(f"{spec.onnx}: expected one 4-D image input")
        self.input = inputs[0].name
        shape = inputs[0].shape
        self.channels_first = shape[1] == 3 or shape[3] != 3
        spatial = shape[2:4] if self.channels_first else shape[1:3]
        if all(isinstance(v, int) for v in spatial) and tuple(spatial) != spec.input_size:
            raise InputError(
                f"{spec.onnx}: the model reads {spatial[0]}x{spatial[1]} images, but its "
                f"settings say input_size {list(spec.input_size)}"
            )
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        for wanted in (spec.output, spec.logits):
            if wanted is not None and wanted not in outputs:
                raise InputError(
                    f"{spec.onnx}: no output named {wanted!r} (outputs: {', '.join(outputs)})"
                )
        out_shape = outputs[spec.output]
        width = out_shape[1] if len(out_shape) in (2, 4) else None
        if not isinstance(width, int):
            raise InputError(
                f"{spec.onnx}: output {spec.output!r} has shape {out_shape}; expected "
                "(n, d) or (n, d, h, w) with a fixed d"
            )
        self.dim = width
        self.mean = np.asarray(spec.mean, dtype=np.float32)
        self.inv_std = 1.0 / np.asarray(spec.std, dtype=np.float32)

    def model_input(self, pixels: np.ndarray) -> np.ndarray:
        """The model's input for (n, h, w, 3) uint8 pixels: normalized float32, its layout."""
        x = (pixels.astype(np.float32) - self.mean) * self.inv_std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if self.channels_first else x

    def run(self, pixels: np.ndarray, *, logits: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings (n, dim), and the class scores when `logits` (else an empty array)."""
        names = [self.spec.output] + ([self.spec.logits] if logits and self.spec.logits else [])
        outputs = self.session.run(names, {self.input: self.model_input(pixels)})
        embedding = np.asarray(outputs[0], dtype=np.float32)
        if embedding.ndim == 4:
            embedding = embedding.mean(axis=(2, 3))
        scores = np.asarray(outputs[1], np.float32) if len(outputs) > 1 else np.empty((0, 0))
        return embedding, scores


class _ImageFamily(BaseEncoder):
    """What both image encoders share: image inputs, positions kept for messages, one token
    per image."""

    input_kind: ClassVar[InputKind] = InputKind.IMAGE
    needs_fit: ClassVar[bool] = False
    worth_caching: ClassVar[bool] = True  # decoding an image alone costs more than a lookup
    token_unit: ClassVar[str] = "images"

    def _check_inputs(self, inputs: Any) -> list[Any]:
        return as_images(inputs)

    def _prepare(self, items: list[Any]) -> list[Any]:
        return list(enumerate(items))

    def count_tokens(self, inputs: Any) -> list[int]:
        """One per image (what the server and the reports count for images)."""
        return [1] * len(as_images(inputs))

    def cache_key_bytes(self, item: Any) -> bytes | None:
        """An image by its content: a file's bytes (not its path), encoded bytes, or the pixels
        with their shape; None for a file that cannot be read (never cached)."""
        if isinstance(item, str | os.PathLike):
            try:
                return b"file:" + Path(item).read_bytes()
            except OSError:
                return None
        if isinstance(item, bytes):
            return b"bytes:" + item
        if isinstance(item, np.ndarray):
            return f"array:{item.dtype}:{item.shape}:".encode() + item.tobytes()
        pixels: bytes = item.tobytes()
        return f"pil:{item.mode}:{item.size}:".encode() + pixels


class ImageEncoder(_ImageFamily):
    """Image vectors from a CNN on ONNX Runtime (no fitting, no torch at encode time).

    `model` is a named image model (efficientnet-lite0) or a folder with one .onnx file and
    `embedcraft-image-model.json`. `threads` caps both the model's and the decoders' threads
    (None: all the cores this process may use). Images over `max_pixels` (counted at the
    reduced scale a big JPEG is decoded at) are refused from their header, before decoding.
    Inputs: paths, PIL images, uint8 arrays, encoded bytes, mixed (see `inputs.as_images`).
    """

    kind: ClassVar[EncoderKind] = EncoderKind.CONTEXTUAL
    default_batch_size: ClassVar[int] = 32

    def __init__(
        self,
        model: str | os.PathLike[str] = "efficientnet-lite0",
        threads: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        name: str = "efficientnet-lite0",
    ) -> None:
        self.name = name
        self.model = model
        self.threads = threads
        self.max_pixels = max_pixels

    @property
    def dim(self) -> int:
        named = {m.name: m.width for m in NAMED_IMAGE_MODELS}
        text = os.fspath(self.model)
        if text in named and not Path(text).is_dir():
            return named[text]  # known without exporting or loading the model
        return self.runtime.dim

    @property
    def spec(self) -> ImageModelSpec:
        """The located model: file, input size, normalization, outputs."""
        return self.runtime.spec

    @property
    def runtime(self) -> ImageModelRuntime:
        """The loaded model (located, exported if need be, and loaded on first use)."""
        key = (os.fspath(self.model), self.threads)
        cached = self.__dict__.get("_runtime_cache")
        if cached is None or cached[0] != key:
            cached = (key, ImageModelRuntime(locate_image_model(self.model), self.threads))
            self.__dict__["_runtime_cache"] = cached
        runtime: ImageModelRuntime = cached[1]
        return runtime

    def model_files(self) -> list[Path]:
        """The ONNX model, and its settings file for a model folder."""
        onnx = Path(locate_image_model(self.model).onnx)
        config = onnx.parent / IMAGE_MODEL_CONFIG
        folder = Path(os.fspath(self.model)).is_dir() and config.is_file()
        return [onnx, config] if folder else [onnx]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_runtime_cache", None)  # sessions do not pickle; rebuilt on first use
        return state

    def _pixels(self, batch: Sequence[_Item]) -> tuple[np.ndarray, list[int], dict[int, str]]:
        """The batch's decoded, cropped and resized pixels (good images only, in order), the
        batch positions they come from, and the failures."""
        spec = self.spec
        if not isinstance(self.max_pixels, int) or self.max_pixels < 1:
            raise InputError(f"max_pixels must be a positive integer, got {self.max_pixels!r}")
        arrays, failed = decode_batch(
            batch,
            lambda image: np.asarray(fit_to_size(image, spec.input_size, spec.crop_fraction)),
            max_pixels=self.max_pixels,
            min_side=decode_side(spec.input_size, spec.crop_fraction),
            threads=self.threads,
        )
        good = [j for j, a in enumerate(arrays) if a is not None]
        height, width = spec.input_size
        pixels = np.empty((len(good), height, width, 3), dtype=np.uint8)
        for row, array in enumerate(a for a in arrays if a is not None):
            pixels[row] = array
        return pixels, good, failed

    def _run(self, batch: list[_Item], *, logits: bool) -> tuple[np.ndarray, EncodeReport]:
        runtime = self.runtime
        pixels, good, failed = self._pixels(batch)
        width = len(runtime.spec.labels()) if logits and runtime.spec.labels else runtime.dim
        out = np.zeros((len(batch), width), dtype=np.float32)
        if good:
            embedding, scores = runtime.run(pixels, logits=logits)
            if logits:
                if scores.shape[1] != width:
                    raise InputError(
                        f"{runtime.spec.name}: {scores.shape[1]} class scores but {width} labels"
                    )
                scores = scores - scores.max(axis=1, keepdims=True)
                probs = np.exp(scores)
                out[good] = probs / probs.sum(axis=1, keepdims=True)
            else:
                out[good] = _unit_rows(embedding)
        return out, EncodeReport(inputs=len(batch), failed=failed)

    def _encode_reported(self, batch: list[_Item]) -> tuple[np.ndarray, EncodeReport]:
        return self._run(batch, logits=False)

    def preprocess(self, images: Any) -> np.ndarray:
        """The model's input for `images` (normalized float32, e.g. (n, 3, 224, 224)): what
        `encode` feeds the model. Raises InputError for an image that cannot be read."""
        items = list(enumerate(as_images(images)))
        pixels, _, failed = self._pixels(items)
        if failed:
            raise InputError(next(iter(failed.values())))
        return self.runtime.model_input(pixels)

    def classify(
        self,
        images: Any,
        k: int = 5,
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> list[list[tuple[str, float]]]:
        """The `k` likeliest classes of each image, with their softmax probabilities, most
        likely first (ImageNet names for efficientnet-lite0). An image that cannot be read gets
        an empty list; the reasons are in `last_report.failed`."""
        spec = self.spec
        if spec.labels is None or spec.logits is None:
            raise InputError(f"{spec.name} has no class labels: it only embeds")
        labels = spec.labels()
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(labels):
            raise InputError(f"k must be between 1 and {len(labels)}, got {k!r}")
        encoded = self._run_batches(
            lambda batch: self._run(batch, logits=True), images, batch_size, progress
        )
        self.last_report = encoded.report
        probs = np.asarray(encoded.vectors)
        top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [
            [] if i in encoded.report.failed else [(labels[c], float(probs[i, c])) for c in top[i]]
            for i in range(len(probs))
        ]


class PixelsEncoder(_ImageFamily):
    """The no-model baseline: a `size` x `size` colour thumbnail beside a 64-bin colour
    histogram, each unit length, concatenated and scaled to unit length.

    The thumbnail (the centred square, pixel / 255 - 0.5) compares layout and colour by place;
    the histogram (square roots of the shares of 4 x 4 x 4 RGB bins, counted on a 64 x 64
    version) compares colours wherever they are. No fitting, no model: what a learned image
    encoder must beat by a wide margin.
    """

    kind: ClassVar[EncoderKind] = EncoderKind.STATIC
    default_batch_size: ClassVar[int] = 256

    def __init__(
        self, size: int = 16, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "pixels"
    ) -> None:
        self.name = name
        self.size = size
        self.max_pixels = max_pixels

    @property
    def dim(self) -> int:
        return self._size() ** 2 * 3 + _HIST_BINS**3

    def _size(self) -> int:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise InputError(f"size must be a positive integer, got {self.size!r}")
        return self.size

    def _features(self, image: Any) -> np.ndarray:
        from PIL import Image

        size = self._size()
        square = fit_to_size(image, (_HIST_SIDE, _HIST_SIDE))
        pixels = np.asarray(square)
        levels = (pixels // (256 // _HIST_BINS)).astype(np.int64)
        bins = (levels[..., 0] * _HIST_BINS + levels[..., 1]) * _HIST_BINS + levels[..., 2]
        counts = np.bincount(bins.ravel(), minlength=_HIST_BINS**3).astype(np.float32)
        histogram = np.sqrt(counts / counts.sum())  # unit length already
        thumb = np.asarray(
            square.resize((size, size), Image.Resampling.BOX)
            if size < _HIST_SIDE
            else fit_to_size(image, (size, size)),
            dtype=np.float32,
        )
        centred = (thumb / 255.0 - 0.5).ravel()
        norm = float(np.linalg.norm(centred))
        thumbnail = centred / norm if norm > 0 else centred
        features: np.ndarray = np.concatenate([thumbnail, histogram])
        return features

    def _encode_reported(self, batch: list[_Item]) -> tuple[np.ndarray, EncodeReport]:
        if not isinstance(self.max_pixels, int) or self.max_pixels < 1:
            raise InputError(f"max_pixels must be a positive integer, got {self.max_pixels!r}")
        arrays, failed = decode_batch(
            batch,
            self._features,
            max_pixels=self.max_pixels,
            min_side=max(self._size(), _HIST_SIDE),
            threads=None,
        )
        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        for j, features in enumerate(arrays):
            if features is not None:
                out[j] = features
        return _unit_rows(out), EncodeReport(inputs=len(batch), failed=failed)


def catalog_entries() -> list[CatalogEntry]:
    """The named image models, and the pixel baseline."""

    def entry(name: str, width: int, packages: Sequence[str], what: str) -> CatalogEntry:
        return CatalogEntry(
            name,
            EncoderKind.CONTEXTUAL,
            str(width),
            False,
            "packages " + " + ".join(packages),
            what,
            lambda: ImageEncoder(model=name, name=name),
            input_kind=InputKind.IMAGE,
        )

    named = [entry(m.name, m.width, m.packages, m.description) for m in NAMED_IMAGE_MODELS]
    pixels = CatalogEntry(
        "pixels",
        EncoderKind.STATIC,
        str(PixelsEncoder().dim),
        False,
        "built in (no model)",
        "baseline: a 16x16 colour thumbnail beside a 64-bin colour histogram, unit length",
        lambda: PixelsEncoder(name="pixels"),
        input_kind=InputKind.IMAGE,
    )
    return [*named, pixels]


def open_path(path: Path) -> BaseEncoder | None:
    """A folder with an .onnx model and embedcraft-image-model.json; None for anything else."""
    if not is_image_model_folder(path):
        return None
    return ImageEncoder(model=str(path), name=path.name)
