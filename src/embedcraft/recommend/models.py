"""Recommenders from interaction logs: popularity, item2vec (gensim) and ALS (`implicit`).

Each has the same small shape: `fit(log)` learns from an `Interactions` log and returns self;
`score(history)` gives one score per known item for a user with that history (items in time
order), and `recommend(history, k, exclude_seen=True)` the best k items with their scores.
`_get_state` / `_set_state` give the learned state to `Recommender.save` and take it back.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from ..errors import InputError, NotFittedError, missing_dependency
from .interactions import Interactions

__all__ = ["ALSRecommender", "Item2VecRecommender", "PopularityRecommender", "available_cores"]

State = tuple[dict[str, Any], dict[str, np.ndarray]]
"""Learned state as (JSON-ready values, named arrays)."""


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS tells, else all."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        try:
            return max(1, len(affinity(0)))
        except OSError:
            pass
    return os.cpu_count() or 1


class BaseRecommender:
    """Shared parts: the item vocabulary and top-k selection."""

    items_: list[str]
    index_: dict[str, int]

    def fit(
        self, log: Interactions, items: Mapping[str, str] | None = None, *, progress: bool = False
    ) -> Self:
        """Learn from the interaction log (and the items' texts, for methods that read them);
        `progress` shows a bar on stderr for the slow parts (epochs, iterations, encoding)."""
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The parameters given to `__init__` (scikit-learn style), by name."""
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        found = list(inspect.signature(type(self).__init__).parameters.values())[1:]  # no self
        return {p.name: getattr(self, p.name) for p in found if p.kind in named}

    def _check_fitted(self) -> None:
        if not hasattr(self, "items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(interactions)")

    def _parts(self) -> dict[str, BaseRecommender]:
        """Fitted models this one is made of, saved beside it (a hybrid's two parts)."""
        return {}

    def _get_state(self) -> State:
        """The learned state, for saving: the item ids here, arrays in subclasses."""
        self._check_fitted()
        return {"items": list(self.items_)}, {}

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Take back what `_get_state` gave; a ValueError says what does not fit together."""
        items = state["items"]
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError("the item ids are not a list of strings")
        if len(set(items)) != len(items):
            raise ValueError("an item id is repeated")
        self.items_ = list(items)
        self.index_ = {item: i for i, item in enumerate(self.items_)}

    def _rows(
        self, array: np.ndarray, name: str, *, flat: bool = False, width: int | None = None
    ) -> np.ndarray:
        """`array` checked to hold one finite number (`flat`) or row per item."""
        if array.ndim != (1 if flat else 2) or array.shape[0] != len(self.items_):
            raise ValueError(f"{name} has shape {array.shape}, not one row per item")
        if width is not None and array.shape[1] != width:
            raise ValueError(f"{name} has {array.shape[1]} columns, not {width}")
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            raise ValueError(f"{name} holds something other than finite numbers")
        return array

    def _set_items(self, log: Interactions) -> None:
        if len(log) == 0:
            raise InputError("no interactions to learn from")
        self.items_ = sorted(set(log.items.tolist()))
        self.index_ = {item: i for i, item in enumerate(self.items_)}

    def _known(self, history: Sequence[str]) -> list[int]:
        return [self.index_[i] for i in history if i in self.index_]

    def score(self, history: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def item_vectors(self) -> np.ndarray:
        """Unit-length item vectors, rows in `items_` order (for similar items, explanations)."""
        raise InputError(f"{type(self).__name__} has no item vectors: use item2vec, als or content")

    def similar_items(self, item: str, k: int = 10) -> list[tuple[str, float]]:
        """The k items closest (cosine) to `item`, without itself."""
        self._check_fitted()
        if item not in self.index_:
            raise InputError(f"unknown item {item!r}: it has no interactions or text here")
        vectors = self.item_vectors()
        scores = vectors @ vectors[self.index_[item]]
        scores[self.index_[item]] = -np.inf
        order = np.argsort(-scores, kind="stable")[: min(k, len(scores) - 1)]
        return [(self.items_[i], float(scores[i])) for i in order]

    def recommend(
        self, history: Sequence[str], k: int = 10, *, exclude_seen: bool = True
    ) -> list[tuple[str, float]]:
        """The k best items for a user with this history, best first, with their scores."""
        self._check_fitted()
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        scores = np.asarray(self.score(history), dtype=np.float64).copy()
        if exclude_seen:
            scores[self._known(history)] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]
        return [(self.items_[i], float(scores[i])) for i in top]

    def because(self, history: Sequence[str], item: str) -> str | None:
        """The liked item most similar to `item`, or None when the model cannot tell."""
        self._check_fitted()
        known = self._known(history)
        if not known or item not in self.index_:
            return None
        try:
            vectors = self.item_vectors()
        except InputError:
            return None
        return self.items_[known[int(np.argmax(vectors[known] @ vectors[self.index_[item]]))]]

    def explain(self, history: Sequence[str], item: str) -> str:
        """A short reason for recommending `item`: "because you liked X" where it can tell."""
        liked = self.because(history, item)
        return f"because you liked {liked}" if liked else "popular with everyone"


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows (items never embedded) stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return unit


class _RecentMean(BaseRecommender):
    """Item vectors `vectors_` (unit rows) and a user scored by the mean of their last items."""

    recent: int
    vectors_: np.ndarray

    def score(self, history: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        known = self._known(history)[-self.recent :]
        if not known:
            return np.zeros(len(self.items_))
        scores: np.ndarray = self.vectors_ @ self.vectors_[known].mean(axis=0)
        return scores

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.vectors_

    def _get_state(self) -> State:
        state, _ = super()._get_state()
        return state, {"vectors": self.vectors_}

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(state, arrays)
        self.vectors_ = self._rows(arrays["vectors"], "vectors").astype(np.float32)


class PopularityRecommender(BaseRecommender):
    """Everyone gets the most-interacted items: the baseline every method must beat."""

    def fit(
        self, log: Interactions, items: Mapping[str, str] | None = None, *, progress: bool = False
    ) -> PopularityRecommender:
        self._set_items(log)
        counts = np.zeros(len(self.items_))
        np.add.at(counts, [self.index_[i] for i in log.items.tolist()], 1.0)
        self.counts_ = counts
        return self

    def score(self, history: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        return self.counts_

    def _get_state(self) -> State:
        state, _ = super()._get_state()
        return state, {"counts": self.counts_}

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        super()._set_state(state, arrays)
        self.counts_ = self._rows(arrays["counts"], "counts", flat=True).astype(np.float64)


class Item2VecRecommender(_RecentMean):
    """Skip-gram with negative sampling over each user's time-ordered items (Barkan & Koenigstein).

    A user's score for an item is its cosine to the mean of the user's last `recent` item
    vectors. `ns_exponent` shapes the negative-sampling distribution (0.75 as in word2vec;
    Caselles-Dupré et al. 2018 show recommenders may do better with other values). The wide
    default window treats a history as a set more than a sentence: on MovieLens 100K
    (leave-last-out NDCG@10) window 5 gave 0.002, window 20 with ns_exponent -0.5 0.027,
    window 50 with the last 5 items 0.087 (popularity 0.045).

    `workers` threads train it; None (the default) uses every core this process may run on
    (`workers_` says how many did). Threads make each fit a little different: for results
    that repeat exactly, give a `seed` and `workers=1`.
    """

    def __init__(
        self,
        dim: int = 64,
        window: int = 50,
        epochs: int = 20,
        negative: int = 10,
        ns_exponent: float = 0.75,
        min_count: int = 1,
        recent: int = 5,
        seed: int = 0,
        workers: int | None = None,
    ) -> None:
        self.dim = dim
        self.window = window
        self.epochs = epochs
        self.negative = negative
        self.ns_exponent = ns_exponent
        self.min_count = min_count
        self.recent = recent
        self.seed = seed
        self.workers = workers

    def fit(
        self, log: Interactions, items: Mapping[str, str] | None = None, *, progress: bool = False
    ) -> Item2VecRecommender:
        try:
            from gensim.models import Word2Vec
            from gensim.models.callbacks import CallbackAny2Vec
        except ImportError:
            raise missing_dependency("gensim", "static", "item2vec") from None
        if self.workers is not None and self.workers < 1:
            raise InputError(f"workers must be at least 1 (None: every core), got {self.workers}")
        self._set_items(log)
        self.workers_ = available_cores() if self.workers is None else int(self.workers)
        sequences = list(log.histories().values())

        class _Epochs(CallbackAny2Vec):  # type: ignore[misc]
            def __init__(self, bar: Any) -> None:
                self.bar = bar

            def on_epoch_end(self, model: Any) -> None:
                self.bar.update(1)

        with tqdm(total=self.epochs, desc="item2vec", unit="epoch", disable=not progress) as bar:
            model = Word2Vec(
                sentences=sequences, vector_size=self.dim, window=self.window, sg=1, hs=0,
                negative=self.negative, ns_exponent=self.ns_exponent, min_count=self.min_count,
                epochs=self.epochs, seed=self.seed, workers=self.workers_, sample=0,
                callbacks=[_Epochs(bar)],
            )  # fmt: skip
        vectors = np.zeros((len(self.items_), self.dim), dtype=np.float32)
        for item, row in self.index_.items():
            if item in model.wv.key_to_index:
                vectors[row] = model.wv[item]
        self.vectors_ = _unit(vectors)
        return self


class ALSRecommender(BaseRecommender):
    """Implicit-feedback matrix factorization (Hu, Koren & Volinsky) via the `implicit` library.

    Interactions become confidence 1 + alpha * r (r = 1 per interaction); a user's factors are
    solved from their history at recommend time, so new users need no refit.
    """

    def __init__(
        self, factors: int = 64, regularization: float = 0.05, alpha: float = 2.0,
        iterations: int = 15, seed: int = 0,
    ) -> None:  # fmt: skip
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed

    def fit(
        self, log: Interactions, items: Mapping[str, str] | None = None, *, progress: bool = False
    ) -> ALSRecommender:
        try:
            from implicit.als import AlternatingLeastSquares
            from threadpoolctl import threadpool_limits
        except ImportError:
            raise missing_dependency("implicit", "recsys", "ALS") from None
        self._set_items(log)
        users = sorted(set(log.users.tolist()))
        user_index = {u: i for i, u in enumerate(users)}
        rows = [user_index[u] for u in log.users.tolist()]
        cols = [self.index_[i] for i in log.items.tolist()]
        matrix = sp.csr_matrix(
            (np.full(len(rows), self.alpha, np.float32), (rows, cols)),
            shape=(len(users), len(self.items_)),
        )
        bar = tqdm(total=self.iterations, desc="als", unit="iteration", disable=not progress)
        # implicit parallelizes itself; nested BLAS threads crawl
        with threadpool_limits(1, "blas"), bar:
            model = AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=1.0,
                iterations=self.iterations, random_state=self.seed,
            )  # fmt: skip
            model.fit(matrix, show_progress=False, callback=lambda *_: bar.update(1))
        self.model_ = model
        return self

    def _get_state(self) -> State:
        state, _ = super()._get_state()
        factors = self.model_.item_factors
        factors = factors.to_numpy() if hasattr(factors, "to_numpy") else factors  # on a GPU
        return state, {"item_factors": np.asarray(factors, dtype=np.float32)}

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
        except ImportError:
            raise missing_dependency("implicit", "recsys", "ALS") from None
        super()._set_state(state, arrays)
        factors = self._rows(arrays["item_factors"], "item_factors", width=self.factors)
        model = AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=1.0,
            iterations=self.iterations, random_state=self.seed,
        )  # fmt: skip
        model.item_factors = np.ascontiguousarray(factors, dtype=np.float32)
        model.user_factors = np.zeros((0, self.factors), dtype=np.float32)
        self.model_ = model

    def score(self, history: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        known = self._known(history)
        if not known:
            return np.zeros(len(self.items_))
        row = sp.csr_matrix(
            (np.full(len(known), self.alpha, np.float32), ([0] * len(known), known)),
            shape=(1, len(self.items_)),
        )
        user = self.model_.recalculate_user(0, row)
        factors: Any = self.model_.item_factors
        return np.asarray(factors @ np.asarray(user).ravel())

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return _unit(np.asarray(self.model_.item_factors, dtype=np.float32))
