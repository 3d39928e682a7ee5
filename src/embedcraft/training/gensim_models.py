"""Word2Vec and FastText training on gensim's C kernels, from a corpus file streamed once.

The corpus is tokenized in one streaming pass into a temporary file that gensim then reads in
its multi-threaded `corpus_file` mode, so no pass holds the corpus in memory.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from ..errors import InputError, missing_dependency
from ..words import WordVectors
from .corpus import TokenStream, write_tokenized

__all__ = ["TrainingReport", "train_fasttext", "train_word2vec"]


@dataclass
class TrainingReport:
    """How a training run went."""

    model: str
    documents: int
    tokens: int
    vocabulary: int
    epochs: int
    seconds: dict[str, float] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    """Training loss per epoch, where the trainer reports one (Word2Vec does)."""

    @property
    def tokens_per_second(self) -> float:
        """Corpus tokens times epochs, per second of training."""
        train = self.seconds.get("train", 0.0)
        return self.tokens * self.epochs / train if train else 0.0


def _gensim() -> Any:
    try:
        import gensim
    except ImportError:
        raise missing_dependency("gensim", "static", "Word2Vec and FastText training") from None
    return gensim


def _check(dim: int, window: int, epochs: int, min_count: int, workers: int) -> None:
    for label, value in (
        ("dim", dim),
        ("window", window),
        ("epochs", epochs),
        ("min_count", min_count),
        ("workers", workers),
    ):
        if value < 1:
            raise InputError(f"{label} must be >= 1, got {value}")


def _params(
    dim: int, window: int, min_count: int, skip_gram: bool, negative: int, seed: int, workers: int
) -> dict[str, Any]:
    """The gensim settings Word2Vec and FastText share (negative sampling, no softmax)."""
    return {
        "vector_size": dim,
        "window": window,
        "min_count": min_count,
        "sg": int(skip_gram),
        "negative": negative,
        "hs": 0,
        "seed": seed,
        "workers": workers,
    }


def _train(
    kind: Literal["word2vec", "fasttext"],
    stream: TokenStream,
    params: dict[str, Any],
    epochs: int,
    progress: bool,
) -> tuple[WordVectors, TrainingReport]:
    gensim = _gensim()
    from gensim.models.callbacks import CallbackAny2Vec

    class _Epochs(CallbackAny2Vec):  # type: ignore[misc]
        def __init__(self, bar: Any) -> None:
            self.bar, self.previous = bar, 0.0
            self.losses: list[float] = []

        def on_epoch_end(self, model: Any) -> None:
            if kind == "word2vec":
                total = float(model.get_latest_training_loss())
                self.losses.append(total - self.previous)
                self.previous = total
                self.bar.set_postfix(loss=f"{self.losses[-1]:.4g}")
            self.bar.update(1)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="embedcraft-train-") as tmp:
        corpus_file = Path(tmp) / "tokens.txt"
        stats = write_tokenized(stream, corpus_file)
        t1 = time.perf_counter()
        cls = gensim.models.Word2Vec if kind == "word2vec" else gensim.models.FastText
        model = cls(**params)
        model.build_vocab(corpus_file=str(corpus_file))
        if not len(model.wv):
            raise InputError(
                f"no word occurs at least min_count={params['min_count']} times in {stream.path}"
            )
        t2 = time.perf_counter()
        with tqdm(total=epochs, unit="epoch", desc=kind, disable=not progress) as bar:
            callback = _Epochs(bar)
            model.train(
                corpus_file=str(corpus_file),
                total_examples=model.corpus_count,
                total_words=model.corpus_total_words,
                epochs=epochs,
                compute_loss=kind == "word2vec",
                callbacks=[callback],
            )
        t3 = time.perf_counter()
    vectors = WordVectors.from_gensim(model.wv, name=f"{kind}-{stream.path.stem}")
    report = TrainingReport(
        model=kind,
        documents=stats.documents,
        tokens=stats.tokens,
        vocabulary=len(vectors),
        epochs=epochs,
        seconds={"tokenize": t1 - t0, "vocabulary": t2 - t1, "train": t3 - t2},
        losses=callback.losses,
    )
    return vectors, report


def train_word2vec(
    corpus: str | os.PathLike[str] | TokenStream,
    *,
    dim: int = 100,
    window: int = 5,
    min_count: int = 5,
    epochs: int = 5,
    skip_gram: bool = True,
    negative: int = 5,
    sample: float = 1e-3,
    seed: int = 0,
    workers: int = 2,
    progress: bool = False,
) -> tuple[WordVectors, TrainingReport]:
    """Word2Vec with negative sampling (skip-gram, or CBOW with `skip_gram=False`)."""
    _check(dim, window, epochs, min_count, workers)
    stream = corpus if isinstance(corpus, TokenStream) else TokenStream(corpus)
    params = _params(dim, window, min_count, skip_gram, negative, seed, workers)
    return _train("word2vec", stream, {**params, "sample": sample}, epochs, progress)


def train_fasttext(
    corpus: str | os.PathLike[str] | TokenStream,
    *,
    dim: int = 100,
    window: int = 5,
    min_count: int = 5,
    epochs: int = 5,
    skip_gram: bool = True,
    negative: int = 5,
    min_n: int = 3,
    max_n: int = 6,
    bucket: int = 2_000_000,
    seed: int = 0,
    workers: int = 2,
    progress: bool = False,
) -> tuple[WordVectors, TrainingReport]:
    """FastText: word vectors plus character n-gram vectors, so unseen words get a vector."""
    _check(dim, window, epochs, min_count, workers)
    if not 1 <= min_n <= max_n:
        raise InputError(f"need 1 <= min_n <= max_n, got min_n={min_n}, max_n={max_n}")
    stream = corpus if isinstance(corpus, TokenStream) else TokenStream(corpus)
    params = _params(dim, window, min_count, skip_gram, negative, seed, workers)
    subwords = {"min_n": min_n, "max_n": max_n, "bucket": bucket}
    return _train("fasttext", stream, {**params, **subwords}, epochs, progress)
