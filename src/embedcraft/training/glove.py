"""GloVe word vectors (Pennington, Socher & Manning, 2014), trained by our own code.

No maintained library trains GloVe, so this module does, in three phases:

1. vocabulary: one pass over the corpus counts words; words with `count >= min_count` (the
   `max_vocab` most frequent if given) make the vocabulary, sorted by count then word;
2. co-occurrence: a second pass maps tokens to ids, drops out-of-vocabulary tokens, and counts
   pairs within `window` in-vocabulary words on each side, each weighted 1/distance, never across
   a sentence boundary. The stream is cut into chunks of whole sentences; each chunk's pairs are
   built with numpy (all offsets at once) and summed into a scipy sparse matrix, and the chunk
   matrices are merged like a binary counter, so memory holds one chunk's raw pairs plus about
   twice the final matrix, never all pairs of the corpus;
3. training: weighted least squares over the nonzeros X_ij,
   J = sum f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2 with f(x) = min(1, (x / x_max)^alpha),
   by per-entry AdaGrad in a compiled (numba) loop, Hogwild-style over `workers` threads that
   each own a shard of the nonzeros and visit it in a fresh random order every epoch. As in the
   paper's implementation, a parameter moves by lr * g / sqrt(G) where G starts at 1 and sums
   the squares of the scaled steps (lr * g)^2: plain SGD at rate lr while G is near 1 (rare
   words), tending to AdaGrad with rate 1 for parameters with a long gradient history. On small
   corpora a larger `learning_rate` (0.1-0.3) and a smaller `x_max` (1-10) train rare words better.

The vectors returned are W + W~, as the paper recommends.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import InputError, missing_dependency

__all__ = ["GloveResult", "train_glove"]

_CHUNK_PAIRS = 8_000_000
"""Raw (i, j) pairs built per chunk: about 12 bytes each, so ~100 MB of pairs at a time."""

_GRAD_CLIP = 100.0
"""Bound on each gradient component, a guard against a rare huge step (as GloVe's code does)."""


@dataclass(frozen=True, eq=False)
class GloveResult:
    """What `train_glove` returns: the vocabulary, its vectors, and how training went."""

    words: list[str]
    """The vocabulary, by count descending, ties by word."""
    counts: np.ndarray
    """int64 corpus count of each word in `words`."""
    vectors: np.ndarray
    """float32 (len(words), dim): W + W~, the sum of main and context vectors."""
    losses: list[float] = field(default_factory=list)
    """Mean weighted loss sum(f(X) * err^2) / nonzeros, per epoch (computed during the epoch)."""
    cooccurrence_pairs: int = 0
    """Nonzeros of the symmetric co-occurrence matrix, the entries trained on."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each phase: vocab, cooccurrence, training."""
    tokens: int = 0
    """Tokens read (the first pass), in- and out-of-vocabulary."""


# --------------------------------------------------------------------------------------------
# phase 1: vocabulary


def _bad_sentence(index: int, sentence: object) -> TypeError:
    """The error for an item of `sentences` that is not a sequence of tokens."""
    return TypeError(
        f"sentence {index} must be a sequence of string tokens, got {type(sentence).__name__}"
        + (" (split it into tokens first)" if isinstance(sentence, str | bytes) else "")
    )


def _check_sentence(index: int, sentence: object) -> None:
    """Reject a str, bytes, mapping or None where a list of tokens belongs (cheap for lists)."""
    if type(sentence) is list or type(sentence) is tuple:
        return
    if sentence is None or isinstance(sentence, str | bytes | Mapping):
        raise _bad_sentence(index, sentence)


def _find_non_string(sentences: Iterable[Sequence[str]]) -> TypeError:
    """Locate the first non-string token (only called once one is known to exist)."""
    for n, sentence in enumerate(sentences):
        for token in sentence:
            if not isinstance(token, str):
                return TypeError(
                    f"sentence {n} has a token that is not a string: {token!r} "
                    f"({type(token).__name__})"
                )
    return TypeError("a token that is not a string (the corpus changed between passes)")


def _progress(iterable: Iterable[Any], show: bool, **kwargs: Any) -> Iterable[Any]:
    """Wrap in a tqdm bar when asked, else return the iterable unchanged."""
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def _count_words(
    sentences: Iterable[Sequence[str]], *, progress: bool = False
) -> tuple[Counter[str], int, int]:
    """Count every token; return (counts, tokens, sentences). TypeError names a bad sentence."""
    counter: Counter[str] = Counter()
    update = counter.update
    tokens = 0
    n = -1
    total = len(sentences) if isinstance(sentences, Sequence) else None
    bar = _progress(sentences, progress, total=total, desc="GloVe vocab", unit=" sentences")
    for n, sentence in enumerate(bar):
        _check_sentence(n, sentence)
        try:
            update(sentence)
            tokens += len(sentence)
        except TypeError as exc:  # unhashable token, or not iterable / no len()
            raise TypeError(f"sentence {n}: {exc}") from exc
    if any(not isinstance(word, str) for word in counter):
        raise _find_non_string(sentences)
    return counter, tokens, n + 1


def _select_vocab(
    counter: Mapping[str, int], min_count: int, max_vocab: int | None
) -> tuple[list[str], np.ndarray]:
    """Words with count >= min_count, the max_vocab most frequent, by count desc then word."""
    kept = sorted(
        ((word, count) for word, count in counter.items() if count >= min_count),
        key=lambda item: (-item[1], item[0]),
    )
    if max_vocab is not None:
        kept = kept[:max_vocab]
    words = [word for word, _ in kept]
    counts = np.fromiter((count for _, count in kept), dtype=np.int64, count=len(kept))
    return words, counts


# --------------------------------------------------------------------------------------------
# phase 2: co-occurrence counts


class _TokenIds(dict[str, int]):
    """word -> id, and -1 for any word outside the vocabulary (lookups stay in C)."""

    def __missing__(self, key: str) -> int:
        return -1


def _chunk_matrix(ids: np.ndarray, lengths: np.ndarray, window: int, size: int) -> sp.csr_matrix:
    """One chunk's directed counts A: A[i, j] += 1/d when j follows i at in-vocab distance d.

    `ids` holds the chunk's token ids (-1 out of vocabulary) and `lengths` its sentence lengths.
    Out-of-vocabulary tokens go first, so distances count in-vocabulary words only; a pair is kept
    when both tokens belong to the same sentence. The symmetric matrix is A + A^T.
    """
    sentence = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    keep = ids >= 0
    ids, sentence = ids[keep], sentence[keep]
    offsets = range(1, min(window, len(ids) - 1) + 1)
    same = [sentence[d:] == sentence[:-d] for d in offsets]  # pairs within one sentence
    sizes = [int(mask.sum()) for mask in same]
    total = sum(sizes)
    row = np.empty(total, dtype=np.int32)
    col = np.empty(total, dtype=np.int32)
    val = np.empty(total, dtype=np.float32)
    start = 0
    for d, mask, n in zip(offsets, same, sizes, strict=True):
        row[start : start + n] = ids[:-d][mask]
        col[start : start + n] = ids[d:][mask]
        val[start : start + n] = 1.0 / d
        start += n
    del same
    matrix = sp.coo_matrix((val, (row, col)), shape=(size, size)).tocsr()
    matrix.sum_duplicates()
    return matrix


def _merge(stack: list[sp.csr_matrix], matrix: sp.csr_matrix) -> None:
    """Push a chunk's matrix, adding neighbours of similar size (a binary-counter merge).

    Each count is re-added O(log chunks) times instead of once per chunk, and the stack holds
    matrices of geometrically shrinking size, so it never holds much more than the final matrix.
    """
    stack.append(matrix)
    while len(stack) > 1 and stack[-1].nnz * 2 >= stack[-2].nnz:
        top = stack.pop()
        stack[-1] = stack[-1] + top


def _count_cooccurrences(
    sentences: Iterable[Sequence[str]],
    index: Mapping[str, int],
    window: int,
    *,
    chunk_tokens: int | None = None,
    progress: bool = False,
    total: int | None = None,
) -> tuple[sp.csr_matrix, int]:
    """The symmetric co-occurrence matrix X (float32 csr, int32 indices) and tokens read.

    X[i, j] sums 1/d over every pair of words i, j at distance d <= `window` within a sentence,
    counting distance over in-vocabulary words only (`index` maps each vocabulary word to its
    row). Both orders are counted, so X = X^T, and a word next to itself adds 2/d to X[i, i].
    The corpus is read in chunks of about `chunk_tokens` tokens of whole sentences.
    """
    size = len(index)
    ids_of = _TokenIds(index)
    lookup: Callable[[str], int] = ids_of.__getitem__
    if chunk_tokens is None:
        chunk_tokens = max(_CHUNK_PAIRS // window, 10_000)
    stack: list[sp.csr_matrix] = []
    buffer = array("i")  # the chunk's token ids, 4 bytes each
    lengths: list[int] = []
    tokens = 0

    def flush() -> None:
        ids = np.array(buffer, dtype=np.int32)
        _merge(stack, _chunk_matrix(ids, np.array(lengths, dtype=np.int64), window, size))
        del buffer[:]
        lengths.clear()

    bar = _progress(sentences, progress, total=total, desc="GloVe co-occurrence", unit=" sent")
    for sentence in bar:
        before = len(buffer)
        buffer.extend(map(lookup, sentence))
        lengths.append(len(buffer) - before)
        if len(buffer) >= chunk_tokens:
            tokens += len(buffer)
            flush()
    tokens += len(buffer)
    if buffer or not stack:
        flush()
    while len(stack) > 1:
        top = stack.pop()
        stack[-1] = stack[-1] + top
    directed = stack.pop()
    matrix = (directed + directed.T).tocsr()
    del directed
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.data = matrix.data.astype(np.float32, copy=False)
    if matrix.nnz < np.iinfo(np.int32).max:
        matrix.indices = matrix.indices.astype(np.int32, copy=False)
        matrix.indptr = matrix.indptr.astype(np.int32, copy=False)
    return matrix, tokens


# --------------------------------------------------------------------------------------------
# phase 3: training


def _epoch_shard(
    ints: np.ndarray,
    floats: np.ndarray,
    order: np.ndarray,
    main: np.ndarray,
    context: np.ndarray,
    dim: int,
    learning_rate: float,
    accumulate_scale: float,
    clip: float,
    seed: np.uint64,
) -> float:
    """Shuffle this shard's `order` in place, then one AdaGrad step per entry; the loss sum.

    Compiled by numba (see `_kernel`). Entry e is the record ints[e, 0] = i, ints[e, 1] = j,
    floats[e, 2] = log X_ij, floats[e, 3] = f(X_ij) (one 16-byte record: one cache miss).
    A row of `main` or `context` is [vector (dim), bias, pad | AdaGrad sums (dim), bias sum, pad],
    so a word's parameters and their squared-gradient sums share cache lines and a page.
    Each parameter moves by learning_rate * g / sqrt(G), G = 1 + sum (accumulate_scale * g)^2.
    """
    half = main.shape[1] // 2
    n = order.shape[0]
    # Fisher-Yates driven by splitmix64, so a seed gives the same order on every platform
    state = seed
    for k in range(n - 1, 0, -1):
        state += np.uint64(0x9E3779B97F4A7C15)
        z = state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        m = np.int64(z % np.uint64(k + 1))
        tmp = order[k]
        order[k] = order[m]
        order[m] = tmp
    lr = np.float32(learning_rate)
    scale = np.float32(accumulate_scale)
    bound = np.float32(clip)
    grad_i = np.empty(dim + 1, dtype=np.float32)
    grad_j = np.empty(dim + 1, dtype=np.float32)
    total = 0.0
    for t in range(n):
        e = order[t]
        wi = main[ints[e, 0]]
        wj = context[ints[e, 1]]
        dot = np.float32(0.0)
        for k in range(dim):
            dot += wi[k] * wj[k]
        err = dot + wi[dim] + wj[dim] - floats[e, 2]
        fe = floats[e, 3] * err  # half the derivative of f * err^2 with respect to err
        total += fe * err
        # separate short loops over distinct arrays let LLVM vectorize each one
        for k in range(dim):
            grad_i[k] = min(max(fe * wj[k], -bound), bound)
            grad_j[k] = min(max(fe * wi[k], -bound), bound)
        grad_i[dim] = fe
        grad_j[dim] = fe
        for k in range(dim + 1):
            wi[k] -= lr * grad_i[k] / np.sqrt(wi[half + k])
            g = scale * grad_i[k]
            wi[half + k] += g * g
        for k in range(dim + 1):
            wj[k] -= lr * grad_j[k] / np.sqrt(wj[half + k])
            g = scale * grad_j[k]
            wj[half + k] += g * g
    return total


_KERNEL: Callable[..., float] | None = None


def _kernel() -> Callable[..., float]:
    """`_epoch_shard` compiled by numba (or loaded from its on-disk cache); numba is imported here.

    nogil lets `workers` Python threads run shards at once; fastmath lets the loops vectorize.
    """
    global _KERNEL
    if _KERNEL is None:
        try:
            from numba import njit
        except ImportError as exc:
            raise missing_dependency("numba", "static", "GloVe training") from exc
        _KERNEL = njit(cache=True, nogil=True, fastmath=True)(_epoch_shard)
    return _KERNEL


def _splitmix(value: int) -> int:
    """A 64-bit mix of an integer, to derive independent per-epoch, per-shard seeds."""
    z = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def _entries(matrix: sp.csr_matrix, x_max: float, alpha: float) -> np.ndarray:
    """The nonzeros as (nnz, 4) int32 records [i, j, log X_ij bits, f(X_ij) bits]."""
    records = np.empty((matrix.nnz, 4), dtype=np.int32)
    records[:, 0] = np.repeat(np.arange(matrix.shape[0], dtype=np.int32), np.diff(matrix.indptr))
    records[:, 1] = matrix.indices
    floats = records.view(np.float32)
    values = matrix.data.astype(np.float32, copy=False)
    np.log(values, out=floats[:, 2])
    floats[:, 3] = np.minimum(np.float32(1.0), (values / np.float32(x_max)) ** np.float32(alpha))
    return records


def _init_params(rng: np.random.Generator, size: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Main and context rows [vector, bias, pad | ones]: uniform in [-0.5, 0.5] / dim."""
    half = -(-(dim + 1) // 16) * 16  # 64-byte multiples keep SIMD loads within cache lines
    tables = []
    for _ in range(2):
        table = np.zeros((size, 2 * half), dtype=np.float32)
        values = rng.random((size, dim + 1), dtype=np.float32) - np.float32(0.5)
        table[:, : dim + 1] = values / np.float32(dim)
        table[:, half:] = 1.0
        tables.append(table)
    return tables[0], tables[1]


def _train(
    records: np.ndarray,
    size: int,
    *,
    dim: int,
    epochs: int,
    learning_rate: float,
    seed: int,
    workers: int,
    progress: bool,
    x_max: float = math.nan,
) -> tuple[np.ndarray, list[float]]:
    """Fit W, W~ and biases to `_entries` records of a size x size matrix by AdaGrad.

    Returns (W + W~, mean loss per epoch).
    """
    kernel = _kernel()
    nnz = len(records)
    floats = records.view(np.float32)
    rng = np.random.default_rng(seed)
    main, context = _init_params(rng, size, dim)

    # A random split into shards, fixed for the run; each shard is reshuffled every epoch.
    order = rng.permutation(nnz).astype(np.int32 if nnz < 2**31 else np.int64)
    bounds = np.linspace(0, nnz, workers + 1).astype(np.int64)
    shards = [order[bounds[s] : bounds[s + 1]] for s in range(workers)]
    base = int(rng.integers(0, 2**63))
    # the loss of all-zero parameters; an epoch far above it means the steps are too large
    start_loss = float(np.einsum("i,i,i->", floats[:, 3], floats[:, 2], floats[:, 2])) / nnz

    def run(epoch: int, s: int) -> float:
        shard_seed = np.uint64(_splitmix(base ^ _splitmix(epoch * workers + s)))
        return float(
            kernel(records, floats, shards[s], main, context, dim, learning_rate, learning_rate,
                   _GRAD_CLIP, shard_seed)
        )  # fmt: skip

    losses: list[float] = []
    epochs_iter: Iterable[int] = range(epochs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(epochs_iter, desc="GloVe training", unit=" epoch")
        epochs_iter = bar
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for epoch in epochs_iter:
            if workers == 1:
                total = run(epoch, 0)
            else:
                total = sum(pool.map(run, [epoch] * workers, range(workers)))
            loss = total / nnz
            if not loss <= 10.0 * start_loss + 1.0:  # also catches nan and inf
                raise InputError(
                    f"GloVe training diverged at epoch {epoch + 1} (mean loss {loss:.4g}, "
                    f"{start_loss:.4g} with zero vectors): lower learning_rate "
                    f"(now {learning_rate}) or raise x_max (now {x_max})"
                )
            losses.append(loss)
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4f}")
    return main[:, :dim] + context[:, :dim], losses


# --------------------------------------------------------------------------------------------
# public entry point


def _check_args(
    sentences: object, dim: int, window: int, min_count: int, epochs: int, **floats: float
) -> None:
    """InputError for parameters that cannot work; TypeError for a one-shot iterator."""
    if isinstance(sentences, Iterator):
        raise TypeError(
            "sentences must be re-iterable (a list, or an object whose __iter__ starts over): "
            "GloVe reads the corpus twice, and a generator or iterator is used up after one pass"
        )
    for name, value in (("dim", dim), ("window", window), ("epochs", epochs)):
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    if min_count < 1:
        raise InputError(f"min_count must be at least 1, got {min_count}")
    for name, number in floats.items():
        if not number > 0 or not math.isfinite(number):
            raise InputError(f"{name} must be a positive number, got {number}")


def train_glove(
    sentences: Iterable[Sequence[str]],
    *,
    dim: int = 100,
    window: int = 10,
    min_count: int = 5,
    epochs: int = 25,
    x_max: float = 100.0,
    alpha: float = 0.75,
    learning_rate: float = 0.05,
    max_vocab: int | None = None,
    seed: int = 0,
    workers: int = 2,
    progress: bool = False,
) -> GloveResult:
    """Train GloVe word vectors on tokenized sentences; see the module docstring for the method.

    `sentences` is read twice (words, then co-occurrences), so it must be re-iterable: a list of
    token lists, or an object that streams a file anew on each `iter()`. Each item is one sentence
    (or line, or document); context windows of `window` words on each side stop at its ends.
    With `workers=1` the same `seed` gives the same vectors; with more, threads update shared
    vectors without locks (Hogwild), which is faster but not bit-for-bit repeatable.
    Needs numba for the training loop.
    """
    _check_args(
        sentences,
        dim,
        window,
        min_count,
        epochs,
        x_max=x_max,
        learning_rate=learning_rate,
    )
    if not 0 <= alpha < math.inf:
        raise InputError(f"alpha must be a number >= 0, got {alpha}")
    if max_vocab is not None and max_vocab < 1:
        raise InputError(f"max_vocab must be at least 1 or None, got {max_vocab}")
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    _kernel()  # fail on a missing numba before reading the corpus

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    counter, tokens, n_sentences = _count_words(sentences, progress=progress)
    if tokens == 0:
        raise InputError("the corpus is empty: no sentence has a token")
    words, counts = _select_vocab(counter, min_count, max_vocab)
    if not words:
        raise InputError(
            f"no word occurs at least min_count={min_count} times "
            f"({len(counter)} distinct words in {tokens} tokens): lower min_count"
        )
    del counter
    seconds["vocab"] = time.perf_counter() - start

    start = time.perf_counter()
    index = {word: i for i, word in enumerate(words)}
    matrix, second_tokens = _count_cooccurrences(
        sentences, index, window, progress=progress, total=n_sentences
    )
    if second_tokens != tokens:
        raise InputError(
            f"the corpus changed between passes ({tokens} tokens, then {second_tokens}): "
            "sentences must yield the same tokens each time it is iterated"
        )
    if matrix.nnz == 0:
        raise InputError(
            "no co-occurrences: no sentence has two in-vocabulary words within the window"
        )
    seconds["cooccurrence"] = time.perf_counter() - start

    start = time.perf_counter()
    nnz = int(matrix.nnz)
    records = _entries(matrix, x_max, alpha)
    del matrix  # training needs only the records
    vectors, losses = _train(
        records,
        len(words),
        dim=dim,
        epochs=epochs,
        learning_rate=learning_rate,
        x_max=x_max,
        seed=seed,
        workers=workers,
        progress=progress,
    )
    seconds["training"] = time.perf_counter() - start
    return GloveResult(
        words=words,
        counts=counts,
        vectors=vectors,
        losses=losses,
        cooccurrence_pairs=nnz,
        seconds=seconds,
        tokens=tokens,
    )
