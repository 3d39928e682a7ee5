"""The catalog: short names for every encoder embedcraft can build, and `load_encoder`.

The catalog holds no names of its own: each encoder family module lists its named encoders in
`catalog_entries()` and may recognise saved model files in `open_path(path)`. Adding a family
means writing its module and adding it to `FAMILY_MODULES`.
"""

from __future__ import annotations

import difflib
import importlib
import os
from pathlib import Path
from types import ModuleType

from .encoders.base import SPEC_FILE, BaseEncoder
from .encoders.contract import CatalogEntry
from .encoders.hf_folder import EXPECTED_LAYOUT, hub_name_error
from .errors import InputError, UnknownEncoderError

__all__ = ["FAMILY_MODULES", "CatalogEntry", "list_encoders", "load_encoder", "register_families"]

FAMILY_MODULES = (
    "embedcraft.encoders.sparse",
    "embedcraft.encoders.pooling",
    "embedcraft.encoders.transformer",
    "embedcraft.encoders.distill",
    "embedcraft.encoders.image",
)
"""Every encoder family, in catalog order. A family module defines `catalog_entries()` and
`open_path(path) -> encoder | None` (the model files it recognises, else None)."""


def register_families() -> list[ModuleType]:
    """Import every family module (so saved encoders of any family load); returns them."""
    return [importlib.import_module(name) for name in FAMILY_MODULES]


def list_encoders() -> list[CatalogEntry]:
    """Every catalog entry, in a stable order."""
    return [entry for family in register_families() for entry in family.catalog_entries()]


def _entries_by_name() -> dict[str, CatalogEntry]:
    return {entry.name: entry for entry in list_encoders()}


def load_encoder(name_or_path: str | os.PathLike[str]) -> BaseEncoder:
    """Build an encoder by catalog name, or load one from a path.

    A path wins when it exists: a folder holding a saved encoder loads it; otherwise each
    family is asked whether it recognises the folder or file (word vectors give the mean of
    their vectors; an .onnx model with its tokenizer gives a transformer, and so does a local
    sentence-transformers / Hugging Face folder, exported to ONNX on first use). An unknown
    name raises UnknownEncoderError listing the close matches; a hub name ("org/model") that is
    not a local folder says that nothing is downloaded and what folder to give instead.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir() and (path / SPEC_FILE).is_file():
        return BaseEncoder.load(path)
    if path.exists():
        for family in register_families():
            encoder: BaseEncoder | None = family.open_path(path)
            if encoder is not None:
                return encoder
        if path.is_dir() and any(path.glob("*.onnx")):
            raise InputError(
                f"{path} holds an .onnx model that no encoder family recognises: a text "
                "transformer needs its tokenizer.json (or a WordPiece vocab.txt) beside it"
            )
        if path.is_dir():
            raise UnknownEncoderError(
                f"{path} is a folder but not a saved encoder (no {SPEC_FILE}), nor a model "
                "folder embedcraft recognises (word vectors with wordvectors.json, an .onnx "
                f"model with its tokenizer, or {EXPECTED_LAYOUT})"
            )
    entries = _entries_by_name()
    entry = entries.get(text) or entries.get(text.lower())
    if entry is not None:
        return entry.build()
    hub = hub_name_error(text)
    if hub is not None:
        raise hub
    close = difflib.get_close_matches(text.lower(), entries, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownEncoderError(
        f"unknown encoder {text!r}: {hint}Known names: {', '.join(entries)} "
        "(or give the path of a saved encoder folder; `embedcraft models` lists them)"
    )
