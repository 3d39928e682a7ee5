"""Interaction logs (user, item, rating, timestamp) read, checked and split for recommenders.

Reads the MovieLens `u.data` layout (tab-separated user, item, rating, timestamp, no header),
CSV/TSV files with a header (`user`/`userId`, `item`/`movieId`/`itemId`, optional `rating`,
`timestamp`), or columns given in memory (a mapping or a pandas DataFrame). Duplicate (user,
item) pairs keep their latest interaction and are counted; timestamps need not be sorted.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._files import csv_error, raise_csv_field_limit
from ..errors import InputError

__all__ = ["Interactions", "leave_last_out", "read_interactions"]

_USER = ("user", "userid", "user_id", "uid")
_ITEM = ("item", "itemid", "item_id", "movieid", "movie_id", "iid")
_RATING = ("rating", "score", "value")
_TIME = ("timestamp", "time", "ts")


@dataclass(frozen=True, eq=False)
class Interactions:
    """One row per (user, item): ids as strings, rating and timestamp as numbers."""

    users: np.ndarray
    """str user id per row."""
    items: np.ndarray
    """str item id per row."""
    ratings: np.ndarray
    """float32 rating per row (1.0 where the log has none)."""
    timestamps: np.ndarray
    """int64 timestamp per row (the row order where the log has none)."""
    duplicates: int = 0
    """(user, item) rows dropped because a later one repeated them."""

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, rows: np.ndarray) -> Interactions:
        """The rows selected by an index or mask, as a new log."""
        return Interactions(
            self.users[rows], self.items[rows], self.ratings[rows], self.timestamps[rows]
        )

    def fingerprint(self) -> str:
        """A hash of every row (ids, ratings, timestamps): equal logs have equal fingerprints."""
        digest = hashlib.sha256()
        for ids in (self.users, self.items):
            digest.update("\x1f".join(ids.tolist()).encode("utf-8", "surrogatepass") + b"\x1e")
        digest.update(np.ascontiguousarray(self.ratings, dtype="<f4").tobytes())
        digest.update(np.ascontiguousarray(self.timestamps, dtype="<i8").tobytes())
        return digest.hexdigest()

    def histories(self) -> dict[str, list[str]]:
        """Each user's items in time order (ties by row order)."""
        order = np.lexsort((np.arange(len(self)), self.timestamps, self.users))
        out: dict[str, list[str]] = {}
        for u, i in zip(self.users[order].tolist(), self.items[order].tolist(), strict=True):
            out.setdefault(u, []).append(i)
        return out


def _build(users: Any, items: Any, ratings: Any, timestamps: Any, what: str) -> Interactions:
    users = np.asarray([str(u) for u in users], dtype=object)
    items = np.asarray([str(i) for i in items], dtype=object)
    n = len(users)
    if len(items) != n:
        raise InputError(f"{what}: {n} users but {len(items)} items")
    if n == 0:
        raise InputError(f"{what}: no interactions")
    rating_values = np.ones(n, np.float32) if ratings is None else _numbers(ratings, "rating", what)
    time_values = (
        np.arange(n, dtype=np.int64)
        if timestamps is None
        else _numbers(timestamps, "timestamp", what)
    )
    if not np.isfinite(rating_values).all():
        bad = int(np.flatnonzero(~np.isfinite(rating_values))[0])
        raise InputError(f"{what}: rating of row {bad + 1} is not a finite number")
    # a timestamp must be a whole number that fits in 64 bits (2**63 itself does not)
    fits = np.isfinite(time_values) & (np.abs(time_values) < 2.0**63)
    whole = np.zeros_like(fits)
    whole[fits] = time_values[fits] == np.floor(time_values[fits])
    if not whole.all():
        bad = int(np.flatnonzero(~whole)[0])
        raise InputError(
            f"{what}: timestamp of row {bad + 1} is not a whole number of 64 bits: "
            f"{time_values[bad]!r}"
        )
    # keep the latest interaction of each (user, item) pair
    order = np.lexsort((np.arange(n), time_values, items, users))
    pairs = users[order] + "\x1f" + items[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = pairs[:-1] != pairs[1:]
    keep = np.sort(order[last])
    return Interactions(
        users[keep],
        items[keep],
        rating_values[keep].astype(np.float32),
        time_values[keep].astype(np.int64),
        duplicates=int(n - len(keep)),
    )


def _numbers(values: Any, name: str, what: str) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        try:
            out[row] = float(value)
        except (TypeError, ValueError):
            raise InputError(
                f"{what}: {name} on row {row + 1} is not a number: {value!r}"
            ) from None
    return out


def _column(names: list[str], wanted: tuple[str, ...], what: str, required: bool) -> int | None:
    lowered = [n.strip().lower() for n in names]
    for candidate in wanted:
        if candidate in lowered:
            return lowered.index(candidate)
    if required:
        raise InputError(f"{what}: no {wanted[0]} column (columns are {', '.join(names)})")
    return None


def read_interactions(source: str | os.PathLike[str] | Mapping[str, Any] | Any) -> Interactions:
    """An interaction log from a file path, a mapping of columns, or a pandas DataFrame."""
    if isinstance(source, Mapping) or hasattr(source, "columns"):
        table: Any = source  # a mapping of columns or a DataFrame (pandas is untyped here)
        columns = {
            str(k): list(table[k])
            for k in (table.keys() if isinstance(table, Mapping) else table.columns)
        }
        names = list(columns)
        pick = {
            key: _column(names, wanted, "interactions", key in ("user", "item"))
            for key, wanted in (
                ("user", _USER),
                ("item", _ITEM),
                ("rating", _RATING),
                ("time", _TIME),
            )
        }
        get = {k: (None if v is None else columns[names[v]]) for k, v in pick.items()}
        return _build(get["user"], get["item"], get["rating"], get["time"], "interactions")
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # MovieLens 100k's u.item is Latin-1
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(f"{path}: the file is empty")
    delimiter = "\t" if "\t" in lines[0] else "," if "," in lines[0] else None
    raise_csv_field_limit()
    rows = []
    for n, line in enumerate(lines, start=1):
        try:
            rows.append(line.split(delimiter) if delimiter != "," else next(csv.reader([line])))
        except csv.Error as exc:
            raise csv_error(path, n, exc) from None
    header = not _looks_numeric(rows[0][0]) or not _looks_numeric(rows[0][-1])
    if header:
        names = [c.strip() for c in rows[0]]
        body = rows[1:]
        cols = [
            _column(names, w, str(path), r)
            for w, r in ((_USER, True), (_ITEM, True), (_RATING, False), (_TIME, False))
        ]
    else:  # MovieLens u.data: user, item, rating, timestamp
        body = rows
        width = len(rows[0])
        cols = [0, 1, 2 if width > 2 else None, 3 if width > 3 else None]
    for n, row in enumerate(body):
        if len(row) <= max(c for c in cols if c is not None):
            raise InputError(f"{path}, line {n + 1 + header}: expected more fields, got {row!r}")
    user, item, rating, time = (
        [r[c].strip() for r in body] if c is not None else None for c in cols
    )
    return _build(user, item, rating, time, str(path))


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def leave_last_out(log: Interactions, min_history: int = 2) -> tuple[Interactions, Interactions]:
    """(train, test): each user's latest interaction is held out when they have `min_history`+."""
    order = np.lexsort((np.arange(len(log)), log.timestamps, log.users))
    users = log.users[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = users[:-1] != users[1:]
    counts: dict[str, int] = {}
    for u in users.tolist():
        counts[u] = counts.get(u, 0) + 1
    held = last & np.array([counts[u] >= min_history for u in users.tolist()], dtype=bool)
    return log.subset(np.sort(order[~held])), log.subset(np.sort(order[held]))
