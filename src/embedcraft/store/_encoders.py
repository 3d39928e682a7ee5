"""The encoders of a collection: registered once, stored as specs, rebuilt on every open.

Each encoder gets a slot (a row of the `encoders` table) with its name, kind, width and spec
(class and parameters). Sparse encoders are refitted on the collection's texts whenever the
collection changes. A dense encoder is rebuilt from its spec, unless it holds learned state its
parameters do not give back (a distilled token table, a fitted IDF or SIF model): that one is
saved under `encoders/<slot>/` when it is registered, or when it is fitted on the first
documents added, so every later document and query, in any process, is encoded by the model
that encoded the stored ones."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone

from ..encoders.base import Encoder, _param_from_json, _param_to_json, encoder_type
from ..errors import CorruptFileError, DimensionMismatchError, InputError, UnknownEncoderError
from ..vectors import check_finite
from . import _schema as db

__all__ = ["EncoderSlot", "load_slots", "register_encoders"]


def _spec(encoder: Any) -> dict[str, Any]:
    return {
        "type": type(encoder).__name__,
        "name": encoder.name,
        "params": {k: _param_to_json(v) for k, v in encoder.get_params(deep=False).items()},
    }


def _resolve(item: str | Encoder) -> Any:
    if isinstance(item, str):
        from ..catalog import load_encoder

        return load_encoder(item)
    if not hasattr(item, "get_params") or not hasattr(item, "encode"):
        raise InputError(f"not an embedcraft encoder: {item!r}")
    return item


def _is_fitted(encoder: Any) -> bool:
    if not getattr(encoder, "needs_fit", False):
        return True
    return bool(getattr(encoder, "_is_fitted", lambda: True)())


def _has_learned_state(encoder: Any) -> bool:
    """Whether the encoder holds state its parameters do not rebuild (a fitted IDF, a token
    table made by distillation...): such an encoder must be saved with the collection."""
    get_state = getattr(encoder, "_get_state", None)
    if get_state is None or not getattr(encoder, "_is_fitted", lambda: True)():
        return False
    state, arrays = get_state()
    return bool(state or arrays)


class EncoderSlot:
    """One registered encoder of a collection and how the collection uses it."""

    def __init__(self, folder: Path, slot: int, name: str, sparse: bool, dim: int | None,
                 spec: dict[str, Any], encoder: Any = None) -> None:  # fmt: skip
        self.folder = folder
        self.slot = slot
        self.name = name
        self.sparse = sparse
        self._dim = dim
        self.spec = spec
        self._encoder = encoder

    @property
    def saved_folder(self) -> Path:
        return self.folder / "encoders" / str(self.slot)

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            if self.saved_folder.is_dir():
                from ..catalog import load_encoder

                self._encoder = load_encoder(self.saved_folder)
            else:
                try:
                    cls = encoder_type(self.spec["type"])
                    params = {k: _param_from_json(v) for k, v in self.spec["params"].items()}
                    encoder = cls(**params)
                except (KeyError, TypeError, ValueError) as exc:
                    raise CorruptFileError(
                        f"{self.folder}: the stored spec of encoder {self.name!r} is unusable "
                        f"({exc})"
                    ) from None
                encoder.name = self.name
                self._encoder = _fitted_or_from_catalog(encoder, self.folder)
        return self._encoder

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
        return _is_fitted(self.encoder)

    def fit_and_save(self, conn: sqlite3.Connection, texts: list[str]) -> None:
        """Fit a dense encoder that learns from text on `texts`, save it, record its width."""
        self.encoder.fit(texts)
        self.encoder.save(self.saved_folder)
        self._dim = int(self.encoder.dim)
        with db.transaction(conn):
            conn.execute("UPDATE encoders SET dim = ? WHERE slot = ?", (self._dim, self.slot))

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        """float32 document vectors, checked for width and finiteness before anything is stored."""
        vectors = np.asarray(self.encoder.encode(texts), dtype=np.float32)
        self._check(vectors, "document")
        return vectors

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 query vectors (zero vectors stay zero)."""
        encode = getattr(self.encoder, "encode_queries", self.encoder.encode)
        return self.prepare_queries(encode(texts))

    def prepare_queries(self, vectors: Any) -> np.ndarray:
        """Given query vectors checked (width, finite) and scaled to unit length."""
        if (
            isinstance(vectors, np.ndarray)
            and vectors.shape == (self.dim,)
            and vectors.dtype == np.float32
        ):  # one query vector, the hot path of a search service
            square = float(np.dot(vectors, vectors))
            if math.isfinite(square):
                return vectors[None] * np.float32(1.0 / math.sqrt(square) if square > 0 else 1.0)
        matrix = np.array(vectors, dtype=np.float32, ndmin=2)
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
        matrix = np.array(vectors, dtype=np.float32, ndmin=2)
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

    def fit_sparse(self, texts: list[str]) -> tuple[Any, sp.csr_matrix]:
        """A fresh copy of the sparse encoder fitted on `texts`, and their document matrix."""
        encoder = clone(self.encoder)
        encoder.name = self.name
        if not texts:
            return encoder, sp.csr_matrix((0, 0), dtype=np.float32)
        matrix = encoder.fit_transform(texts) if hasattr(encoder, "fit_transform") else None
        if matrix is None:
            matrix = encoder.fit(texts).encode(texts)
        return encoder, sp.csr_matrix(matrix, dtype=np.float32)

    @staticmethod
    def encode_sparse_queries(index: Any, texts: list[str]) -> sp.csr_matrix:
        if index.matrix.shape[0] == 0:
            return sp.csr_matrix((len(texts), 0), dtype=np.float32)
        encoder = index.encoder
        encode = getattr(encoder, "encode_queries", encoder.encode)
        return sp.csr_matrix(encode(texts), dtype=np.float32)

    def explain_dense(self, query: str, text: str, top: int = 5) -> dict[str, Any]:
        """The document's words whose contextual vectors lie closest to the query vector."""
        encode_tokens = getattr(self.encoder, "encode_tokens", None)
        if encode_tokens is None:
            return {"words": [], "note": f"{self.name} cannot attribute its score to words"}
        tokens = encode_tokens(text)
        if not hasattr(tokens, "words"):
            return {"words": [], "note": f"{self.name} cannot attribute its score to words"}
        words, vectors = tokens.words()
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


def _fitted_or_from_catalog(encoder: Any, folder: Path) -> Any:
    """An encoder rebuilt from its parameters, when that gives a usable one.

    Collections made before learned state was saved with them (e.g. `minilm-l6-static`, whose
    token table comes from a distillation) hold only the parameters; such an encoder is taken
    from the catalog under its name, the same model that encoded the stored documents.
    """
    if getattr(encoder, "sparse", False) or getattr(encoder, "_is_fitted", lambda: True)():
        return encoder
    if getattr(encoder, "needs_fit", False):
        return encoder  # fitted on the collection's first documents, then saved
    from ..catalog import load_encoder

    try:
        rebuilt = load_encoder(encoder.name)
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


def load_slots(conn: sqlite3.Connection, folder: Path) -> list[EncoderSlot]:
    slots = []
    for slot, name, sparse, dim, spec in conn.execute(
        "SELECT slot, name, sparse, dim, spec FROM encoders ORDER BY slot"
    ):
        try:
            parsed = json.loads(spec)
        except ValueError:
            raise CorruptFileError(f"{folder}: the stored spec of {name!r} is not JSON") from None
        slots.append(EncoderSlot(folder, slot, name, bool(sparse), dim, parsed))
    return slots


def register_encoders(
    conn: sqlite3.Connection, folder: Path, encoders: Sequence[str | Encoder]
) -> dict[str, Any]:
    """Record encoders not yet in the collection (allowed only while it holds no documents).

    Returns the encoder objects given, by name, so this session uses them as they are.
    """
    if isinstance(encoders, str):
        encoders = [encoders]
    known = {s.name for s in load_slots(conn, folder)}
    resolved = [_resolve(item) for item in encoders]
    names = [e.name for e in resolved]
    if len(set(names)) != len(names):
        raise InputError(f"an encoder is named twice: {names}")
    given = {e.name: e for e in resolved}
    new = [e for e in resolved if e.name not in known]
    if not new:
        return given
    (count,) = conn.execute("SELECT COUNT(*) FROM docs").fetchone()
    if count:
        raise InputError(
            f"the collection already holds {count} documents encoded by "
            f"{', '.join(sorted(known))}; it cannot take a new encoder "
            f"({', '.join(e.name for e in new)}): index into a new collection"
        )
    specs = {}
    for encoder in new:
        try:
            specs[encoder.name] = json.dumps(_spec(encoder))
        except TypeError:
            raise InputError(
                f"encoder {encoder.name!r} holds an in-memory object among its parameters; "
                "build it from saved files (e.g. a WordVectors folder path) so the collection "
                "can record how to rebuild it"
            ) from None
    with db.transaction(conn):
        for encoder in new:
            sparse = bool(getattr(encoder, "sparse", False))
            dim = None if sparse or not _is_fitted(encoder) else int(encoder.dim)
            cursor = conn.execute(
                "INSERT INTO encoders (name, sparse, dim, spec) VALUES (?, ?, ?, ?)",
                (encoder.name, int(sparse), dim, specs[encoder.name]),
            )
            slot = EncoderSlot(folder, int(cursor.lastrowid or 0), encoder.name, sparse, dim,
                               _spec(encoder), encoder)  # fmt: skip
            if not sparse and _has_learned_state(encoder):
                encoder.save(slot.saved_folder)  # learned state travels with the collection
    return given
