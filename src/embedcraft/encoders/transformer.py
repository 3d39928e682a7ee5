"""Contextual embeddings: BERT-family transformers on ONNX Runtime and `tokenizers`, no torch.

A `TransformerEncoder` gives sentence vectors (mean, CLS, max or last-token pooling under the
attention mask, L2-normalized by default) and token vectors that change with context. Texts are
batched by token length and returned in input order, so a text's vector does not depend on its
batch.
Texts longer than the model's limit are truncated and reported (`encode_with_report`,
`last_report`), or, with `long_texts="chunk"`, encoded as overlapping windows whose vectors are
averaged. Named models and model folders are found by the registry in `models`; a local
sentence-transformers / Hugging Face folder is exported to ONNX once and cached, and its
prompts are honoured (`encode` prepends the default prompt, `encode_queries` the query prompt,
`encode_documents` the document prompt).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ..errors import InputError, missing_dependency
from ._onnx import cpu_session
from .base import BaseEncoder, as_texts
from .contract import CacheSetting, CatalogEntry, Encoded, EncodeReport, EncoderKind, Vectors
from .hf_folder import document_prompt, is_hf_folder, query_prompt, read_hf_folder
from .models import NAMED_MODELS, ModelSpec, Pooling, is_model_folder, locate_model

__all__ = [
    "ContextualTokens",
    "ModelSpec",
    "TextModelRuntime",
    "TransformerEncoder",
    "TruncationReport",
    "locate_model",
    "pool_hidden",
]

TOKEN_BUDGET = 1024
"""Padded tokens per model run at most (and `batch_size` texts): on 2 cores, runs of ~1k tokens
were fastest for short and long texts alike (STS-B +6%, 256-token abstracts +10% over fixed runs
of 64) and keep memory small (minilm-l6 on SciFact: ~0.8 GB at 4k tokens, 3.2 GB unbounded)."""

_POOLINGS = ("mean", "cls", "max", "last")

TruncationReport = EncodeReport
"""The report transformers gave before every encoder reported (kept as an alias)."""


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
        for w, row in zip(words, range(len(vectors)), strict=True):
            if w.lower() == word.lower():
                return np.asarray(vectors[row])
        raise InputError(f"{word!r} is not a word of {self.text!r}")


@dataclass(frozen=True)
class _Tokenized:
    """One text as the model will read it: its token windows (one unless chunked)."""

    windows: list[list[int]]
    truncated: bool


class TextModelRuntime:
    """A loaded model: tokenizer, ONNX session, and how to feed it."""

    def __init__(self, spec: ModelSpec, max_length: int, threads: int | None) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            # the class is public, but its package's stubs do not re-export it
            from tokenizers.implementations import (  # type: ignore[attr-defined]
                BertWordPieceTokenizer,
            )
        except ImportError:
            raise missing_dependency(
                "onnxruntime and tokenizers", "transformers", "transformer encoders"
            ) from None
        for path in (spec.onnx, spec.tokenizer_file, spec.vocab_file):
            if path is not None and not Path(path).is_file():
                raise InputError(f"{spec.name}: model file {path} is missing")
        self.tokenizer: Any
        if spec.tokenizer_file is not None:
            self.tokenizer = Tokenizer.from_file(str(spec.tokenizer_file))
        else:
            self.tokenizer = BertWordPieceTokenizer(str(spec.vocab_file), lowercase=True)
        self.tokenizer.no_padding()
        self.max_length = max_length
        self.session = cpu_session(ort, spec.onnx, threads, varying_shapes=True, quiet=False)
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
        return list(self.tokenizer.encode_batch(texts))

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

    `model` is a catalog name (minilm-l6, minilm-l3), a folder holding an .onnx file and
    tokenizer.json, or a local sentence-transformers / Hugging Face folder (exported to ONNX on
    first use, which needs `embedcraft[export]`, then cached). `pooling`, `normalize` and
    `max_length` default to the model's own settings. `int8=True` runs the model's int8-compute
    build (made once, cached; about 2x faster, cosine ~0.99 to float32; minilm-l6 is one
    already). An empty string is encoded as the model sees it ([CLS] [SEP]): a fixed, non-zero
    vector.
    """

    name = "transformer"
    kind: ClassVar[EncoderKind] = EncoderKind.CONTEXTUAL
    needs_fit: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 64
    worth_caching: ClassVar[bool] = True
    token_unit: ClassVar[str] = "model tokenizer tokens, special tokens included"

    def __init__(
        self,
        model: str | os.PathLike[str] = "minilm-l6",
        pooling: Pooling | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        long_texts: Literal["truncate", "chunk"] = "truncate",
        chunk_overlap: int = 32,
        name: str = "transformer",
        int8: bool = False,
    ) -> None:
        self.name = name
        self.model = model
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.threads = threads
        self.long_texts = long_texts
        self.chunk_overlap = chunk_overlap
        self.int8 = int8

    # ----------------------------------------------------------------- settings in force
    @property
    def spec(self) -> ModelSpec:
        """The located model (files, defaults)."""
        return self._runtime()[0]

    @property
    def dim(self) -> int:
        return self._runtime()[1].dim

    def settings(self) -> tuple[Pooling, bool, int]:
        """The pooling, normalization and token limit in force (parameters over model defaults)."""
        return self._settings()

    @property
    def runtime(self) -> TextModelRuntime:
        """The loaded model: its tokenizer and ONNX session (loaded on first use)."""
        return self._runtime()[1]

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

    def _runtime(self) -> tuple[ModelSpec, TextModelRuntime]:
        key = (os.fspath(self.model), self.max_length, self.threads, bool(self.int8))
        cached = self.__dict__.get("_runtime_cache")
        if cached is None or cached[0] != key:
            spec = locate_model(self.model, int8=bool(self.int8))
            cached = (key, spec, TextModelRuntime(spec, self._max_length(spec), self.threads))
            self.__dict__["_runtime_cache"] = cached
        return cached[1], cached[2]

    def model_files(self) -> list[Path]:
        """The ONNX model, the tokenizer file it reads, and the folder's settings files."""
        spec = self.spec
        tokenizer = spec.tokenizer_file or spec.vocab_file
        files = [Path(spec.onnx)] + ([Path(tokenizer)] if tokenizer else [])
        return files + [Path(f) for f in spec.config_files]

    # ----------------------------------------------------------------- prompts
    @property
    def prompts(self) -> dict[str, str]:
        """The model's named prompts (from its sentence-transformers config); {} when none."""
        return dict(self.spec.prompts)

    def _prompted(self, inputs: Any, prompt: str) -> Any:
        """The texts as the model reads them: `prompt` prepended, lowercased where the model
        says so; `inputs` untouched when there is nothing to do."""
        spec = self.spec
        if not prompt and not spec.lowercase:
            return inputs
        texts = [prompt + text for text in as_texts(inputs)]
        return [text.lower() for text in texts] if spec.lowercase else texts

    def _default_prompt(self) -> str:
        spec = self.spec
        return dict(spec.prompts).get(spec.default_prompt_name or "", "")

    def encode_with_report(
        self,
        inputs: Any,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        cache: CacheSetting = None,
    ) -> Encoded:
        """`encode`, and its report; texts get the model's default prompt (when it has one)."""
        return super().encode_with_report(
            self._prompted(inputs, self._default_prompt()),
            batch_size=batch_size,
            progress=progress,
            cache=cache,
        )

    def _query_rows(
        self, inputs: Any, batch_size: int | None, progress: bool, cache: CacheSetting
    ) -> Vectors:
        """Query vectors: texts get the model's "query" prompt (when it has one)."""
        prompt = query_prompt(self.spec.prompts)
        return self._prompted_rows(inputs, prompt, batch_size, progress, cache)

    def _document_rows(
        self, inputs: Any, batch_size: int | None, progress: bool, cache: CacheSetting
    ) -> Vectors:
        """Document vectors: texts get the model's "document" prompt (none when it has none),
        as sentence-transformers 6's `encode_document` does (it ignores a "passage" or
        "corpus" prompt when, as always in version 6, a "document" one exists, blank by
        default)."""
        prompt = document_prompt(self.spec.prompts)
        return self._prompted_rows(inputs, prompt, batch_size, progress, cache)

    def _prompted_rows(
        self,
        inputs: Any,
        prompt: str,
        batch_size: int | None,
        progress: bool,
        cache: CacheSetting,
    ) -> Vectors:
        """Rows of `inputs` with `prompt` in place of the default prompt."""
        return (
            super()
            .encode_with_report(
                self._prompted(inputs, prompt),
                batch_size=batch_size,
                progress=progress,
                cache=cache,
            )
            .vectors
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_runtime_cache", None)  # sessions do not pickle; rebuilt on first use
        return state

    # ----------------------------------------------------------------- sentence vectors
    def _prepare(self, items: list[str]) -> list[_Tokenized]:
        """Tokenize the whole call once: each text's windows, and whether it was cut."""
        _, _, max_length = self._settings()
        _, runtime = self._runtime()
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
        return [
            _Tokenized(
                [part.ids for part in ([enc, *enc.overflowing] if chunk else [enc])],
                i in capped or bool(enc.overflowing),
            )
            for i, enc in enumerate(encodings)
        ]

    def _plan(self, prepared: list[_Tokenized], batch_size: int) -> Iterator[Sequence[int]]:
        """Texts sorted by token length, in runs of up to `batch_size` windows whose padded
        size stays under TOKEN_BUDGET (so runs of long texts are shorter): a text's vector does
        not depend on which call or batch it came in."""
        longest = np.array([max(len(w) for w in t.windows) for t in prepared])
        order = np.argsort(longest, kind="stable")
        start = 0
        while start < len(order):
            stop, windows = start, 0
            while stop < len(order):
                more = windows + len(prepared[order[stop]].windows)
                if stop > start and (
                    more > batch_size or more * longest[order[stop]] > TOKEN_BUDGET
                ):
                    break
                windows, stop = more, stop + 1
            yield order[start:stop].tolist()
            start = stop

    def _encode_reported(self, batch: list[_Tokenized]) -> tuple[np.ndarray, EncodeReport]:
        pooling, normalize, max_length = self._settings()
        _, runtime = self._runtime()
        windows = [w for text in batch for w in text.windows]
        owner = np.repeat(np.arange(len(batch)), [len(t.windows) for t in batch])
        pooled = np.zeros((len(windows), runtime.dim), dtype=np.float32)
        start = 0
        while start < len(windows):  # a chunked text's windows may exceed the token budget
            stop, longest = start + 1, len(windows[start])
            while stop < len(windows):
                wider = max(longest, len(windows[stop]))
                if (stop + 1 - start) * wider > TOKEN_BUDGET:
                    break
                stop, longest = stop + 1, wider
            hidden, mask = runtime.hidden(windows[start:stop])
            pooled[start:stop] = pool_hidden(hidden, mask, pooling)
            start = stop
        out = np.zeros((len(batch), runtime.dim), dtype=np.float32)
        np.add.at(out, owner, pooled)
        out /= np.bincount(owner, minlength=len(batch)).astype(np.float32)[:, None]
        if normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            out /= norms
        report = EncodeReport(
            inputs=len(batch),
            tokens=sum(len(w) for w in windows),
            truncated=[i for i, text in enumerate(batch) if text.truncated],
            max_tokens=max_length,
            chunked=self.long_texts == "chunk",
        )
        return out, report

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

    def count_tokens(self, inputs: Any) -> list[int]:
        """Tokens per text as the model counts them, special tokens included, untruncated."""
        items = as_texts(inputs)
        _, runtime = self._runtime()
        runtime.tokenizer.no_truncation()
        return [len(e.ids) for e in runtime.tokenizer.encode_batch(items)]


def pool_hidden(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    """One vector per row of token vectors `hidden` (b, s, dim) under `mask` (b, s): the mean,
    the first token's ("cls"), the maximum, or the last non-padding token's ("last")."""
    if pooling == "cls":
        return hidden[:, 0, :]
    if pooling == "last":
        last = np.maximum(mask.shape[1] - 1 - np.argmax(mask[:, ::-1] > 0, axis=1), 0)
        picked: np.ndarray = hidden[np.arange(hidden.shape[0]), last, :]
        return picked
    m = mask[:, :, None].astype(hidden.dtype)
    if pooling == "max":
        peak: np.ndarray = np.where(m > 0, hidden, -np.inf).max(axis=1)
        return peak
    mean: np.ndarray = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
    return mean


def catalog_entries() -> list[CatalogEntry]:
    """One entry per named transformer of the model registry."""

    def entry(model: str, width: int, package: str, what: str) -> CatalogEntry:
        return CatalogEntry(
            model,
            EncoderKind.CONTEXTUAL,
            str(width),
            False,
            f"package {package}",
            what,
            lambda: TransformerEncoder(model=model, name=model),
        )

    return [entry(m.name, m.width, m.package, m.description) for m in NAMED_MODELS]


def open_path(path: Path) -> BaseEncoder | None:
    """A folder with an .onnx model and its text tokenizer, or a local sentence-transformers /
    Hugging Face folder (exported to ONNX on first use); None for anything else."""
    if is_model_folder(path):
        return TransformerEncoder(model=str(path), name=path.name)
    if not is_hf_folder(path):
        return None
    read_hf_folder(path)  # a folder that cannot work says why now, before any export
    return TransformerEncoder(model=str(path), name=path.name)
