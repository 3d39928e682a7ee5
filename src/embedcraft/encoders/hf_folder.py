"""Read a local sentence-transformers or Hugging Face model folder into a short description.

A sentence-transformers folder has `modules.json` listing its modules (a Transformer, a
Pooling, optionally a Normalize), `config.json` and the weights (`model.safetensors` or
`pytorch_model.bin`), `tokenizer.json`, `1_Pooling/config.json` (the pooling mode),
`sentence_bert_config.json` (`max_seq_length`) and `config_sentence_transformers.json`
(`prompts`, `default_prompt_name`). A plain Hugging Face encoder folder has only the config,
weights and tokenizer; its pooling is the caller's choice (mean by default). Reading a folder
needs neither torch nor transformers, and every problem is one `InputError` naming the file and
what was expected: nothing is downloaded, ever.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError, UnknownEncoderError

__all__ = [
    "EXPECTED_LAYOUT",
    "SUPPORTED_TYPES",
    "HFFolder",
    "hub_name_error",
    "is_hf_folder",
    "read_hf_folder",
]

PoolingMode = Literal["mean", "cls", "max", "last"]

SUPPORTED_TYPES = {
    "bert": "BERT",
    "roberta": "RoBERTa",
    "xlm-roberta": "XLM-RoBERTa",
    "distilbert": "DistilBERT",
    "mpnet": "MPNet",
}
"""Model types (config.json's `model_type`) the ONNX exporter handles, with their family names."""

EXPECTED_LAYOUT = (
    "a local folder in sentence-transformers layout (modules.json, config.json, "
    "model.safetensors or pytorch_model.bin, tokenizer.json, 1_Pooling/config.json, "
    "sentence_bert_config.json) or a Hugging Face encoder folder (config.json, "
    "model.safetensors or pytorch_model.bin, tokenizer.json)"
)
"""What a model folder must hold, as error messages say it."""

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_ST_POOLING = {
    "mean": "mean",
    "cls": "cls",
    "max": "max",
    "lasttoken": "last",
}
"""sentence-transformers' pooling modes that embedcraft computes, and its name for each."""
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_TRANSFORMER_CONFIGS = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_xlm-roberta_config.json",
)


@dataclass(frozen=True)
class HFFolder:
    """What a model folder says: where its weights are and how its vectors are made."""

    folder: Path
    """The folder given."""
    weights_folder: Path
    """The folder holding config.json and the weights (the Transformer module's folder)."""
    layout: Literal["sentence-transformers", "hugging-face"]
    model_type: str
    architecture: str
    weight_files: tuple[Path, ...]
    tokenizer_file: Path
    pooling: PoolingMode
    normalize: bool
    max_length: int
    prompts: tuple[tuple[str, str], ...] = ()
    default_prompt_name: str | None = None
    lowercase: bool = False
    config_files: tuple[Path, ...] = field(default=())
    """The files besides the weights whose settings shape the vectors (for fingerprints)."""

    @property
    def family(self) -> str:
        return SUPPORTED_TYPES.get(self.model_type, self.model_type)


def is_hf_folder(path: Path) -> bool:
    """A folder in sentence-transformers layout (modules.json) or holding config.json and
    weights: the folders `read_hf_folder` reads (or explains why it cannot)."""
    if not path.is_dir():
        return False
    if (path / "modules.json").is_file():
        return True
    return (path / "config.json").is_file() and bool(_weights(path))


def hub_name_error(text: str) -> UnknownEncoderError | None:
    """The error for a name that looks like a Hugging Face hub name ("org/model") or a path
    but is not a local folder; None for anything else."""
    path = Path(text).expanduser()
    if path.exists() or not text:
        return None
    hub_like = re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text) is not None
    if hub_like:
        return UnknownEncoderError(
            f"{text!r} is neither a local folder nor a catalog name. If it is a Hugging Face "
            "hub name: embedcraft never downloads models; download it yourself (e.g. "
            f"`huggingface-cli download {text} --local-dir DIR`) and give DIR, {EXPECTED_LAYOUT}"
        )
    if os.sep in text or "/" in text:
        return UnknownEncoderError(
            f"no such folder {text!r}; a model folder is {EXPECTED_LAYOUT} (or an .onnx model "
            "with its tokenizer.json, or a saved encoder)"
        )
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno})") from None


def _json_object(path: Path) -> dict[str, Any]:
    value = _read_json(path)
    if not isinstance(value, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def _weights(folder: Path) -> tuple[Path, ...]:
    """The weight files of `folder` (one file, or the shards an index names); () if none."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return (folder / name,)
    for name in _SHARD_INDEXES:
        index = folder / name
        if index.is_file():
            mapping = _json_object(index).get("weight_map")
            if not isinstance(mapping, dict) or not mapping:
                raise InputError(f"{index}: no weight_map")
            shards = tuple(folder / str(s) for s in sorted(set(mapping.values())))
            missing = [s.name for s in shards if not s.is_file()]
            if missing:
                raise InputError(f"{folder}: weight shards missing: {', '.join(missing)}")
            return (index, *shards)
    return ()


def _module_kind(entry: Any, modules_file: Path) -> tuple[str, str]:
    """(class name, relative path) of one entry of modules.json."""
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise InputError(f"{modules_file}: each module needs a 'type', found {entry!r}")
    path = entry.get("path", "")
    if not isinstance(path, str):
        raise InputError(f"{modules_file}: module path must be a string, found {path!r}")
    return entry["type"].rsplit(".", 1)[-1], path


def _pooling_mode(config_file: Path) -> PoolingMode:
    """The pooling mode a sentence-transformers Pooling module's config names."""
    config = _json_object(config_file)
    mode: Any = config.get("pooling_mode")
    if mode is None:
        mode = [name for key, name in _LEGACY_POOLING_KEYS.items() if config.get(key)]
    modes = [mode] if isinstance(mode, str) else list(mode) if isinstance(mode, list) else []
    if not modes:
        raise InputError(f"{config_file}: no pooling mode set (pooling_mode or pooling_mode_*)")
    if len(modes) > 1:
        raise InputError(
            f"{config_file}: several pooling modes at once ({', '.join(map(str, modes))}, "
            "concatenated) are not supported; embedcraft pools with one of mean, cls, max, last"
        )
    if config.get("include_prompt") is False:
        raise InputError(
            f"{config_file}: include_prompt false (pooling that leaves the prompt's tokens "
            "out) is not supported"
        )
    found = _ST_POOLING.get(str(modes[0]))
    if found is None:
        raise InputError(
            f"{config_file}: pooling mode {modes[0]!r} is not supported; embedcraft pools with "
            "mean, cls, max or lasttoken"
        )
    return found  # type: ignore[return-value]


def _prompts(config_file: Path) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """The prompts and default prompt name of config_sentence_transformers.json."""
    if not config_file.is_file():
        return (), None
    config = _json_object(config_file)
    prompts = config.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()
    ):
        raise InputError(f"{config_file}: 'prompts' must map names to prompt strings")
    default = config.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise InputError(
            f"{config_file}: default_prompt_name {default!r} is not one of the prompts "
            f"({', '.join(prompts) or 'none'})"
        )
    return tuple(sorted(prompts.items())), default


def query_prompt(prompts: tuple[tuple[str, str], ...]) -> str:
    """The prompt `encode_queries` prepends: the one named "query", else none."""
    return dict(prompts).get("query", "")


def document_prompt(prompts: tuple[tuple[str, str], ...]) -> str:
    """The prompt `encode_documents` prepends: the one named "document", else none.

    As sentence-transformers 6 does: its models always hold a "document" prompt (blank unless
    the config sets it), which its `encode_document` takes before "passage" or "corpus"
    (sentence-transformers 5 fell back to those)."""
    return dict(prompts).get("document", "")


def _position_limit(config: dict[str, Any]) -> int | None:
    """The longest input the model's position table allows (RoBERTa-style models keep the
    first pad_token_id + 1 positions for padding)."""
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int):
        return None
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        positions -= int(config.get("pad_token_id", 1)) + 1
    return positions


def _max_length(weights: Path, st_config: dict[str, Any], config: dict[str, Any]) -> int:
    """sentence_bert_config's max_seq_length, else the tokenizer's model_max_length, else the
    position table; never more than the position table allows."""
    limit = _position_limit(config)
    length = st_config.get("max_seq_length")
    if not isinstance(length, int) and (weights / "tokenizer_config.json").is_file():
        declared = _json_object(weights / "tokenizer_config.json").get("model_max_length")
        if isinstance(declared, int) and declared < 100_000:
            length = declared
    if not isinstance(length, int):
        length = limit if limit is not None else 512
    return min(length, limit) if limit is not None else length


def _architecture(weights: Path) -> tuple[str, str, dict[str, Any]]:
    """(model_type, architecture, config) from config.json; InputError for what the
    exporter cannot handle, naming it."""
    config_file = weights / "config.json"
    if not config_file.is_file():
        raise InputError(f"{weights}: config.json is missing; a model folder is {EXPECTED_LAYOUT}")
    config = _json_object(config_file)
    model_type = str(config.get("model_type", ""))
    archs = config.get("architectures") or []
    architecture = str(archs[0]) if isinstance(archs, list) and archs else model_type or "?"
    if model_type not in SUPPORTED_TYPES:
        raise InputError(
            f"{weights}: architecture {architecture} (model_type {model_type!r}) is not "
            f"supported by the ONNX exporter; it handles the {', '.join(SUPPORTED_TYPES.values())} "
            "families"
        )
    if "auto_map" in config:
        raise InputError(
            f"{config_file}: architecture {architecture} needs custom code (auto_map), which "
            "embedcraft never runs"
        )
    return model_type, architecture, config


def read_hf_folder(path: str | os.PathLike[str], pooling: PoolingMode | None = None) -> HFFolder:
    """Describe a sentence-transformers or Hugging Face model folder (see the module docstring).

    `pooling` sets a plain Hugging Face folder's pooling (default "mean", and vectors are
    L2-normalized); a sentence-transformers folder says its own (`pooling` then overrides it).
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        hub = hub_name_error(os.fspath(path))
        if hub is not None:
            raise hub
        raise InputError(f"{folder}: not a folder; a model folder is {EXPECTED_LAYOUT}")
    modules_file = folder / "modules.json"
    config_files: list[Path] = []
    st_config: dict[str, Any] = {}
    prompts: tuple[tuple[str, str], ...] = ()
    default_prompt: str | None = None
    if modules_file.is_file():
        layout: Literal["sentence-transformers", "hugging-face"] = "sentence-transformers"
        modules = _read_json(modules_file)
        if not isinstance(modules, list):
            raise InputError(f"{modules_file}: expected a list of modules")
        weights: Path | None = None
        pooling_file: Path | None = None
        normalize = False
        for entry in modules:
            kind, rel = _module_kind(entry, modules_file)
            if kind == "Transformer":
                weights = folder / rel
            elif kind == "Pooling":
                pooling_file = folder / rel / "config.json"
            elif kind == "Normalize":
                normalize = True
            else:
                raise InputError(
                    f"{modules_file}: module {kind} is not supported; embedcraft runs a "
                    "Transformer, a Pooling and an optional Normalize module"
                )
        if weights is None or pooling_file is None:
            raise InputError(f"{modules_file}: needs a Transformer and a Pooling module")
        if not pooling_file.is_file():
            raise InputError(f"{pooling_file} is missing (the Pooling module's settings)")
        found_pooling = _pooling_mode(pooling_file)
        config_files += [modules_file, pooling_file]
        for name in _TRANSFORMER_CONFIGS:
            if (weights / name).is_file():
                st_config = _json_object(weights / name)
                config_files.append(weights / name)
                break
        prompts, default_prompt = _prompts(folder / "config_sentence_transformers.json")
        if (folder / "config_sentence_transformers.json").is_file():
            config_files.append(folder / "config_sentence_transformers.json")
    else:
        layout, weights, found_pooling, normalize = "hugging-face", folder, "mean", True
    model_type, architecture, config = _architecture(weights)
    weight_files = _weights(weights)
    if not weight_files:
        raise InputError(
            f"{weights}: no weights (model.safetensors or pytorch_model.bin); a model folder "
            f"is {EXPECTED_LAYOUT}"
        )
    tokenizer = next(
        (p for p in (weights / "tokenizer.json", folder / "tokenizer.json") if p.is_file()), None
    )
    if tokenizer is None:
        raise InputError(
            f"{folder}: tokenizer.json is missing; write it once with transformers: "
            f"AutoTokenizer.from_pretrained(FOLDER).save_pretrained(FOLDER)"
        )
    max_length = _max_length(weights, st_config, config)
    return HFFolder(
        folder=folder,
        weights_folder=weights,
        layout=layout,
        model_type=model_type,
        architecture=architecture,
        weight_files=weight_files,
        tokenizer_file=tokenizer,
        pooling=pooling or found_pooling,
        normalize=normalize,
        max_length=max_length,
        prompts=prompts,
        default_prompt_name=default_prompt,
        lowercase=bool(st_config.get("do_lower_case", False)),
        config_files=tuple(config_files),
    )
