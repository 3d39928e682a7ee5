"""The one-time ONNX export of a local Hugging Face encoder, cached by the folder's content.

`exported_onnx(folder)` returns the ONNX file of a folder read by `hf_folder`: the first call
exports it with torch (`pip install 'embedcraft[export]'`; seconds for a MiniLM, logged on the
"embedcraft" logger), later calls in any process find it in
`cache_dir("models", "hf", NAME-KEY)`, where KEY is a digest of config.json, the weights and the
export recipe, so a copy of the folder (other pooling, prompts...) reuses the export and a
changed weight file gets a new one. Loading the export needs neither torch nor transformers.

The graph takes `input_ids`, `attention_mask` (and `token_type_ids` when the model reads them)
with dynamic batch and sequence axes, and gives `last_hidden_state`; pooling happens outside,
as for every transformer embedcraft runs. Each export is checked against torch on fixed
inputs (padded and unpadded, longer than the traced one) before it is kept; it is written aside
and renamed into place under a lock, with a manifest (export seconds, size, SHA-256), so a
reader never sees a half-written model and a damaged one is exported again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import io
import json
import logging
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._cache import cache_dir
from .._files import atomic_file
from ..errors import EmbedcraftError, InputError, missing_dependency
from ._cached_build import build_once, is_built
from ._onnx import cpu_session
from .hf_folder import HFFolder

__all__ = [
    "RECIPE",
    "export_manifest",
    "export_onnx",
    "exported_onnx",
    "folder_key",
    "write_model_folder",
]

log = logging.getLogger("embedcraft")

RECIPE = "hf-encoder->onnx/opset17/torchscript-trace/eager-attention/last_hidden_state/v1"
"""Names the export steps; change it when they change, so that cached exports are redone."""
_OPSET = 17
_TOLERANCE = 1e-3
"""Largest difference to torch allowed, relative to the largest hidden value (measured 2e-6)."""


# ---------------------------------------------------------------------- the content key
def _digests_file() -> Path:
    return cache_dir("models", "hf") / "file-digests.json"


def _file_sha256(path: Path, memo: dict[str, Any]) -> str:
    """SHA-256 of `path`, remembered across processes by (path, size, mtime)."""
    stat = path.stat()
    where = os.fspath(path.resolve())
    known = memo.get(where)
    if isinstance(known, list) and known[:2] == [stat.st_size, stat.st_mtime_ns]:
        return str(known[2])
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    memo[where] = [stat.st_size, stat.st_mtime_ns, digest]
    return digest


def folder_key(model: HFFolder) -> str:
    """The digest of what the export depends on: config.json, the weights, the recipe."""
    memo_file = _digests_file()
    try:
        memo = json.loads(memo_file.read_text("utf-8"))
        memo = memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        memo = {}
    before = dict(memo)
    files = [model.weights_folder / "config.json", *model.weight_files]
    facts = [RECIPE] + [f"{f.name}:{_file_sha256(f, memo)}" for f in files]
    if memo != before:
        with contextlib.suppress(OSError), atomic_file(memo_file) as tmp:
            tmp.write_text(json.dumps(memo), "utf-8")
    return hashlib.sha256("\n".join(facts).encode("utf-8")).hexdigest()[:16]


def _cache_folder(model: HFFolder, key: str) -> Path:
    """`cache_dir("models", "hf", NAME-KEY)`: a whole export of the same content under another
    folder's name (a copy of the folder with other settings) is reused."""
    root = cache_dir("models", "hf")
    for other in sorted(root.glob(f"*-{key}")):
        if is_built(other / "model.onnx", other / "manifest.json"):
            return other
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", model.folder.resolve().name).strip("-.") or "model"
    return cache_dir("models", "hf", f"{name[:60]}-{key}")


def export_manifest(onnx: Path) -> dict[str, Any] | None:
    """The manifest recorded beside a cached export (export seconds, size...), or None."""
    try:
        record = json.loads(onnx.with_name("manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


# ---------------------------------------------------------------------- torch side
@contextlib.contextmanager
def _offline_and_quiet() -> Iterator[None]:
    """Hugging Face libraries offline and silent: no download, no progress bar, no notes."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    try:
        hf_logging = importlib.import_module("transformers.utils.logging")
        verbosity = hf_logging.get_verbosity()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")  # tracer and deprecation notes
                yield
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _torch_parts() -> tuple[Any, Any]:
    """torch and transformers, or MissingDependencyError naming the export extra."""
    try:
        torch = importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
    except ImportError:
        raise missing_dependency(
            "torch and transformers", "export", "exporting a model folder to ONNX (one time)"
        ) from None
    return torch, transformers


def _load_torch_model(model: HFFolder) -> tuple[Any, list[str]]:
    """The folder's encoder in torch (float32, eval mode) and the inputs it reads."""
    torch, transformers = _torch_parts()
    net = transformers.AutoModel.from_pretrained(
        str(model.weights_folder), local_files_only=True, attn_implementation="eager"
    )
    net = net.float().eval()
    params = inspect.signature(net.forward).parameters
    inputs = ["input_ids", "attention_mask"]
    if "token_type_ids" in params:
        inputs.append("token_type_ids")

    class LastHidden(torch.nn.Module):  # type: ignore[misc,name-defined]
        """The encoder returning its last hidden state only."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(inputs, args, strict=True))).last_hidden_state

    return LastHidden(net).eval(), inputs


def _sample(config_vocab: int, batch: int, length: int, padded: bool, seed: int) -> np.ndarray:
    """Token ids (batch, length); with `padded`, rows after the first end early (id 0 = pad)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, max(6, min(config_vocab, 2000)), size=(batch, length), dtype=np.int64)
    mask = np.ones_like(ids)
    if padded:
        for row in range(1, batch):
            mask[row, max(2, length - 3 * row) :] = 0
    return np.stack([ids, mask])


def _feeds(inputs: list[str], sample: np.ndarray) -> dict[str, np.ndarray]:
    ids, mask = sample
    values = {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": 0 * ids}
    return {name: values[name] for name in inputs}


def export_onnx(model: HFFolder, target: str | os.PathLike[str]) -> dict[str, Any]:
    """Export the folder's encoder to the ONNX file `target` (written atomically), checked
    against torch. Returns seconds per step (`load_s`, `export_s`, `check_s`, `total_s`), the
    size (`bytes`), the hidden width (`dim`), the inputs and the largest relative difference
    to torch (`max_rel_diff`). Needs torch and transformers (`embedcraft[export]`)."""
    t0 = time.perf_counter()
    torch, transformers = _torch_parts()
    try:
        import onnxruntime as ort
    except ImportError:
        raise missing_dependency("onnxruntime", "transformers", "running the export") from None
    target = Path(target)
    with _offline_and_quiet():
        net, inputs = _load_torch_model(model)
        vocab = int(getattr(net.inner.config, "vocab_size", 2000))
        t1 = time.perf_counter()
        traced = _feeds(inputs, _sample(vocab, 2, 16, padded=True, seed=0))
        axes = {name: {0: "batch", 1: "sequence"} for name in [*inputs, "last_hidden_state"]}
        with atomic_file(target) as tmp:
            with torch.no_grad():
                torch.onnx.export(
                    net,
                    tuple(torch.from_numpy(traced[n]) for n in inputs),
                    str(tmp),
                    input_names=inputs,
                    output_names=["last_hidden_state"],
                    dynamic_axes=axes,
                    opset_version=_OPSET,
                    dynamo=False,
                )
            t2 = time.perf_counter()
            diff, dim = _check_against_torch(ort, torch, net, inputs, Path(tmp), vocab)
            t3 = time.perf_counter()
    return {
        "load_s": t1 - t0,
        "export_s": t2 - t1,
        "check_s": t3 - t2,
        "total_s": t3 - t0,
        "bytes": target.stat().st_size,
        "dim": dim,
        "inputs": inputs,
        "max_rel_diff": diff,
        "torch": str(torch.__version__),
        "transformers": str(transformers.__version__),
    }


def _check_against_torch(
    ort: Any, torch: Any, net: Any, inputs: list[str], onnx: Path, vocab: int
) -> tuple[float, int]:
    """Run the export and torch on a padded batch longer than the traced one and on an
    unpadded one; raise EmbedcraftError when they differ on any real (unpadded) token."""
    session = cpu_session(ort, onnx, 1, varying_shapes=True, quiet=True)
    worst, dim = 0.0, 0
    for sample in (_sample(vocab, 3, 37, True, 1), _sample(vocab, 2, 9, False, 2)):
        feed = _feeds(inputs, sample)
        (got,) = session.run(["last_hidden_state"], feed)
        with torch.no_grad():
            want = net(*(torch.from_numpy(feed[n]) for n in inputs)).numpy()
        real = sample[1].astype(bool)
        if got.shape != want.shape:
            raise EmbedcraftError(f"the ONNX export gives shape {got.shape}, torch {want.shape}")
        scale = max(1.0, float(np.abs(want[real]).max()))
        worst = max(worst, float(np.abs(got[real] - want[real]).max()) / scale)
        dim = int(got.shape[2])
    if not worst <= _TOLERANCE:
        raise EmbedcraftError(
            f"the ONNX export does not match torch (largest relative difference {worst:.2g}, "
            f"allowed {_TOLERANCE})"
        )
    return worst, dim


# ---------------------------------------------------------------------- the cache
def exported_onnx(model: HFFolder) -> Path:
    """The folder's ONNX export, made on first use and cached (see the module docstring).

    Raises MissingDependencyError when nothing is cached yet and torch/transformers are
    missing; any failure of the exporter becomes one EmbedcraftError naming the architecture.
    """
    key = folder_key(model)
    folder = _cache_folder(model, key)
    onnx, manifest = folder / "model.onnx", folder / "manifest.json"
    if is_built(onnx, manifest):
        return onnx
    _torch_parts()  # fail early, before taking the lock, when torch is missing

    def export(target: Path) -> dict[str, Any]:
        if target.exists():
            log.warning("%s: cached export %s is damaged; exporting again", model.folder, target)
        log.warning(
            "embedcraft: exporting %s (%s) to ONNX (one time; cached in %s)",
            model.folder,
            model.architecture,
            folder,
        )
        try:
            stats = export_onnx(model, target)
        except EmbedcraftError as exc:
            raise EmbedcraftError(
                f"{model.folder}: exporting {model.architecture} to ONNX failed: {exc}"
            ) from exc
        except Exception as exc:  # torch's exporter, a full disk...: one line, not a traceback
            raise EmbedcraftError(
                f"{model.folder}: exporting {model.architecture} ({model.family}) to ONNX "
                f"failed ({type(exc).__name__}: {exc})"
            ) from exc
        return {
            "source": str(model.folder),
            "model_type": model.model_type,
            "architecture": model.architecture,
            "recipe": RECIPE,
            "key": key,
            "export": stats,
        }

    record = build_once(onnx, manifest, export)
    if record is not None:
        stats = record["export"]
        log.info(
            "%s: exported to ONNX in %.1f s (%.1f MB) at %s",
            model.folder,
            stats["total_s"],
            stats["bytes"] / 1e6,
            onnx,
        )
    return onnx


# ---------------------------------------------------------------------- a model folder
def write_model_folder(
    model: HFFolder, target: str | os.PathLike[str], *, int8: bool = False
) -> dict[str, Any]:
    """Write `target`: the folder's ONNX export (or its int8-compute build), its tokenizer.json
    and embedcraft-model.json (pooling, normalize, max length, prompts), a model folder that
    loads without torch. Exports first when nothing is cached. Written aside and renamed into
    place; an existing `target` is replaced only when it is such a folder itself. Returns what
    happened: `exported_now`, `export_s` (the export's seconds, now or when it was made),
    `bytes` (the written ONNX file), `onnx`, `int8`."""
    from .._files import atomic_directory
    from .models import MODEL_CONFIG, int8_onnx

    out = Path(target).expanduser()
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / MODEL_CONFIG).is_file())
    ):
        raise InputError(
            f"{out} exists and is not a model folder written by `embedcraft export`; "
            "give a new or empty folder"
        )
    key = folder_key(model)
    cached = _cache_folder(model, key)
    exported_now = not is_built(cached / "model.onnx", cached / "manifest.json")
    t0 = time.perf_counter()
    onnx = exported_onnx(model)
    if int8:
        onnx = int8_onnx(onnx, model.folder.name)
    record = export_manifest(cached / "model.onnx") or {}
    settings = {
        "pooling": model.pooling,
        "normalize": model.normalize,
        "max_length": model.max_length,
        "prompts": dict(model.prompts),
        "default_prompt_name": model.default_prompt_name,
        "lowercase": model.lowercase,
        "source": f"{model.folder} ({model.architecture}, exported by embedcraft"
        + (", int8-compute build)" if int8 else ")"),
    }
    with atomic_directory(out) as tmp:
        shutil.copyfile(onnx, tmp / "model.onnx")
        shutil.copyfile(model.tokenizer_file, tmp / "tokenizer.json")
        (tmp / MODEL_CONFIG).write_text(json.dumps(settings, indent=2), "utf-8")
    return {
        **settings,
        "source": str(model.folder),
        "output": str(out),
        "architecture": model.architecture,
        "exported_now": exported_now,
        "export_s": float(record.get("export", {}).get("total_s", time.perf_counter() - t0)),
        "bytes": (out / "model.onnx").stat().st_size,
        "int8": int8,
    }
