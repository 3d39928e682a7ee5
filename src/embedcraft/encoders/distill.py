"""Static embeddings distilled from a transformer: one vector per vocabulary token, then lookup.

`distill(transformer)` runs every token of the transformer's vocabulary through the ONNX model
once, alone between the model's own special tokens ("[CLS] token [SEP]" for BERT), keeps the
model's pooled output as that token's vector, reduces the vectors to `dim` columns with PCA, and
weights each row by its Zipf rank. The idea and the recipe are model2vec's (Tulkens and van
Dongen, 2024); the code is ours. The result, a `StaticTransformerEncoder`, encodes with the
tokenizer, a table lookup and a mean: no transformer at inference, ~100x faster on STS-B.

`static_model("minilm-l6")` (in `models`, the registry) distils once into the user cache folder
and reuses the result.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import unicodedata
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from ..errors import (
    InputError,
    NotFittedError,
    missing_dependency,
)
from .base import BaseEncoder, as_texts
from .contract import CatalogEntry, EncodeReport, EncoderKind
from .models import RECIPE_VERSION, STATIC_MODELS, static_model
from .transformer import TransformerEncoder, pool_hidden

__all__ = [
    "RECIPE_VERSION",
    "StaticTransformerEncoder",
    "distill",
    "plain_tokenizer",
    "principal_axes",
    "static_model",
]

logger = logging.getLogger("embedcraft")

SIF_A = 1e-4
"""The SIF constant of `zipf_weights`."""

_UNUSED = re.compile(r"\[(unused\d+|PAD|UNK|CLS|SEP|MASK)\]")


def _tokenizer_class() -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise missing_dependency(
            "tokenizers", "transformers", "static transformer models"
        ) from None
    return Tokenizer


def _encode_batch(tokenizer: Any, texts: list[str]) -> list[Any]:
    """`tokenizer`'s encodings of `texts` without special tokens (no offsets where it can)."""
    if not texts:
        return []
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # < 0.20
    return list(encode(texts, add_special_tokens=False))


def plain_tokenizer(tokenizer: Any) -> Any:
    """A copy of `tokenizer` as a static model runs it: no truncation, no padding."""
    plain = _tokenizer_class().from_str(tokenizer.to_str())
    plain.no_truncation()
    plain.no_padding()
    return plain


class _NotLocal(Exception):
    """A character whose normalized form may depend on its neighbours (not a LookupError, so
    that `str.translate` lets it through)."""


def _is_local(char: str) -> bool:
    """Whether `char` normalizes alone, whatever surrounds it, under BertNormalizer.

    Its steps work a character at a time except canonical reordering in NFD (strip_accents),
    which moves combining marks (combining class > 0) across a run of them: a character that is
    not one and whose decomposition starts with a starter keeps such runs inside itself.
    Unassigned code points and surrogates are left to the tokenizer.
    """
    if unicodedata.category(char) in ("Cn", "Cs") or unicodedata.combining(char):
        return False
    return not unicodedata.combining(unicodedata.normalize("NFD", char)[0])


class _CharMap(dict[int, str]):
    """Code point -> its BertNormalizer form (a `str.translate` table), filled as characters
    are met; a character that is not local raises `_NotLocal`."""

    def __init__(self, normalizer: Any) -> None:
        super().__init__()
        self._normalizer = normalizer
        self._not_local: set[int] = set()

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if code in self._not_local or not _is_local(char):
            self._not_local.add(code)
            raise _NotLocal(char)
        normalized: str = self._normalizer.normalize_str(char)
        self[code] = normalized
        return normalized


class _PlainPath:
    """Tokenizing a BertNormalizer tokenizer's texts without running its normalizer.

    The tokenizer's normalizer (clean text, CJK spacing, NFD accent stripping, lowercase,
    tracking every character's offsets) took a third of its time on English reviews. Each of
    its steps works one character at a time, so a text is normalized here instead, by
    `str.lower` for printable ASCII or by a per-character table, and fed to a copy of the
    tokenizer without normalizer, whose pre-tokenizer and model then see exactly the string
    they would have seen. The full tokenizer keeps the texts where that may not hold: a
    character that is not local (see `_is_local`), and any text holding the content of an added
    token (special tokens such as [CLS] are matched in the raw text before normalizing).
    """

    def __init__(self, plain: Any, normalizer: Any, lowercase: bool, guards: set[str]) -> None:
        self.tokenizer = plain
        self.lowercase = lowercase
        self.chars = _CharMap(normalizer)
        self.guards = tuple(sorted(g for g in guards if g))
        self.firsts = tuple(sorted({g[0] for g in self.guards}))

    @classmethod
    def build(cls, tokenizer: Any) -> _PlainPath | None:
        """The path for `tokenizer`, or None when its normalizer is not a BertNormalizer."""
        spec = json.loads(tokenizer.to_str())
        settings = spec.get("normalizer")
        if not isinstance(settings, dict) or settings.get("type") != "BertNormalizer":
            return None
        spec["normalizer"] = None
        plain = _tokenizer_class().from_str(json.dumps(spec))
        plain.no_truncation()
        plain.no_padding()
        normalizer = tokenizer.normalizer
        guards: set[str] = set()
        for token in tokenizer.get_added_tokens_decoder().values():
            content = token.content
            guards |= {content, content.lower(), normalizer.normalize_str(content)}
        return cls(plain, normalizer, bool(settings.get("lowercase", True)), guards)

    def normalize(self, text: str) -> str | None:
        """`text` as the normalizer would leave it, or None when the full tokenizer must go."""
        if text.isascii():
            fed = text.lower() if self.lowercase else text
            if not fed.isprintable():  # control characters: removed, or whitespace -> " "
                fed = fed.translate(self.chars)
        else:
            try:
                fed = text.translate(self.chars)
            except _NotLocal:
                return None
        for first in self.firsts:  # cheap: the added tokens' first characters ("[" for BERT)
            if first in text or first in fed:
                guarded = any(g in text or g in fed for g in self.guards)
                return None if guarded else fed
        return fed


class StaticTransformerEncoder(BaseEncoder):
    """Mean of per-token vectors distilled from a transformer; L2-normalized by default.

    Build one with `distill(TransformerEncoder(...))` or `static_model("minilm-l6")`; a saved one
    loads with `load_encoder(folder)`. Texts are tokenized without special tokens or truncation
    (texts over `max_chars` characters are cut there first); tokens without a row (special and
    unused tokens, [UNK], tokens left out of the distillation) are skipped. A text with no
    remaining token, the empty string included, gets the zero vector.
    """

    name = "static-transformer"
    kind: ClassVar[EncoderKind] = EncoderKind.STATIC
    sparse: ClassVar[bool] = False
    needs_fit: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 1024
    token_unit: ClassVar[str] = "model tokenizer tokens"
    max_chars: ClassVar[int] = 1_000_000
    """Characters of a text that are tokenized (about 200k word pieces); the rest is ignored."""
    _fitted_attribute: ClassVar[str] = "table_"

    def __init__(
        self, source: str = "", normalize: bool = True, name: str = "static-transformer"
    ) -> None:
        self.name = name
        self.source = source
        self.normalize = normalize

    @property
    def dim(self) -> int:
        self._check_fitted()
        return int(self.table_.shape[1])

    def is_fitted(self) -> bool:
        """Whether the encoder holds a token table (distilled, or loaded)."""
        return hasattr(self, "table_")

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(
                f"{type(self).__name__} '{self.name}' has no token table: build one with "
                "embedcraft.encoders.distill.distill(TransformerEncoder(...)) or static_model(), "
                "or load a saved one with embedcraft.load_encoder(path)"
            )

    def count_tokens(self, inputs: Any) -> list[int]:
        """Word pieces per text as the tokenizer splits them (no special tokens)."""
        items = as_texts(inputs)
        self._check_fitted()
        return [len(ids) for ids in self._token_ids([t[: self.max_chars] for t in items])]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_plain_cache", None)  # derived from tokenizer_; rebuilt on first use
        return state

    def _plain(self) -> _PlainPath | None:
        """The normalizer-free path for `tokenizer_` (None when its normalizer has none)."""
        tokenizer = self.tokenizer_
        cached = self.__dict__.get("_plain_cache")
        if cached is None or cached[0] is not tokenizer:
            cached = (tokenizer, _PlainPath.build(tokenizer))
            self.__dict__["_plain_cache"] = cached
        plain: _PlainPath | None = cached[1]
        return plain

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's token ids (no special tokens), as `tokenizer_.encode_batch` gives them.

        Texts go through `_PlainPath` (normalized here in Python, then tokenized without the
        tokenizer's normalizer, a third of its time) where it gives the same ids; the rest,
        and every text of a tokenizer whose normalizer is not a BertNormalizer, take the full
        tokenizer.
        """
        plain = self._plain()
        if plain is None:
            return [e.ids for e in _encode_batch(self.tokenizer_, texts)]
        normalized = list(map(plain.normalize, texts))
        if None not in normalized:
            return [e.ids for e in _encode_batch(plain.tokenizer, cast(list[str], normalized))]
        full_at = [i for i, t in enumerate(normalized) if t is None]
        fed = [t for t in normalized if t is not None]
        ids = [e.ids for e in _encode_batch(plain.tokenizer, fed)]
        slow = [e.ids for e in _encode_batch(self.tokenizer_, [texts[i] for i in full_at])]
        for i, row in zip(full_at, slow, strict=True):
            ids.insert(i, row)  # full_at is increasing: each row lands at its own index
        return ids

    def _encode_reported(self, texts: list[str]) -> tuple[np.ndarray, EncodeReport]:
        n = len(texts)
        cap = self.max_chars
        truncated = [i for i, t in enumerate(texts) if len(t) > cap]
        clipped = texts
        if truncated:
            clipped = list(texts)
            for i in truncated:
                clipped[i] = texts[i][:cap]
        id_lists = self._token_ids(clipped)
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        total = int(indptr[-1])
        ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.int32, count=total)
        keep = self.known_[ids]
        if not keep.all():
            kept = np.zeros(len(ids) + 1, dtype=np.int64)
            np.cumsum(keep, out=kept[1:])
            indptr = kept[indptr]
            ids = ids[keep]
        counts = np.diff(indptr)
        nonempty = counts > 0
        if len(ids):
            # The mean of each text's rows: a (texts x vocabulary) CSR matrix of 1/count weights
            # times the table (no (tokens x dim) gather).
            weights = np.repeat((1.0 / np.maximum(counts, 1)).astype(np.float32), counts)
            m = sp.csr_matrix((weights, ids, indptr), shape=(n, len(self.table_)))
            out = np.asarray(m @ self.table_, dtype=np.float32)
            if self.normalize:
                norms = np.linalg.norm(out, axis=1)  # 0 for an empty text: 0 / tiny stays 0
                out /= np.maximum(norms, np.finfo(np.float32).tiny)[:, None]
        else:
            out = np.zeros((n, self.dim), dtype=np.float32)
        report = EncodeReport(
            inputs=n,
            tokens=total,
            oov_tokens=total - len(ids),
            empty_inputs=int(n - np.count_nonzero(nonempty)),
            truncated=truncated,
        )
        return out, report

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state = {"tokenizer": self.tokenizer_.to_str(), "recipe": self.recipe_}
        return state, {"table": self.table_, "known": self.known_}

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        try:
            tokenizer = _tokenizer_class().from_str(state["tokenizer"])
        except Exception as exc:  # tokenizers raises a bare Exception on a bad JSON
            raise ValueError(f"the saved tokenizer does not load: {exc}") from None
        tokenizer.no_truncation()
        tokenizer.no_padding()
        table = np.asarray(arrays["table"], dtype=np.float32)
        known = np.asarray(arrays["known"], dtype=bool)
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        if table.ndim != 2 or len(table) != size or known.shape != (size,):
            raise ValueError(
                f"token table {table.shape} / mask {known.shape} do not fit the tokenizer's "
                f"{size} tokens"
            )
        self.tokenizer_, self.table_, self.known_ = tokenizer, table, known
        self.recipe_ = dict(state.get("recipe", {}))


def distill(
    transformer: TransformerEncoder,
    *,
    dim: int = 256,
    zipf_weighting: bool = True,
    batch_size: int = 512,
    progress: bool = False,
    max_tokens: int | None = None,
    name: str | None = None,
) -> StaticTransformerEncoder:
    """A static model with one row per token of `transformer`'s vocabulary (named `name`,
    by default the transformer's name + "-static").

    Each token is fed alone, between the model's special tokens ([CLS] token [SEP]), and its
    vector is the transformer's own sentence pooling of that input (mean pooling under the mask
    for MiniLM: the mean of the [CLS], token and [SEP] hidden states), i.e. the unnormalized
    sentence vector the transformer gives the token as a one-token text. It did as well as the
    token's hidden state alone on STS-B dev (0.790 against 0.787, both SIF-weighted, dim 256).

    Special and unused tokens ([PAD], [unusedN], [UNK], [CLS], ...) get zero rows and are
    skipped at encoding. The vectors are centered and reduced to `dim` columns by PCA (the top
    eigenvectors of their scatter matrix, in float64). With `zipf_weighting`, the token of rank
    r (r = 1, 2, ... in token-id order after the special tokens, which for BERT WordPiece
    vocabularies roughly follows corpus frequency) is scaled by the SIF weight a / (a + p(r)),
    with Zipf's law for p: p(r) = 1 / (r * H_n), H_n the n-th harmonic number, and a = 1e-4
    (`SIF_A`, model2vec's published choice). Frequent tokens ("the", punctuation) shrink, rare
    ones keep their weight, as with SIF on counted frequencies, but without a corpus. Measured
    on STS-B with minilm-l6 (Spearman, dev / test): no weighting 0.691 / 0.542, log(1 + r)
    0.766 / 0.625, SIF a=1e-4 0.790 / 0.658; SIF was picked on dev (a=5e-5 gave 0.795 / 0.666,
    a=1e-3 0.759 / 0.616).

    `max_tokens` distils only the first that many ordinary tokens (the rest get zero rows, as
    special tokens do): for tests and quick trials.
    """
    if not isinstance(transformer, TransformerEncoder):
        raise TypeError(f"distill needs a TransformerEncoder, got {type(transformer).__name__}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"max_tokens must be >= 1, got {max_tokens}")
    pooling, _, _ = transformer.settings()
    spec, runtime = transformer.spec, transformer.runtime
    tokenizer = plain_tokenizer(runtime.tokenizer)
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    skipped = _special_ids(tokenizer)
    ids = [i for i in range(size) if i not in skipped and tokenizer.id_to_token(i) is not None]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if not 1 <= dim <= min(len(ids), runtime.dim):
        raise InputError(
            f"dim must be between 1 and {min(len(ids), runtime.dim)} (the model's width "
            f"{runtime.dim}, {len(ids)} tokens distilled), got {dim}"
        )
    prefix, suffix = _template(tokenizer)
    t0 = time.perf_counter()
    vectors = _embed_tokens(runtime, ids, prefix, suffix, pooling, batch_size, progress, spec.name)
    reduced = _pca(vectors, dim)
    if zipf_weighting:
        reduced *= zipf_weights(len(ids))[:, None]
    table = np.zeros((size, dim), dtype=np.float32)
    table[ids] = reduced
    known = np.zeros(size, dtype=bool)
    known[ids] = True
    encoder = StaticTransformerEncoder(
        source=os.fspath(transformer.model), normalize=True, name=name or f"{spec.name}-static"
    )
    encoder.tokenizer_, encoder.table_, encoder.known_ = tokenizer, table, known
    encoder.recipe_ = {
        "version": RECIPE_VERSION,
        "model": spec.name,
        "pooling": pooling,
        "dim": dim,
        "zipf_weighting": bool(zipf_weighting),
        "tokens": len(ids),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return encoder


def zipf_weights(n: int, a: float = SIF_A) -> np.ndarray:
    """SIF weights a / (a + p(r)) for ranks r = 1..n with Zipf's p(r) = 1 / (r * H_n), float32."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    p = (1.0 / ranks) / (1.0 / ranks).sum()
    weights: np.ndarray = (a / (a + p)).astype(np.float32)
    return weights


def _special_ids(tokenizer: Any) -> set[int]:
    """Ids of special tokens (added as special, or BERT's bracketed [PAD], [unusedN], ...)."""
    special = {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    special |= {
        i for t, i in tokenizer.get_vocab(with_added_tokens=True).items() if _UNUSED.fullmatch(t)
    }
    return special


def _template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special ids the tokenizer puts before and after a single text ([CLS] / [SEP])."""
    for probe in ("a", "the", "1", "x"):
        bare = tokenizer.encode(probe, add_special_tokens=False).ids
        full = tokenizer.encode(probe).ids
        for start in range(len(full) - len(bare) + 1):
            if bare and full[start : start + len(bare)] == bare:
                return full[:start], full[start + len(bare) :]
    return [], []


def _embed_tokens(
    runtime: Any,
    ids: Sequence[int],
    prefix: list[int],
    suffix: list[int],
    pooling: str,
    batch_size: int,
    progress: bool,
    name: str,
) -> np.ndarray:
    """The pooled transformer output of each token fed alone, (len(ids), width) float32."""
    out = np.zeros((len(ids), runtime.dim), dtype=np.float32)
    with tqdm(total=len(ids), unit="token", disable=not progress, desc=f"distil {name}") as bar:
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            hidden, mask = runtime.hidden([[*prefix, i, *suffix] for i in batch])
            out[start : start + len(batch)] = pool_hidden(hidden, mask, pooling)
            bar.update(len(batch))
    return out


def principal_axes(scatter: np.ndarray, dims: int) -> np.ndarray:
    """The (width x dims) top eigenvectors of a scatter matrix (the SVD's axes without its
    (n x width) U), each signed so that its largest loading is positive (eigenvector signs are
    arbitrary; this makes them deterministic)."""
    values, vectors = np.linalg.eigh(scatter)
    axes = vectors[:, np.argsort(values)[::-1][:dims]]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(dims)])
    axes *= np.where(signs == 0, 1.0, signs)
    return axes


def _pca(vectors: np.ndarray, dim: int) -> np.ndarray:
    """`vectors` centered and projected on their first `dim` principal axes (float32)."""
    x = vectors.astype(np.float64)
    x -= x.mean(axis=0)
    projected: np.ndarray = (x @ principal_axes(x.T @ x, dim)).astype(np.float32)
    return projected


def catalog_entries() -> list[CatalogEntry]:
    """The named static models: the trained one shipped in the package, and those distilled
    from a named transformer on first use (cached)."""

    def entry(name: str, teacher: str, width: int, what: str) -> CatalogEntry:
        return CatalogEntry(
            name,
            EncoderKind.STATIC,
            str(width),
            False,
            f"distilled from {teacher} on first use (cached)",
            what,
            lambda: static_model(teacher),
        )

    from .trained_static import SHIPPED_STATIC, shipped_static_model

    shipped = CatalogEntry(
        SHIPPED_STATIC,
        EncoderKind.STATIC,
        "256",
        False,
        "shipped in the package (trained against minilm-l6-exact)",
        "minilm-l6's token table trained on 163k sentences to match its teacher's sentence "
        "vectors; mean of token rows (the default static model)",
        shipped_static_model,
    )
    return [shipped] + [entry(m.name, m.teacher, m.width, m.description) for m in STATIC_MODELS]


def open_path(path: Path) -> BaseEncoder | None:
    """Static models load from saved encoder folders only: no model files to recognise."""
    return None
