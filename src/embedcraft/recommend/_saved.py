"""A fitted recommender's folder: written whole or not at all, read back with every check.

The folder holds `recommender.json` (format and version, the method and its settings, each
model's parameters and small state), `histories.json` (each user's items in time order),
`items.json` (item texts) and one .npy file per array (item vectors, factors). It is written
aside and renamed into place, so no reader ever sees half a folder; damage found on loading is a
CorruptFileError naming the file. Nothing is unpickled: loading runs no code from the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_directory, load_npy, parse_json, read_text
from ..errors import CorruptFileError, InputError
from .interactions import Interactions
from .models import BaseRecommender

__all__ = ["FORMAT", "FORMAT_VERSION", "SPEC_FILE", "Saved", "data_fingerprint", "read", "write"]

SPEC_FILE = "recommender.json"
FORMAT = "embedcraft.recommender"
FORMAT_VERSION = 1
_PREFIX = "model."


def data_fingerprint(log: Interactions, items: Mapping[str, str] | None) -> str:
    """A hash of what a recommender learns from: the log's rows and the item texts."""
    texts = json.dumps(sorted((items or {}).items()), ensure_ascii=False)
    digest = hashlib.sha256(log.fingerprint().encode("ascii"))
    digest.update(texts.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass
class Saved:
    """What a folder holds: the Recommender's settings and its fitted parts."""

    settings: dict[str, Any]
    """method, encoder, workers, data_fingerprint, embedcraft_version."""
    model: BaseRecommender
    histories: dict[str, list[str]]
    items: dict[str, str]


def _types() -> dict[str, type[BaseRecommender]]:
    from .content import ContentRecommender, HybridRecommender
    from .models import ALSRecommender, Item2VecRecommender, PopularityRecommender

    kinds = (
        ALSRecommender, ContentRecommender, HybridRecommender, Item2VecRecommender,
        PopularityRecommender,
    )  # fmt: skip
    return {cls.__name__: cls for cls in kinds}


def _json_param(value: Any) -> Any:
    """A parameter as JSON keeps it (an encoder object by its name: the vectors are saved)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else repr(value)


def _spec(model: BaseRecommender, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(description, arrays by file stem) of a fitted model and its parts."""
    state, arrays = model._get_state()
    parts = model._parts()
    params = {k: _json_param(v) for k, v in model.get_params().items() if k not in parts}
    spec: dict[str, Any] = {
        "type": type(model).__name__,
        "params": params,
        "state": state,
        "arrays": sorted(arrays),
        "parts": {},
    }
    files = {f"{prefix}{name}": array for name, array in arrays.items()}
    for name, part in parts.items():
        spec["parts"][name], more = _spec(part, f"{prefix}{name}.")
        files.update(more)
    return spec, files


def write(
    path: str | os.PathLike[str],
    settings: Mapping[str, Any],
    model: BaseRecommender,
    histories: Mapping[str, list[str]],
    items: Mapping[str, str],
) -> None:
    """Write the folder atomically: an old folder at `path` is replaced only once all is written."""
    spec, arrays = _spec(model, _PREFIX)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **settings, "model": spec}
    with atomic_directory(path) as tmp:
        for stem, array in arrays.items():
            np.save(tmp / f"{stem}.npy", np.ascontiguousarray(array), allow_pickle=False)
        for name, value in (("histories.json", histories), ("items.json", items)):
            (tmp / name).write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        (tmp / SPEC_FILE).write_text(json.dumps(doc, indent=1), encoding="utf-8")


def _json(file: Path) -> Any:
    return parse_json(read_text(file, error=CorruptFileError), str(file), error=CorruptFileError)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _model(spec: Any, folder: Path, prefix: str) -> BaseRecommender:
    """The model `_spec` described, its arrays read from `folder`; ValueError when inconsistent."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ValueError("a model description is not an object with a type")
    cls = _types().get(spec["type"])
    if cls is None:
        raise ValueError(f"unknown model type {spec['type']!r}")
    params, state = spec.get("params", {}), spec.get("state", {})
    names, parts = spec.get("arrays", []), spec.get("parts", {})
    if not isinstance(params, dict) or not isinstance(state, dict) or not isinstance(parts, dict):
        raise ValueError(f"the description of the {spec['type']} has a field of the wrong type")
    if not _strings(names) or not all(n.isidentifier() for n in names):
        raise ValueError(f"the {spec['type']}'s array names are not plain names")
    fitted = {name: _model(sub, folder, f"{prefix}{name}.") for name, sub in parts.items()}
    model = cls(**params, **fitted)
    for name, part in fitted.items():
        setattr(model, f"{name}_", part)
    model._set_state(state, {n: load_npy(folder / f"{prefix}{n}.npy") for n in names})
    return model


def read(path: str | os.PathLike[str]) -> Saved:
    """What `write` wrote, checked; a damaged folder is a CorruptFileError naming the file."""
    folder = Path(path)
    file = folder / SPEC_FILE
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder holding a saved recommender")
    if not file.is_file():
        raise InputError(f"{folder} is not a saved recommender: it has no {SPEC_FILE}")
    doc = _json(file)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CorruptFileError(f"{file} is corrupt: not an embedcraft recommender description")
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptFileError(f"{file} is corrupt: no format version")
    if version > FORMAT_VERSION:
        raise InputError(
            f"{file} was written by a newer embedcraft (format {version}); "
            "upgrade embedcraft to load it"
        )
    settings = {k: doc.get(k) for k in ("method", "encoder", "data_fingerprint")}
    workers = doc.get("workers")
    if not all(isinstance(v, str) for v in settings.values()) or not (
        workers is None or (isinstance(workers, int) and not isinstance(workers, bool))
    ):
        raise CorruptFileError(f"{file} is corrupt: a setting has the wrong type")
    settings["workers"] = workers
    histories, items = _json(folder / "histories.json"), _json(folder / "items.json")
    if not isinstance(histories, dict) or not all(_strings(h) for h in histories.values()):
        raise CorruptFileError(f"{folder / 'histories.json'} is corrupt: not lists of item ids")
    if not isinstance(items, dict) or not all(isinstance(t, str) for t in items.values()):
        raise CorruptFileError(f"{folder / 'items.json'} is corrupt: not item texts by id")
    try:
        model = _model(doc.get("model"), folder, _PREFIX)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        if isinstance(exc, CorruptFileError):
            raise
        detail = f"{exc} is missing" if isinstance(exc, KeyError) else str(exc)
        raise CorruptFileError(f"{file} is corrupt: {detail}") from None
    index = model.index_
    if not all(item in index for history in histories.values() for item in history):
        raise CorruptFileError(f"{folder / 'histories.json'} is corrupt: it names unknown items")
    return Saved(settings, model, histories, items)
