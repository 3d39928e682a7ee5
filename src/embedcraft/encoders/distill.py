"""Static embeddings distilled from a transformer: one vector per vocabulary token, then lookup.

`distill(transformer)` runs every token of the transformer's vocabulary through the ONNX model
once, alone between the model's own special tokens ("[CLS] token [SEP]" for BERT), keeps the
model's pooled output as that token's vector, reduces the vectors to `dim` columns with PCA, and
weights each row by its Zipf rank. The idea and the recipe are model2vec's (Tulkens and van
Dongen, 2024); the code is ours. The result, a `StaticTransformerEncoder`, encodes with the
tokenizer, a table lookup and a mean: no transformer at inference, ~100x faster on STS-B.

`static_model("minilm-l6")` distils once into the user cache folder and reuses the result.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from .._cache import cache_dir
from ..errors import (
    CorruptFileError,
    InputError,
    NotFittedError,
    UnknownEncoderError,
    missing_dependency,
)
from .base import BaseEncoder, as_texts
from .transformer import TransformerEncoder, _catalog_models, _pool

__all__ = ["StaticTransformerEncoder", "distill", "static_model"]

logger = logging.getLogger("embedcraft")

RECIPE_VERSION = 1
"""Bumped when `distill` would give different vectors: cached models of another version rebuild."""

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


class StaticTransformerEncoder(BaseEncoder):
    """Mean of per-token vectors distilled from a transformer; L2-normalized by default.

    Build one with `distill(TransformerEncoder(...))` or `static_model("minilm-l6")`; a saved one
    loads with `load_encoder(folder)`. Texts are tokenized without special tokens or truncation
    (texts over `max_chars` characters are cut there first); tokens without a row (special and
    unused tokens, [UNK], tokens left out of the distillation) are skipped. A text with no
    remaining token, the empty string included, gets the zero vector.
    """

    name = "static-transformer"
    kind: ClassVar[str] = "static"
    sparse: ClassVar[bool] = False
    needs_fit: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 1024
    max_chars: ClassVar[int] = 1_000_000
    """Characters of a text that are tokenized (about 200k word pieces); the rest is ignored."""
    _fitted_attribute: ClassVar[str] = "table_"

    def __init__(self, source: str = "", normalize: bool = True) -> None:
        self.source = source
        self.normalize = normalize

    @property
    def dim(self) -> int:
        self._check_fitted()
        return int(self.table_.shape[1])

    def _is_fitted(self) -> bool:
        return hasattr(self, "table_")

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(
                f"{type(self).__name__} '{self.name}' has no token table: build one with "
                "embedcraft.encoders.distill.distill(TransformerEncoder(...)) or static_model(), "
                "or load a saved one with embedcraft.load_encoder(path)"
            )

    def encode(
        self, texts: str | Sequence[str], *, batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        """One row per text, in input order (a single string gives one row).

        Batches are written into one preallocated (n, dim) array, so memory beyond the result
        stays that of one batch however many texts there are.
        """
        items = as_texts(texts)
        self._check_fitted()
        size = batch_size or self.default_batch_size
        if size < 1:
            raise InputError(f"batch_size must be >= 1, got {size}")
        out = np.empty((len(items), self.dim), dtype=np.float32)
        with tqdm(total=len(items), unit="text", disable=not progress, desc=self.name) as bar:
            for start in range(0, len(items), size):
                batch = items[start : start + size]
                out[start : start + len(batch)] = self._encode(batch)
                bar.update(len(batch))
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        n = len(texts)
        cap = self.max_chars
        clipped = [t if len(t) <= cap else t[:cap] for t in texts]
        tokenizer = self.tokenizer_
        encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # < 0.20
        encodings = encode_batch(clipped, add_special_tokens=False)
        id_lists = [e.ids for e in encodings]
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.int32, count=int(indptr[-1]))
        keep = self.known_[ids]
        if not keep.all():
            kept = np.zeros(len(ids) + 1, dtype=np.int64)
            np.cumsum(keep, out=kept[1:])
            indptr = kept[indptr]
            ids = ids[keep]
        counts = np.diff(indptr)
        nonempty = counts > 0
        weights = np.repeat(1.0 / np.maximum(counts, 1), counts).astype(np.float32)
        m = sp.csr_matrix((weights, ids, indptr), shape=(n, len(self.table_)))
        out = np.zeros((n, self.dim), dtype=np.float32)
        if m.nnz:
            out = np.asarray(m @ self.table_, dtype=np.float32)
        if self.normalize:
            norms = np.linalg.norm(out, axis=1)
            out[nonempty] /= np.maximum(norms[nonempty, None], np.finfo(np.float32).tiny)
        return out

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
) -> StaticTransformerEncoder:
    """A static model with one row per token of `transformer`'s vocabulary.

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
    pooling, _, _ = transformer._settings()
    spec, runtime = transformer._runtime()
    tokenizer = _tokenizer_class().from_str(runtime.tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
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
    encoder = StaticTransformerEncoder(source=os.fspath(transformer.model), normalize=True)
    encoder.name = f"{spec.name}-static"
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
    return (a / (a + p)).astype(np.float32)


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
            out[start : start + len(batch)] = _pool(hidden, mask, pooling)
            bar.update(len(batch))
    return out


def _pca(vectors: np.ndarray, dim: int) -> np.ndarray:
    """`vectors` centered and projected on their first `dim` principal axes (float32)."""
    x = vectors.astype(np.float64)
    x -= x.mean(axis=0)
    # Eigenvectors of the (width x width) scatter matrix: the SVD's axes without its (n x width) U.
    values, vectors_ = np.linalg.eigh(x.T @ x)
    axes = vectors_[:, np.argsort(values)[::-1][:dim]].T
    # A deterministic sign per axis: the largest loading positive (eigenvector signs are arbitrary).
    signs = np.sign(axes[np.arange(dim), np.abs(axes).argmax(axis=1)])
    axes *= np.where(signs == 0, 1.0, signs)[:, None]
    return (x @ axes.T).astype(np.float32)


def static_model(name: str = "minilm-l6", *, progress: bool = False) -> StaticTransformerEncoder:
    """The static model distilled from catalog transformer `name`, built once and cached.

    The first call distils (5 s for minilm-l6 on two idle cores; the time is logged at INFO on
    the "embedcraft" logger) into `cache_dir("models", name + "-static")`; later calls
    load it. The model is written aside and renamed into place, and concurrent first calls wait
    for one build (a file lock where the platform has one), so the cache is never half written.
    """
    if name not in _catalog_models():
        raise UnknownEncoderError(
            f"static_model distils a catalog transformer ({', '.join(_catalog_models())}), got "
            f"{name!r}; for a model folder call distill(TransformerEncoder(folder)) and save it"
        )
    target = cache_dir("models", f"{name}-static")
    with _build_lock(target.with_name(f".{target.name}.lock")):
        cached = _load_cached(target)
        if cached is not None:
            return cached
        logger.info("%s: distilling a static model (one time)", name)
        t0 = time.perf_counter()
        # distil from the batch-independent float32 computation of the same weights
        source = "minilm-l6-exact" if name == "minilm-l6" else name
        encoder = distill(TransformerEncoder(model=source), progress=progress)
        encoder.name = f"{name}-static"
        seconds = time.perf_counter() - t0
        _install(encoder, target)
        logger.info("%s: built the static model in %.1f s, cached in %s", name, seconds, target)
        loaded = _load_cached(target)
        return loaded if loaded is not None else encoder


def _load_cached(folder: Path) -> StaticTransformerEncoder | None:
    """The model cached in `folder`, or None when there is none, or it is stale or damaged."""
    if not (folder / "encoder.json").is_file():
        return None
    try:
        encoder = StaticTransformerEncoder.load(folder)
    except (CorruptFileError, InputError, OSError) as exc:
        logger.warning("rebuilding the cached static model in %s (%s)", folder, exc)
        return None
    if encoder.recipe_.get("version") != RECIPE_VERSION:
        logger.info("the cached static model in %s is from an older recipe: rebuilding it", folder)
        return None
    return encoder


def _install(encoder: StaticTransformerEncoder, target: Path) -> None:
    """Save into a temporary folder beside `target`, then rename it into place."""
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        built = work / "model"
        encoder.save(built)
        if target.is_dir() and not any(target.iterdir()):
            with contextlib.suppress(OSError):
                target.rmdir()  # cache_dir made it empty; another process may fill it first
        try:
            os.rename(built, target)
        except OSError:
            if (target / "encoder.json").is_file() and _load_cached(target) is not None:
                return  # another process installed a good model first: keep it
            old = work / "old"
            os.rename(target, old)
            os.rename(built, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` across processes (fcntl), or nothing where there is none."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename alone keeps the cache whole
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
