"""`Recommender`: one object from interaction logs (and item texts) to explained recommendations.

It wraps the models of this package: it reads the log in any accepted form, keeps each user's
history, and answers `recommend(user=...)` or `recommend(liked=[...])` (a new user) and
`similar_items(item)`, each result with a reason a person can read. A fitted one saves to a
folder (`save`) and loads back (`Recommender.load`) without refitting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .. import __version__
from ..errors import CorruptFileError, InputError, NotFittedError
from . import _saved
from ._saved import FORMAT_VERSION as SAVED_FORMAT_VERSION
from ._saved import SPEC_FILE as SAVED_FILE
from ._saved import data_fingerprint
from .content import ContentRecommender, HybridRecommender
from .interactions import Interactions, read_interactions
from .models import ALSRecommender, BaseRecommender, Item2VecRecommender, PopularityRecommender

__all__ = [
    "METHODS",
    "SAVED_FILE",
    "SAVED_FORMAT_VERSION",
    "Recommendation",
    "Recommender",
    "data_fingerprint",
    "make_model",
]

Method = Literal["popularity", "item2vec", "als", "content", "hybrid"]


@dataclass(frozen=True)
class Recommendation:
    """One recommended item: its id, score (higher is better), text if known, and why."""

    item: str
    score: float
    reason: str
    text: str | None = None


METHODS: tuple[str, ...] = ("popularity", "item2vec", "als", "content", "hybrid")


def make_model(
    method: str, encoder: str = "minilm-l6", workers: int | None = None
) -> BaseRecommender:
    """An unfitted model of one of `METHODS`; item2vec trains on `workers` threads (None:
    every core this process may use)."""
    if method == "popularity":
        return PopularityRecommender()
    if method == "item2vec":
        return Item2VecRecommender(workers=workers)
    if method == "als":
        return ALSRecommender()
    if method == "content":
        return ContentRecommender(encoder=encoder)
    if method == "hybrid":
        return HybridRecommender(
            Item2VecRecommender(workers=workers), ContentRecommender(encoder=encoder)
        )
    raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")


class Recommender:
    """Recommendations by `method` (item2vec by default); content and hybrid need item texts.

    item2vec trains on `workers` threads, by default every core this process may use; for
    results that repeat exactly from fit to fit, pass `workers=1` (its seed is fixed).
    """

    def __init__(
        self, method: Method = "item2vec", encoder: str = "minilm-l6", workers: int | None = None
    ) -> None:
        self.method = method
        self.encoder = encoder
        self.workers = workers

    def fit(
        self,
        interactions: Interactions | str | os.PathLike[str] | Mapping[str, Any] | Any,
        items: Mapping[str, str] | None = None,
        *,
        progress: bool = False,
    ) -> Recommender:
        """Learn from a log (an `Interactions`, a file path, a mapping or DataFrame of columns);
        `progress` shows the slow parts (epochs, encoding) as bars on stderr."""
        log = (
            interactions
            if isinstance(interactions, Interactions)
            else read_interactions(interactions)
        )
        if self.method in ("content", "hybrid") and not items:
            raise InputError(
                f"method {self.method!r} needs item texts: fit(log, items={{id: text}})"
            )
        model = make_model(self.method, self.encoder, self.workers)
        self.model_ = model.fit(log, items, progress=progress)
        self.histories_ = log.histories()
        self.items_text_ = dict(items or {})
        self.data_fingerprint_ = data_fingerprint(log, items)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("the Recommender is not fitted: call fit(interactions)")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted recommender to folder `path`, atomically (a folder there is replaced
        only once the new one is whole); `Recommender.load(path)` gives it back."""
        self._check_fitted()
        settings = {
            "method": self.method,
            "encoder": self.encoder,
            "workers": self.workers,
            "data_fingerprint": self.data_fingerprint_,
            "embedcraft_version": __version__,
        }
        _saved.write(path, settings, self.model_, self.histories_, self.items_text_)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recommender:
        """A recommender written by `save`, ready to recommend (no refit, no encoder needed)."""
        saved = _saved.read(path)
        settings = saved.settings
        if settings["method"] not in METHODS:
            file = Path(path) / SAVED_FILE
            raise CorruptFileError(f"{file} is corrupt: unknown method {settings['method']!r}")
        recommender = cls(settings["method"], settings["encoder"], settings["workers"])
        recommender.model_ = saved.model
        recommender.histories_ = saved.histories
        recommender.items_text_ = saved.items
        recommender.data_fingerprint_ = settings["data_fingerprint"]
        return recommender

    def recommend(
        self,
        user: str | None = None,
        *,
        liked: Sequence[str] | None = None,
        k: int = 10,
        exclude_seen: bool = True,
    ) -> list[Recommendation]:
        """The k best items for a known `user`, or for a new user who `liked` these items."""
        self._check_fitted()
        if (user is None) == (liked is None):
            raise InputError("give either user=... (a user of the log) or liked=[...] (a new user)")
        if liked is not None:
            history = [str(i) for i in liked]
            unknown = [i for i in history if i not in self.model_.index_]
            if unknown:
                raise InputError(f"unknown item(s): {', '.join(map(repr, unknown[:5]))}")
        else:
            if str(user) not in self.histories_:
                raise InputError(f"unknown user {user!r}; for a new user pass liked=[...] instead")
            history = self.histories_[str(user)]
        if not history and self.method != "popularity":
            raise InputError("an empty history: pass at least one liked item, or use popularity")
        out = []
        for item, score in self.model_.recommend(history, k, exclude_seen=exclude_seen):
            liked_item = self.model_.because(history, item)
            reason = (
                f"because you liked {self.items_text_.get(liked_item, liked_item)}"
                if liked_item
                else "popular with everyone"
            )
            out.append(Recommendation(item, score, reason, self.items_text_.get(item)))
        return out

    def similar_items(self, item: str, k: int = 10) -> list[Recommendation]:
        """The k items closest to `item` (by the model's item vectors)."""
        self._check_fitted()
        name = self.items_text_.get(item, item)
        return [
            Recommendation(other, score, f"similar to {name}", self.items_text_.get(other))
            for other, score in self.model_.similar_items(str(item), k)
        ]
