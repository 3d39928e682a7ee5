"""The encoder contract: what every encoder family promises, and the shared machinery behind it.

An encoder turns a list of texts into one row per text: float32 numpy for dense encoders, float32
scipy CSR for sparse ones. Encoders follow scikit-learn's estimator rules (parameters only in
`__init__`, learned state ending in `_`, `fit` returns self, `transform` = `encode`), so they drop
into a `Pipeline`. Fitted encoders save to a folder and load back with `load_encoder(path)`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm.auto import tqdm

from .._files import atomic_directory, load_npy, parse_json, read_text
from ..errors import CorruptFileError, InputError, NotFittedError
from ..text import TextAnalyzer

__all__ = ["BaseEncoder", "Encoder", "Vectors", "as_texts", "encoder_type", "fit_if_needed"]

Vectors = np.ndarray | sp.csr_matrix
"""What `encode` returns: a (n, dim) float32 array, or a float32 CSR matrix for sparse encoders."""

SPEC_FILE = "encoder.json"
FORMAT = "embedcraft.encoder"
FORMAT_VERSION = 1

_ENCODER_TYPES: dict[str, type[BaseEncoder]] = {}


@runtime_checkable
class Encoder(Protocol):
    """What search, evaluation and the CLI rely on, whichever family made the vectors."""

    name: str
    sparse: bool

    @property
    def dim(self) -> int: ...

    def fit(self, corpus: Iterable[str], y: Any = None) -> Self: ...

    def encode(
        self, texts: str | Sequence[str], *, batch_size: int | None = None, progress: bool = False
    ) -> Vectors: ...

    def save(self, path: str | os.PathLike[str]) -> None: ...

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self: ...


def as_texts(texts: Any) -> list[str]:
    """Check and return the input as a list of str; a single string becomes a list of one.

    None, bytes or any other non-string item raises TypeError naming the index of the bad item.
    """
    if isinstance(texts, str):
        return [texts]
    if texts is None:
        raise TypeError("expected a string or a list of strings, got None")
    if isinstance(texts, bytes | bytearray):
        raise TypeError(
            "expected str, got bytes: decode the bytes first (e.g. data.decode('utf-8'))"
        )
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(
            f"expected a string or a list of strings, got {type(texts).__name__}"
        ) from None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            shown = repr(item)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise TypeError(f"item {i} is {type(item).__name__}, not str: {shown}")
    return items


def encoder_type(type_name: str) -> type[BaseEncoder]:
    """The encoder class saved under `type_name` (only embedcraft's own classes are accepted)."""
    from . import _register_all

    _register_all()
    try:
        return _ENCODER_TYPES[type_name]
    except KeyError:
        raise CorruptFileError(
            f"unknown encoder type {type_name!r} in a saved encoder; known types: "
            f"{', '.join(sorted(_ENCODER_TYPES))}"
        ) from None


class BaseEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Shared behaviour: input checks, batching, progress, `transform`, save and load.

    A subclass sets the class attributes and implements `_encode` (one batch of checked texts),
    `fit` (when `needs_fit`), `dim`, and `_get_state` / `_set_state` for saving.
    """

    name: str = "encoder"
    kind: ClassVar[str] = "dense"
    sparse: ClassVar[bool] = False
    needs_fit: ClassVar[bool] = True
    metric: ClassVar[str] = "cosine"
    """How vectors are compared: "cosine" or "dot" (BM25 scores are dot products)."""
    default_batch_size: ClassVar[int] = 1024
    _fitted_attribute: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _ENCODER_TYPES[cls.__name__] = cls

    # ----------------------------------------------------------------- the contract
    @property
    def dim(self) -> int:
        """Width of the vectors (for vocabulary-based sparse encoders: the fitted vocabulary)."""
        raise NotImplementedError

    def fit(self, corpus: Iterable[str], y: Any = None) -> Self:
        """Learn from a corpus; a no-op for encoders that need no fitting. Returns self."""
        as_texts(corpus)
        return self

    def encode(
        self, texts: str | Sequence[str], *, batch_size: int | None = None, progress: bool = False
    ) -> Vectors:
        """Vectors of `texts`, one row each, in input order (a single string gives one row).

        An empty list gives a (0, dim) result; an empty string gives a zero vector for the
        sparse encoders.
        """
        return self._encode_batched(self._encode, texts, batch_size, progress)

    def encode_queries(
        self, texts: str | Sequence[str], *, batch_size: int | None = None, progress: bool = False
    ) -> Vectors:
        """Vectors for search queries; equal to `encode` unless the encoder is asymmetric (BM25)."""
        return self.encode(texts, batch_size=batch_size, progress=progress)

    def transform(self, X: Sequence[str]) -> Vectors:
        """scikit-learn's name for `encode`."""
        return self.encode(X)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted encoder to folder `path` atomically (a folder there is replaced)."""
        self._check_fitted()
        state, arrays = self._get_state()
        spec = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "type": type(self).__name__,
            "name": self.name,
            "params": {k: _param_to_json(v) for k, v in self.get_params(deep=False).items()},
            "state": state,
            "arrays": sorted(arrays),
        }
        with atomic_directory(path) as tmp:
            for array_name, array in arrays.items():
                np.save(tmp / f"{array_name}.npy", array, allow_pickle=False)
            (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Load an encoder written by `save`; the class must match the one saved."""
        folder = Path(path)
        spec = read_spec(folder)
        enc_cls = encoder_type(spec["type"])
        if not issubclass(enc_cls, cls):
            raise InputError(f"{folder} holds a {enc_cls.__name__}, not a {cls.__name__}")
        try:
            params = {k: _param_from_json(v) for k, v in spec["params"].items()}
            encoder = enc_cls(**params)
        except (TypeError, ValueError) as exc:
            raise CorruptFileError(f"{folder / SPEC_FILE}: bad parameters: {exc}") from exc
        encoder.name = str(spec.get("name", enc_cls.name))
        arrays = {name: load_npy(folder / f"{name}.npy") for name in spec["arrays"]}
        try:
            encoder._set_state(spec["state"], arrays)
        except (KeyError, ValueError, IndexError, TypeError, AttributeError) as exc:
            raise CorruptFileError(f"{folder}: saved state is inconsistent: {exc}") from exc
        return encoder

    # ----------------------------------------------------------------- for subclasses
    def _encode(self, texts: list[str]) -> Vectors:
        raise NotImplementedError

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Learned state as (JSON-ready values, named arrays)."""
        return {}, {}

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore what `_get_state` returned."""

    def _is_fitted(self) -> bool:
        return not self.needs_fit or hasattr(self, self._fitted_attribute)

    def __sklearn_is_fitted__(self) -> bool:
        return self._is_fitted()

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(
                f"{type(self).__name__} '{self.name}' is not fitted yet: call .fit(corpus) first "
                "(or load a fitted one with embedcraft.load_encoder(path))"
            )

    def _empty(self) -> Vectors:
        if self.sparse:
            return sp.csr_matrix((0, self.dim), dtype=np.float32)
        return np.zeros((0, self.dim), dtype=np.float32)

    def _encode_batched(
        self, encode_batch: Any, texts: Any, batch_size: int | None, progress: bool
    ) -> Vectors:
        """Check input, then run `encode_batch` over batches with an optional progress bar."""
        items = as_texts(texts)
        self._check_fitted()
        if not items:
            return self._empty()
        size = batch_size or self.default_batch_size
        if size < 1:
            raise InputError(f"batch_size must be >= 1, got {size}")
        if len(items) <= size and not progress:
            return encode_batch(items)
        parts = []
        with tqdm(total=len(items), unit="text", disable=not progress, desc=self.name) as bar:
            for start in range(0, len(items), size):
                batch = items[start : start + size]
                parts.append(encode_batch(batch))
                bar.update(len(batch))
        if self.sparse:
            return sp.vstack(parts, format="csr", dtype=np.float32)
        return np.concatenate(parts, axis=0)


def read_spec(folder: Path) -> dict[str, Any]:
    """The `encoder.json` of a saved encoder folder, checked."""
    file = folder / SPEC_FILE
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder holding a saved encoder")
    if not file.is_file():
        raise InputError(f"{folder} is not a saved embedcraft encoder: it has no {SPEC_FILE}")
    spec = parse_json(read_text(file, error=CorruptFileError), str(file), error=CorruptFileError)
    if not isinstance(spec, dict) or spec.get("format") != FORMAT or "type" not in spec:
        raise CorruptFileError(f"{file} is not an embedcraft encoder description")
    spec.setdefault("params", {})
    spec.setdefault("state", {})
    spec.setdefault("arrays", [])
    version = spec.get("format_version", 0)
    if (
        not isinstance(spec["type"], str)
        or not isinstance(version, int)
        or not isinstance(spec["params"], dict)
        or not isinstance(spec["state"], dict)
        or not isinstance(spec["arrays"], list)
        or not all(isinstance(a, str) and a.isidentifier() for a in spec["arrays"])
    ):
        raise CorruptFileError(f"{file} is corrupt: a field has the wrong type")
    if version > FORMAT_VERSION:
        raise InputError(
            f"{file} was written by a newer embedcraft (format {spec['format_version']}); "
            "upgrade embedcraft to load it"
        )
    return spec


def _param_to_json(value: Any) -> Any:
    if isinstance(value, TextAnalyzer):
        return {"$analyzer": value.to_dict()}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _param_from_json(value: Any) -> Any:
    if isinstance(value, dict) and "$analyzer" in value:
        return TextAnalyzer.from_dict(value["$analyzer"])
    return value


def fit_if_needed(encoder: Encoder, corpus: Sequence[str]) -> bool:
    """Fit `encoder` on `corpus` when it needs fitting and is not fitted yet; True when it did."""
    needs = getattr(encoder, "needs_fit", False)
    fitted = getattr(encoder, "_is_fitted", lambda: True)()
    if needs and not fitted:
        encoder.fit(corpus)
        return True
    return False
