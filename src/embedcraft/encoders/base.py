"""The shared machinery behind the encoder contract: input checks, one batching loop, save/load.

An encoder turns a list of inputs into one row per input: float32 numpy for dense encoders,
float32 scipy CSR for sparse ones. Encoders follow scikit-learn's estimator rules (parameters only
in `__init__`, `name` included; learned state ending in `_`; `fit` returns self; `transform` =
`encode`), so they drop into a `Pipeline` and survive `clone`. Fitted encoders save to a folder
and load back with `load_encoder(path)`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm.auto import tqdm

from .._files import atomic_directory, load_npy, parse_json, read_text
from ..errors import CorruptFileError, InputError, NotFittedError
from ..text import TextAnalyzer
from ..vectors import normalize as normalize_rows
from .contract import (
    CacheSetting,
    Encoded,
    Encoder,
    EncodeReport,
    EncoderKind,
    EncoderSpec,
    InputKind,
    Metric,
    Vectors,
    as_texts,
    is_single_input,
)

__all__ = [
    "BaseEncoder",
    "EncodeReport",
    "Encoded",
    "Encoder",
    "EncoderKind",
    "InputKind",
    "Vectors",
    "as_texts",
    "check_batch_size",
    "encoder_type",
    "fit_if_needed",
]

SPEC_FILE = "encoder.json"
FORMAT = "embedcraft.encoder"
FORMAT_VERSION = 1

_ENCODER_TYPES: dict[str, type[BaseEncoder]] = {}
_WORDS = re.compile(r"\w+")


def encoder_type(type_name: str) -> type[BaseEncoder]:
    """The encoder class saved under `type_name` (only embedcraft's own classes are accepted)."""
    from ..catalog import register_families

    register_families()
    try:
        return _ENCODER_TYPES[type_name]
    except KeyError:
        raise CorruptFileError(
            f"unknown encoder type {type_name!r} in a saved encoder; known types: "
            f"{', '.join(sorted(_ENCODER_TYPES))}"
        ) from None


def check_batch_size(batch_size: int | None, default: int) -> int:
    """`batch_size`, or `default` when None; anything under 1 is refused."""
    size = default if batch_size is None else batch_size
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size!r}")
    return int(size)


class BaseEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Shared behaviour: input checks, the batching loop, progress, `transform`, save and load.

    A family sets the class attributes and implements `_encode` (one batch of checked inputs) or
    `_encode_reported` (the same, with what the batch met), `fit` (when `needs_fit`), `dim`, and
    `_get_state` / `_set_state` for saving. `_prepare` and `_plan` let a family tokenize once and
    group inputs into batches its own way (the transformer batches by token length).
    """

    name: str = "encoder"
    kind: ClassVar[EncoderKind] = EncoderKind.SPARSE
    input_kind: ClassVar[InputKind] = InputKind.TEXT
    sparse: ClassVar[bool] = False
    needs_fit: ClassVar[bool] = True
    metric: ClassVar[Metric] = "cosine"
    """How vectors are compared: "cosine" or "dot" (BM25 scores are dot products)."""
    default_batch_size: ClassVar[int] = 1024
    worth_caching: ClassVar[bool] = False
    """Whether the embedding cache is worth it: looking a vector up must cost less than making
    it. True for neural networks (transformers, image models, image decoding); sparse and
    static encoders compute a row faster than a lookup and always bypass the cache."""
    token_unit: ClassVar[str] = "word tokens"
    """What `count_tokens` counts, in words a user reads (shown by the server's /v1/models)."""
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

    def is_fitted(self) -> bool:
        """Whether `encode` can run: the encoder needs no fitting, or has been fitted."""
        return not self.needs_fit or hasattr(self, self._fitted_attribute)

    def fit(self, corpus: Iterable[Any], y: Any = None) -> Self:
        """Learn from a corpus; a no-op for encoders that need no fitting. Returns self."""
        self._check_inputs(corpus)
        return self

    def encode(
        self,
        inputs: Any,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        cache: CacheSetting = None,
        normalize_embeddings: bool = False,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool | None = None,
        **unsupported: Any,
    ) -> Vectors:
        """Vectors of `inputs`, one row each, in input order.

        A single input (a str; for image encoders a path, bytes, an image) gives one 1-D (dim,)
        vector, as sentence-transformers does; a list gives (n, dim) rows, a list of one
        (1, dim) and an empty list (0, dim). Sparse encoders return a CSR matrix, 1 row for a
        single input (scipy matrices are 2-D). What the call met (unknown words, truncated
        inputs) is in `last_report`, or returned by `encode_with_report`. `cache`: True for
        the disk embedding cache, a cache object, False for none; None (the default) follows
        an enclosing `embedcraft.caching(...)` block, else no cache (see `embedcraft.cache`).

        sentence-transformers' arguments: `normalize_embeddings` scales rows to unit length
        (zero rows stay zero), `show_progress_bar` is `progress`, `convert_to_numpy=True` also
        turns sparse rows dense. Those embedcraft cannot honour (`convert_to_tensor`,
        `device`, `precision`, `output_value`, `truncate_dim`, prompts, `pool`) raise
        TypeError naming what to use instead.
        """
        _check_familiar(self.sparse, convert_to_numpy, unsupported)
        vectors = self.encode_with_report(
            inputs, batch_size=batch_size, progress=progress or bool(show_progress_bar), cache=cache
        ).vectors
        return self._shaped(inputs, vectors, normalize_embeddings, convert_to_numpy)

    def encode_with_report(
        self,
        inputs: Any,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        cache: CacheSetting = None,
    ) -> Encoded:
        """`encode`, and the report of this call over all its batches (also kept in
        `last_report`). Neither depends on `batch_size`. The vectors are always 2-D, one row
        per input (a single input too), as the report's input positions count them."""
        from ..cache import encode_cached, resolve_cache

        store = resolve_cache(cache)
        if store is None or not self.worth_caching:
            encoded = self._run_batches(self._encode_reported, inputs, batch_size, progress)
        else:
            items = self._check_inputs(inputs)
            self._check_fitted()
            check_batch_size(batch_size, self.default_batch_size)
            encoded = encode_cached(
                self,
                items,
                store,
                lambda todo: self._run_batches(self._encode_reported, todo, batch_size, progress),
            )
        self.last_report = encoded.report
        return encoded

    def encode_queries(
        self,
        inputs: Any,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        cache: CacheSetting = None,
        normalize_embeddings: bool = False,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool | None = None,
        **unsupported: Any,
    ) -> Vectors:
        """Vectors for search queries, with `encode`'s arguments and shapes; equal to `encode`
        unless the encoder is asymmetric (BM25)."""
        _check_familiar(self.sparse, convert_to_numpy, unsupported)
        vectors = self._query_rows(inputs, batch_size, progress or bool(show_progress_bar), cache)
        return self._shaped(inputs, vectors, normalize_embeddings, convert_to_numpy)

    def encode_documents(
        self,
        inputs: Any,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        cache: CacheSetting = None,
        normalize_embeddings: bool = False,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool | None = None,
        **unsupported: Any,
    ) -> Vectors:
        """Vectors for documents to search, with `encode`'s arguments and shapes; equal to
        `encode` unless the model has a "document" prompt (transformer folders)."""
        _check_familiar(self.sparse, convert_to_numpy, unsupported)
        vectors = self._document_rows(
            inputs, batch_size, progress or bool(show_progress_bar), cache
        )
        return self._shaped(inputs, vectors, normalize_embeddings, convert_to_numpy)

    def cache_key_bytes(self, item: Any) -> bytes | None:
        """The bytes that identify a checked input for the embedding cache (a text's UTF-8);
        None: never cache this input."""
        text: str = item
        return text.encode("utf-8", "surrogatepass")

    def count_tokens(self, inputs: Any) -> list[int]:
        """Tokens per input as this encoder splits them, untruncated (words, by default)."""
        return [len(_WORDS.findall(text)) for text in self._check_inputs(inputs)]

    def transform(self, X: Any) -> Vectors:
        """scikit-learn's name for `encode`, always 2-D as scikit-learn expects (one row per
        input, a single string too)."""
        return self.encode_with_report(X).vectors

    @property
    def last_oov(self) -> EncodeReport | None:
        """The report of the last `encode` (kept for code written against earlier versions)."""
        return self.__dict__.get("last_report")

    @property
    def last_truncation(self) -> EncodeReport | None:
        """The report of the last `encode` (kept for code written against earlier versions)."""
        return self.__dict__.get("last_report")

    # ----------------------------------------------------------------- saving
    def to_spec(self) -> tuple[EncoderSpec, dict[str, np.ndarray]]:
        """The saved description (class, name, parameters, learned values) and learned arrays.

        `BaseEncoder.from_spec` rebuilds an equal encoder from them in any process. An unfitted
        encoder gives its parameters alone (what a collection records before fitting it).
        """
        state, arrays = self._get_state() if self.is_fitted() else ({}, {})
        spec = {
            "type": type(self).__name__,
            "name": self.name,
            "params": {k: _param_to_json(v) for k, v in self.get_params(deep=False).items()},
            "state": state,
            "arrays": sorted(arrays),
        }
        return spec, arrays

    def model_files(self) -> list[Path]:
        """The files whose bytes decide this encoder's vectors (an ONNX model, a tokenizer);
        none for encoders whose state is all in `to_spec()`."""
        return []

    def fingerprint(self) -> str:
        """A digest of everything that decides the vectors: class, vector-shaping parameters,
        learned state and arrays, model file bytes (see `embedcraft.encoders.fingerprint`).

        Remembered until a parameter or a learned attribute is replaced (not mutated in place).
        """
        from .fingerprint import encoder_fingerprint

        params = self.get_params(deep=False)
        state = [(k, id(v)) for k, v in vars(self).items() if k.endswith("_") and k[0] != "_"]
        token = (json.dumps(params, sort_keys=True, default=_param_token), tuple(state))
        memo = self.__dict__.get("_fingerprint_memo")
        if memo is None or memo[0] != token:
            memo = (token, encoder_fingerprint(self))
            self.__dict__["_fingerprint_memo"] = memo
        fingerprint: str = memo[1]
        return fingerprint

    def has_learned_state(self) -> bool:
        """Whether the encoder holds state its parameters do not give back (a fitted IDF, a
        distilled token table): such an encoder must be saved whole, not rebuilt from params."""
        if not self.is_fitted():
            return False
        state, arrays = self._get_state()
        return bool(state or arrays)

    @classmethod
    def from_spec(
        cls, spec: EncoderSpec, arrays: dict[str, np.ndarray] | None = None, *, where: str = ""
    ) -> BaseEncoder:
        """The encoder `to_spec` described; `where` names the source in error messages."""
        where = where or "a saved encoder"
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise CorruptFileError(f"{where}: not an encoder description")
        enc_cls = encoder_type(spec["type"])
        if not issubclass(enc_cls, cls):
            raise InputError(f"{where} holds a {enc_cls.__name__}, not a {cls.__name__}")
        raw = spec.get("params", {})
        if not isinstance(raw, dict):
            raise CorruptFileError(f"{where}: bad parameters")
        try:
            params = {k: _param_from_json(v) for k, v in raw.items()}
            if "name" not in params and isinstance(spec.get("name"), str):
                params["name"] = spec["name"]
            encoder = enc_cls(**params)
        except (TypeError, ValueError) as exc:
            raise CorruptFileError(f"{where}: bad parameters: {exc}") from exc
        state = spec.get("state", {})
        if state or arrays:
            try:
                encoder._set_state(state, arrays or {})
            except (KeyError, ValueError, IndexError, TypeError, AttributeError) as exc:
                raise CorruptFileError(f"{where}: saved state is inconsistent: {exc}") from exc
        return encoder

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted encoder to folder `path` atomically (a folder there is replaced)."""
        self._check_fitted()
        spec, arrays = self.to_spec()
        spec = {"format": FORMAT, "format_version": FORMAT_VERSION, **spec}
        with atomic_directory(path) as tmp:
            for array_name, array in arrays.items():
                np.save(tmp / f"{array_name}.npy", array, allow_pickle=False)
            (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Load an encoder written by `save`; the class must match the one saved."""
        folder = Path(path)
        spec = read_spec(folder)
        arrays = {name: load_npy(folder / f"{name}.npy") for name in spec["arrays"]}
        return cls.from_spec(spec, arrays, where=str(folder))

    # ----------------------------------------------------------------- for families
    def _encode(self, texts: list[Any]) -> Vectors:
        raise NotImplementedError

    def _encode_reported(self, batch: list[Any]) -> tuple[Vectors, EncodeReport]:
        """One batch's vectors and what it met; by default `_encode` and a count of inputs."""
        return self._encode(batch), EncodeReport(inputs=len(batch))

    def _query_rows(
        self, inputs: Any, batch_size: int | None, progress: bool, cache: CacheSetting
    ) -> Vectors:
        """Query vectors, one row per input (2-D); asymmetric encoders (BM25) override it."""
        return self.encode_with_report(
            inputs, batch_size=batch_size, progress=progress, cache=cache
        ).vectors

    def _document_rows(
        self, inputs: Any, batch_size: int | None, progress: bool, cache: CacheSetting
    ) -> Vectors:
        """Document vectors, one row per input (2-D); models with a document prompt override
        it."""
        return self.encode_with_report(
            inputs, batch_size=batch_size, progress=progress, cache=cache
        ).vectors

    def _shaped(
        self, inputs: Any, vectors: Vectors, normalize: bool, to_numpy: bool | None
    ) -> Vectors:
        """Rows as `encode` returns them: unit length when asked, dense when asked, and one
        1-D vector for a single dense input."""
        if normalize:
            vectors = normalize_rows(vectors)
        if to_numpy and sp.issparse(vectors):
            vectors = np.asarray(sp.csr_matrix(vectors).toarray(), dtype=np.float32)
        if is_single_input(inputs, self.input_kind) and not sp.issparse(vectors):
            single: np.ndarray = vectors[0]
            return single
        return vectors

    def _check_inputs(self, inputs: Any) -> list[Any]:
        """The inputs as a checked list (a single input becomes a list of one)."""
        return as_texts(inputs)

    def _prepare(self, items: list[Any]) -> list[Any]:
        """Work done once per call before batching (e.g. tokenizing); by default nothing."""
        return items

    def _plan(self, prepared: list[Any], batch_size: int) -> Iterator[Sequence[int]]:
        """The positions of each batch, in order; by default consecutive runs of `batch_size`."""
        for start in range(0, len(prepared), batch_size):
            yield range(start, min(start + batch_size, len(prepared)))

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Learned state as (JSON-ready values, named arrays)."""
        return {}, {}

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore what `_get_state` returned."""

    def __sklearn_is_fitted__(self) -> bool:
        return self.is_fitted()

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(
                f"{type(self).__name__} '{self.name}' is not fitted yet: call .fit(corpus) first "
                "(or load a fitted one with embedcraft.load_encoder(path))"
            )

    def _empty(self) -> Vectors:
        if self.sparse:
            return sp.csr_matrix((0, self.dim), dtype=np.float32)
        return np.zeros((0, self.dim), dtype=np.float32)

    def _run_batches(
        self, encode_batch: Any, inputs: Any, batch_size: int | None, progress: bool
    ) -> Encoded:
        """The one batching loop: check, prepare, run `encode_batch` over the planned batches
        with an optional progress bar, place rows in input order, and merge the batch reports."""
        items = self._check_inputs(inputs)
        size = check_batch_size(batch_size, self.default_batch_size)
        self._check_fitted()
        if not items:
            return Encoded(self._empty(), EncodeReport())
        prepared = self._prepare(items)
        report = EncodeReport()
        dense: np.ndarray | None = None
        parts: list[sp.csr_matrix] = []
        order: list[int] = []
        with tqdm(
            total=len(items), unit=self.input_kind.value, disable=not progress, desc=self.name
        ) as bar:
            for positions in self._plan(prepared, size):
                vectors, batch_report = encode_batch([prepared[i] for i in positions])
                report = report.merged(batch_report, positions)
                if sp.issparse(vectors):
                    parts.append(vectors)
                    order.extend(positions)
                else:
                    if dense is None:
                        dense = np.empty((len(items), vectors.shape[1]), dtype=np.float32)
                    dense[np.asarray(positions)] = vectors
                bar.update(len(positions))
        if dense is not None:
            return Encoded(dense, report)
        stacked = sp.vstack(parts, format="csr", dtype=np.float32)
        if order != list(range(len(items))):
            stacked = stacked[np.argsort(np.asarray(order), kind="stable")]
        return Encoded(stacked, report)


_INSTEAD_OF_QUANTIZING = (
    "vectors are float32; for int8 or binary vectors wrap the encoder: "
    "PostProcessedEncoder(encoder, quantize='int8' or 'binary') (CLI: --quantize)"
)
_NO_PROMPTS = "embedcraft has no prompts: put the instruction in front of each text yourself"
_ELSEWHERE = "to encode with many processes or machines, use embedcraft.distributed.encode_dataset"
_FAMILIAR: dict[str, tuple[tuple[object, ...], str]] = {
    "convert_to_tensor": (
        (False,),
        "embedcraft returns numpy arrays (torch.from_numpy(vectors) makes a tensor of them)",
    ),
    "device": (
        (None, "cpu"),
        "embedcraft runs its models with ONNX Runtime on the CPU; there is no device to choose",
    ),
    "precision": (("float32",), _INSTEAD_OF_QUANTIZING),
    "output_value": (
        ("sentence_embedding",),
        "embedcraft gives one vector per input, never token embeddings",
    ),
    "truncate_dim": (
        (None,),
        "wrap the encoder: PostProcessedEncoder(encoder, truncate_dim=N) (CLI: --truncate-dim)",
    ),
    "prompt": ((None,), _NO_PROMPTS),
    "prompt_name": ((None,), _NO_PROMPTS),
    "pool": ((None,), _ELSEWHERE),
    "chunk_size": ((None,), _ELSEWHERE),
}
"""sentence-transformers' `encode` arguments embedcraft cannot honour: the values that ask for
what embedcraft does anyway, and what to use instead of the others."""


def _check_familiar(
    sparse: bool, convert_to_numpy: bool | None, unsupported: dict[str, Any]
) -> None:
    """Refuse, before any work, the `encode` arguments that cannot be honoured (TypeError
    naming what to use instead): never ignore one silently."""
    for key, value in unsupported.items():
        if key not in _FAMILIAR:
            raise TypeError(
                f"encode() got an unexpected keyword argument {key!r}; it takes batch_size, "
                "progress (or show_progress_bar), cache, normalize_embeddings and "
                "convert_to_numpy"
            )
        accepted, instead = _FAMILIAR[key]
        if not any(type(value) is type(a) and value == a for a in accepted):
            raise TypeError(f"encode(): {key}={value!r} is not supported: {instead}")
    if convert_to_numpy is False and not sparse:
        raise TypeError(
            "encode(): convert_to_numpy=False is not supported: dense vectors are always "
            "numpy arrays (torch.from_numpy(vectors) makes a tensor of them)"
        )


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


def _param_token(value: Any) -> str:
    """A parameter value as `fingerprint`'s memo sees it (a wrapped encoder by its own)."""
    return value.fingerprint() if isinstance(value, BaseEncoder) else repr(value)


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
    if encoder.needs_fit and not encoder.is_fitted():
        encoder.fit(corpus)
        return True
    return False
