"""The encoders of a collection: registered once, stored as specs, rebuilt on every open.

Each encoder gets a slot (a row of the `encoders` table) with its name, kind, width and spec
(class, name and parameters, from `to_spec()`). Sparse encoders are refitted on the collection's
texts whenever the collection changes. A dense encoder is rebuilt from its spec, unless it holds
learned state its parameters do not give back (`has_learned_state()`: a distilled token table, a
fitted IDF or SIF model): that one is saved under `encoders/<slot>/` when it is registered, or
when it is fitted on the first documents added, so every later document and query, in any
process, is encoded by the model that encoded the stored ones. Both backends register and
rebuild encoders through this module, and only through the encoder contract."""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone

from ..encoders.base import BaseEncoder, Encoder
from ..encoders.contract import EncoderSpec, InputKind
from ..encoders.transformer import TransformerEncoder
from ..errors import CorruptFileError, DimensionMismatchError, InputError, UnknownEncoderError
from ..vectors import check_finite
from . import _schema as db

__all__ = [
    "EncoderSlot",
    "NewEncoder",
    "encoder_folder",
    "load_slots",
    "new_encoders",
    "register_encoders",
    "resolve_encoders",
]


def resolve_encoders(encoders: str | Sequence[str | Encoder]) -> list[BaseEncoder]:
    """The encoders named or given (catalog names, saved folders, encoder objects), checked:
    each an embedcraft encoder, no name twice."""
    items = [encoders] if isinstance(encoders, str) else list(encoders)
    resolved = [_resolve(item) for item in items]
    names = [e.name for e in resolved]
    if len(set(names)) != len(names):
        raise InputError(f"an encoder is named twice: {names}")
    kinds = {e.input_kind for e in resolved}
    if len(kinds) > 1:
        read = ", ".join(f"{e.name} reads {e.input_kind}" for e in resolved)
        raise InputError(
            f"a collection's encoders must all read the same kind of input ({read}): make one "
            "collection per kind"
        )
    return resolved


def _resolve(item: str | os.PathLike[str] | Encoder) -> BaseEncoder:
    if isinstance(item, str | os.PathLike):
        from ..catalog import load_encoder

        return load_encoder(item)
    if not isinstance(item, BaseEncoder):
        raise InputError(
            f"not an embedcraft encoder: {item!r} (give a catalog name, a saved encoder folder "
            "or a BaseEncoder)"
        )
    return item


@dataclass(frozen=True)
class NewEncoder:
    """What a backend records for an encoder it registers: one row of its `encoders` table."""

    encoder: BaseEncoder
    spec: EncoderSpec
    """{"type", "name", "params"}: how to rebuild the encoder (its learned state aside)."""
    dim: int | None
    """The width of a fitted dense encoder; None for sparse and unfitted ones."""
    save_whole: bool
    """The encoder holds learned state its parameters do not give back: save it whole."""

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def sparse(self) -> bool:
        return self.encoder.sparse

    @property
    def spec_json(self) -> str:
        return json.dumps(self.spec)


def new_encoders(resolved: list[BaseEncoder], known: set[str], documents: int) -> list[NewEncoder]:
    """The encoders of `resolved` not yet registered (`known`), described for storage.

    A collection holding documents takes no new encoder: its documents have no vectors of it.
    """
    new = [e for e in resolved if e.name not in known]
    if new and documents:
        raise InputError(
            f"the collection already holds {documents} documents encoded by "
            f"{', '.join(sorted(known))}; it cannot take a new encoder "
            f"({', '.join(e.name for e in new)}): index into a new collection"
        )
    return [_describe(encoder) for encoder in new]


def _describe(encoder: BaseEncoder) -> NewEncoder:
    """The spec, width and saving need of one encoder; InputError when it cannot be stored."""
    try:
        full, _ = encoder.to_spec()
        spec = {"type": full["type"], "name": full["name"], "params": full["params"]}
        json.dumps(spec)
        save_whole = not encoder.sparse and encoder.has_learned_state()
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(
            f"encoder {encoder.name!r} cannot be stored: {exc}; build it from saved files (save "
            "in-memory word vectors to a folder and pass its path) so the collection can record "
            "how to rebuild it"
        ) from None
    dim = None if encoder.sparse or not encoder.is_fitted() else int(encoder.dim)
    return NewEncoder(encoder, spec, dim, save_whole)


def encoder_folder(folder: Path, slot: int) -> Path:
    """The folder of slot `slot`'s encoder saved whole, under a collection's `folder`."""
    return folder / "encoders" / str(slot)


class EncoderSlot:
    """One registered encoder of a collection and how the collection uses it."""

    def __init__(self, folder: Path, slot: int, name: str, sparse: bool, dim: int | None,
                 spec: Any, encoder: BaseEncoder | None = None) -> None:  # fmt: skip
        self.folder = folder
        self.slot = slot
        self.name = name
        self.sparse = sparse
        self._dim = dim
        self.spec = spec
        self._encoder = encoder

    @property
    def saved_folder(self) -> Path:
        """Where the encoder is saved whole when it holds learned state."""
        return encoder_folder(self.folder, self.slot)

    @property
    def encoder(self) -> BaseEncoder:
        """The encoder: as given in this session, else loaded whole or rebuilt from its spec."""
        if self._encoder is None:
            if self.saved_folder.is_dir():
                self._encoder = BaseEncoder.load(self.saved_folder)
            else:
                self._encoder = _fitted_or_from_catalog(self._from_spec(), self.folder)
        return self._encoder

    def _from_spec(self) -> BaseEncoder:
        """The encoder its stored spec describes (this version's, or the previous one's
        {"type", "name", "params"}), under the slot's name."""
        where = f"{self.folder}: the stored spec of encoder {self.name!r}"
        if not isinstance(self.spec, dict):
            raise CorruptFileError(f"{where} is not an encoder description")
        return BaseEncoder.from_spec({**self.spec, "name": self.name}, where=where)

    @property
    def width(self) -> int | None:
        """The stored vector width; None for sparse encoders and unfitted dense ones."""
        return self._dim

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise InputError(f"encoder {self.name!r} has no width yet: add documents first")
        return self._dim

    def is_fitted(self) -> bool:
        return self.encoder.is_fitted()

    def fit_and_save(self, conn: sqlite3.Connection, texts: list[str]) -> None:
        """Fit a dense encoder that learns from text on `texts`, save it, record its width."""
        self.encoder.fit(texts)
        self.encoder.save(self.saved_folder)
        self._dim = int(self.encoder.dim)
        with db.transaction(conn):
            conn.execute("UPDATE encoders SET dim = ? WHERE slot = ?", (self._dim, self.slot))

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        """float32 document vectors, checked for width and finiteness before anything is stored."""
        if self.encoder.input_kind == InputKind.TEXT:  # with the model's document prompt
            vectors = np.asarray(self.encoder.encode_documents(texts), dtype=np.float32)
        else:  # an image document is the path of its file
            encoded = self.encoder.encode_with_report(texts)
            self._refuse_unread(encoded.report.failed, "document")
            vectors = np.asarray(encoded.vectors, dtype=np.float32)
        self._check(vectors, "document")
        return vectors

    def _refuse_unread(self, failed: dict[int, str], what: str) -> None:
        """Refuse inputs the encoder could not read (an image file): never store or search
        with the zero vector they got."""
        if failed:
            index, why = min(failed.items())
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise InputError(
                f"encoder {self.name!r} reads {self.encoder.input_kind}s and could not read "
                f"{what} {index}{more}: {why}"
            )

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 query vectors (zero vectors stay zero)."""
        if self.encoder.input_kind == InputKind.TEXT:
            return self.prepare_queries(self.encoder.encode_queries(texts))
        encoded = self.encoder.encode_with_report(texts)  # an image query is a path
        self._refuse_unread(encoded.report.failed, "query")
        return self.prepare_queries(encoded.vectors)

    def prepare_queries(self, vectors: Any) -> np.ndarray:
        """Given query vectors checked (width, finite) and scaled to unit length."""
        if (
            isinstance(vectors, np.ndarray)
            and vectors.shape == (self.dim,)
            and vectors.dtype == np.float32
        ):  # one query vector, the hot path of a search service
            square = float(np.dot(vectors, vectors))
            if math.isfinite(square):
                scale = np.float32(1.0 / math.sqrt(square) if square > 0 else 1.0)
                single: np.ndarray = vectors[None] * scale
                return single
        matrix = np.asarray(vectors, dtype=np.float32)  # no copy of a float32 matrix
        if matrix.ndim < 2:
            matrix = matrix.reshape(1, -1) if matrix.ndim == 1 else matrix.reshape(1, 1)
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            self._check(matrix, "query")  # raises, naming the widths
        norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))[:, None]
        if not np.isfinite(norms).all():  # a NaN or inf anywhere makes its row's norm non-finite
            self._check(matrix, "query")  # says where; float32 overflow of the sum falls through
            norms = np.linalg.norm(matrix.astype(np.float64), axis=1)[:, None].astype(np.float32)
        np.divide(matrix, norms, out=matrix, where=norms > 0)
        return matrix

    def given_documents(self, vectors: Any, n: int) -> np.ndarray:
        """Document vectors made elsewhere, checked like encoded ones."""
        matrix = np.asarray(vectors, dtype=np.float32)  # no copy of a float32 matrix
        if matrix.ndim < 2:
            matrix = matrix.reshape(1, -1) if matrix.ndim == 1 else matrix.reshape(1, 1)
        if matrix.shape[0] != n:
            raise InputError(f"{n} documents but {matrix.shape[0]} vectors for {self.name!r}")
        self._check(matrix, "document")
        return matrix

    def _check(self, vectors: np.ndarray, what: str) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"encoder {self.name!r} gave {what} vectors of shape {vectors.shape}, "
                f"the collection stores {self.dim}-dim vectors"
            )
        if not np.isfinite(vectors).all():
            check_finite(vectors, f"{what} vectors of {self.name}")  # says where

    def fit_sparse(self, texts: list[str]) -> tuple[BaseEncoder, sp.csr_matrix]:
        """A fresh copy of the sparse encoder fitted on `texts`, and their document matrix."""
        encoder: BaseEncoder = clone(self.encoder)  # keeps the name: it is a parameter
        if not texts:
            return encoder, sp.csr_matrix((0, 0), dtype=np.float32)
        return encoder, sp.csr_matrix(encoder.fit_transform(texts), dtype=np.float32)

    def explain_dense(self, query: str, text: str, top: int = 5) -> dict[str, Any]:
        """The document's words whose contextual vectors lie closest to the query vector."""
        encoder = self.encoder
        if not isinstance(encoder, TransformerEncoder):
            return {"words": [], "note": f"{self.name} cannot attribute its score to words"}
        words, vectors = encoder.encode_tokens(text).words()
        if not words:
            return {"words": []}
        q = self.encode_queries([query])[0]
        norms = np.linalg.norm(vectors, axis=1)
        scores = (vectors @ q) / np.where(norms > 0, norms, 1.0)
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        best: dict[str, float] = {}
        for word, score in zip(words, scores, strict=True):
            key = word.lower()
            if not any(ch.isalnum() for ch in key) or key in ENGLISH_STOP_WORDS:
                continue  # punctuation and function words explain nothing to a reader
            best[key] = max(best.get(key, -1.0), float(score))
        order = sorted(best.items(), key=lambda item: -item[1])[:top]
        return {"words": [{"word": w, "similarity": s} for w, s in order]}


_RENAMED = {"minilm-l6-static": "minilm-l6-distilled"}
"""Catalog names whose model changed since collections held only parameters: such collections
were encoded by the model now under the new name (minilm-l6-static was the distilled one)."""


def _fitted_or_from_catalog(encoder: BaseEncoder, folder: Path) -> BaseEncoder:
    """An encoder rebuilt from its parameters, when that gives a usable one.

    Collections made before learned state was saved with them (e.g. `minilm-l6-static`, whose
    token table comes from a distillation) hold only the parameters; such an encoder is taken
    from the catalog under its name, the same model that encoded the stored documents.
    """
    if encoder.sparse or encoder.needs_fit or encoder.is_fitted():
        return encoder  # usable, or fitted on the collection's first documents, then saved
    from ..catalog import load_encoder

    try:
        rebuilt = load_encoder(_RENAMED.get(encoder.name, encoder.name))
    except UnknownEncoderError:
        raise CorruptFileError(
            f"{folder}: encoder {encoder.name!r} was not saved with the collection and cannot "
            "be rebuilt from its parameters; re-index into a new collection"
        ) from None
    if type(rebuilt) is not type(encoder):
        raise CorruptFileError(
            f"{folder}: encoder {encoder.name!r} was not saved with the collection, and the "
            f"catalog's {encoder.name!r} is a {type(rebuilt).__name__}, not a "
            f"{type(encoder).__name__}; re-index into a new collection"
        )
    return rebuilt


def load_slots(
    conn: sqlite3.Connection, folder: Path, given: dict[str, BaseEncoder] | None = None
) -> list[EncoderSlot]:
    """The slots of a SQLite collection; a dense encoder in `given` is used as it is."""
    slots = []
    for slot, name, sparse, dim, spec in conn.execute(
        "SELECT slot, name, sparse, dim, spec FROM encoders ORDER BY slot"
    ):
        try:
            parsed = json.loads(spec)
        except ValueError:
            raise CorruptFileError(f"{folder}: the stored spec of {name!r} is not JSON") from None
        mine = None if sparse else (given or {}).get(name)
        slots.append(EncoderSlot(folder, slot, name, bool(sparse), dim, parsed, mine))
    return slots


def register_encoders(
    conn: sqlite3.Connection, folder: Path, encoders: str | Sequence[str | Encoder]
) -> dict[str, BaseEncoder]:
    """Record encoders not yet in a SQLite collection (only while it holds no documents).

    Returns the encoder objects given, by name, so this session uses them as they are.
    """
    resolved = resolve_encoders(encoders)
    known = {name for (name,) in conn.execute("SELECT name FROM encoders")}
    (count,) = conn.execute("SELECT COUNT(*) FROM docs").fetchone()
    new = new_encoders(resolved, known, int(count))
    with db.transaction(conn):
        for entry in new:
            cursor = conn.execute(
                "INSERT INTO encoders (name, sparse, dim, spec) VALUES (?, ?, ?, ?)",
                (entry.name, int(entry.sparse), entry.dim, entry.spec_json),
            )
            if entry.save_whole:  # learned state travels with the collection
                entry.encoder.save(encoder_folder(folder, int(cursor.lastrowid or 0)))
    return {e.name: e for e in resolved}
