"""Int8 *compute* builds of ONNX transformers, made once on first use and cached.

A model shipped with int8 weights that it dequantizes to float32 inside the graph (int8
storage, float32 arithmetic) is barely faster than float32. This module turns it into a model
that multiplies in int8: onnxruntime's basic graph optimization constant-folds the
dequantization of the weights (int8 -> float32 initializers), then `quantize_dynamic`
quantizes the MatMul weights per output channel to int8 (activations are quantized on the fly),
so the MatMuls run as MatMulInteger (VNNI on CPUs that have it). Only MatMuls with a constant
weight are quantized; quantizing every op drifts (see DESIGN.md, "Known traps"). Activations get
one scale per row (`_row_quant`), not one per batch, so a text's vector is the same whatever
else is in its batch. The feed-forward GELU runs as one fused op (`_gelu`), each self-attention
block as one `MultiHeadAttention` (`_attention`). The build checks the result against the
source model before keeping it.

The build needs the `onnx` package (`pip install 'embedcraft[transformers]'`). Builds live in
`cache_dir("models", name)`, keyed by the source file's size and modification time, the build
recipe and the onnxruntime version, next to a manifest holding the SHA-256 of the built file.
A cached file whose digest no longer matches (a corrupted or truncated file) is rebuilt, with a
warning in the log. Builds are written aside and renamed into place, so a reader never sees a
half-written model; concurrent builders of the same entry are serialized by a lock file where
the platform has `fcntl` (elsewhere both build, and the last rename wins: never a broken file).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._cache import cache_dir
from .._files import atomic_file
from ..errors import missing_dependency
from ._attention import fuse_attention
from ._cached_build import build_once, is_built
from ._gelu import fuse_bias_gelu
from ._onnx import cpu_session
from ._row_quant import ROW_SCALE_RECIPE, per_row_activation_scales

__all__ = ["build_int8_compute_model", "int8_compute_model"]

log = logging.getLogger("embedcraft")

RECIPE = (
    f"fold-basic+multi-head-attention+dynamic-int8-matmul-per-channel+{ROW_SCALE_RECIPE}"
    "+bias-gelu/2"
)
"""Names the build steps; change it when they change, so that old cache entries are rebuilt."""


def _require_build_dependencies() -> tuple[Any, Any, Any]:
    """onnxruntime, its quantization module and onnx, or a MissingDependencyError."""
    try:
        import onnx  # quantize_dynamic needs it: import it here to fail with a clear message
    except ImportError:
        raise missing_dependency("onnx", "transformers", "building the int8 model") from None
    try:
        import onnxruntime as ort
        from onnxruntime import quantization
    except ImportError:
        raise missing_dependency("onnxruntime", "transformers", "building the int8 model") from None
    return ort, quantization, onnx


class _DropOnnxruntimeRecords(logging.Filter):
    """Drops the records that onnxruntime's quantizer logs on the root logger."""

    def __init__(self, package_dir: str) -> None:
        super().__init__()
        self.package_dir = package_dir

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(self.package_dir)


@contextlib.contextmanager
def _quiet_root_logger(ort: Any) -> Iterator[None]:
    """Keep the quantizer's `logging.info/warning(...)` calls from printing or configuring logging.

    The quantizer logs a hint and per-tensor notes through the root logger. A module-level
    `logging.warning` also calls `basicConfig()` when the root logger has no handler, which would
    install a stderr handler in the user's process: a NullHandler prevents that meanwhile.
    """
    root = logging.getLogger()
    guard = logging.NullHandler() if not root.handlers else None
    quiet = _DropOnnxruntimeRecords(os.path.dirname(ort.__file__))
    if guard is not None:
        root.addHandler(guard)
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)
        if guard is not None:
            root.removeHandler(guard)


def build_int8_compute_model(source: Path, target: Path) -> dict[str, Any]:
    """Fold `source`'s weight dequantization and quantize its MatMuls for int8 compute.

    Writes `target` atomically (aside, then one rename) after checking that onnxruntime loads
    the result. Returns seconds per step (`fold_s`, `quantize_s`, `check_s`, `total_s`), sizes in
    bytes (`source_bytes`, `target_bytes`) and the number of int8 MatMuls (`int8_matmuls`).
    """
    ort, quantization, onnx = _require_build_dependencies()
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such model file")
    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as work:
        folded = Path(work) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        folded_model = onnx.load(str(folded))
        attention_blocks = fuse_attention(folded_model)
        if attention_blocks:
            onnx.save(folded_model, str(folded))
        del folded_model
        t1 = time.perf_counter()
        with atomic_file(target) as tmp:
            dynamic = Path(work) / "dynamic.onnx"
            with _quiet_root_logger(ort):
                quantization.quantize_dynamic(
                    folded,
                    dynamic,
                    per_channel=True,
                    op_types_to_quantize=["MatMul"],
                    weight_type=quantization.QuantType.QInt8,
                )
            model = onnx.load(str(dynamic))
            int8_matmuls = sum(node.op_type == "MatMulInteger" for node in model.graph.node)
            if int8_matmuls == 0:
                raise ValueError(f"{source}: no MatMul with constant weights to quantize")
            per_row_activation_scales(model)
            fuse_bias_gelu(model)
            _drop_unused_initializers(model)
            onnx.save(model, str(tmp))
            t2 = time.perf_counter()
            agreement = _check_against_source(ort, source, Path(tmp))
            t3 = time.perf_counter()
    return {
        "fold_s": t1 - t0,
        "quantize_s": t2 - t1,
        "check_s": t3 - t2,
        "total_s": time.perf_counter() - t0,
        "source_bytes": source.stat().st_size,
        "target_bytes": target.stat().st_size,
        "int8_matmuls": int8_matmuls,
        "fused_attention_blocks": attention_blocks,
        "cosine_to_source": agreement,
    }


def _drop_unused_initializers(model: Any) -> None:
    """Remove constants no node reads any more (onnxruntime warns about each on every load)."""
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    used |= {out.name for out in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


_CHECK_IDS = [
    [101, 1996, 4937, 2938, 2006, 1996, 13523, 1012, 102],
    [101, 7592, 102, 0, 0, 0, 0, 0, 0],
]
"""Two token-id rows (one padded) that the built model must encode as the source does."""

MIN_COSINE = 0.98
"""The least mean-pooled cosine to the source model that a build may have (measured 0.997)."""


def _check_against_source(ort: Any, source: Path, built: Path) -> float:
    """Run both models as the encoders do (full graph optimization) on a fixed input; raise
    ValueError when the built one disagrees, e.g. an onnxruntime fusion that misreads it."""
    import numpy as np

    ids = np.array(_CHECK_IDS, dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    pooled = []
    for path in (source, built):
        session = cpu_session(ort, path, 1, varying_shapes=True, quiet=True)
        names = {i.name for i in session.get_inputs()}
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, {k: v for k, v in feed.items() if k in names})[0]
        sums = (hidden * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        pooled.append(sums / np.linalg.norm(sums, axis=1, keepdims=True))
    cosine = float((pooled[0] * pooled[1]).sum(axis=1).min())
    if not cosine >= MIN_COSINE:
        raise ValueError(
            f"{built.name}: the int8 build disagrees with {source.name} (cosine {cosine:.3f}, "
            f"needs {MIN_COSINE}); onnxruntime {ort.__version__} may run it differently"
        )
    return cosine


def _cache_key(source: Path) -> str:
    try:
        import onnxruntime as ort
    except ImportError:
        raise missing_dependency("onnxruntime", "transformers", "the int8 model") from None
    stat = source.stat()
    facts = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{RECIPE}|{ort.__version__}"
    return hashlib.sha256(facts.encode("utf-8")).hexdigest()[:16]


def int8_compute_model(source: Path, name: str) -> Path:
    """The int8-compute build of `source`, built on first use and cached; its path.

    The build takes seconds and is logged at INFO on the "embedcraft" logger. Raises
    MissingDependencyError when `onnx` is not installed (and nothing is cached yet).
    """
    source = Path(source)
    folder = cache_dir("models", name)
    key = _cache_key(source)
    model = folder / f"int8-{key}.onnx"
    manifest = folder / f"int8-{key}.json"
    if is_built(model, manifest):
        return model
    _require_build_dependencies()

    def build(target: Path) -> dict[str, Any]:
        if target.exists():
            log.warning("%s: cached int8 model %s is damaged; rebuilding it", name, target)
        stats = build_int8_compute_model(source, target)
        return {"name": name, "source": str(source), "recipe": RECIPE, "build": stats}

    record = build_once(
        model, manifest, build, prune=lambda: _remove_stale_builds(folder, keep=key)
    )
    if record is None:  # another process built it while this one waited
        return model
    stats = record["build"]
    log.info(
        "%s: built the int8-compute model in %.1f s (%.1f MB) at %s",
        name,
        stats["total_s"],
        stats["target_bytes"] / 1e6,
        model,
    )
    return model


def _remove_stale_builds(folder: Path, keep: str) -> None:
    """Delete builds of older keys (another source version, recipe or onnxruntime), and the
    temporary files of builds killed midway (hidden `.int8-*` entries over an hour old)."""
    for path in folder.glob("int8-*"):
        if path.suffix in (".onnx", ".json") and not path.name.startswith(f"int8-{keep}."):
            with contextlib.suppress(OSError):
                path.unlink()
    hour_ago = time.time() - 3600
    for path in folder.glob(".int8-*"):
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime < hour_ago:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()
