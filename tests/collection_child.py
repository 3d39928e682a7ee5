"""A separate process that makes, changes or reads collections, for the reopen tests.

Every reopen in tests/test_store_reopen.py happens here, in a fresh interpreter, so nothing the
creating process holds in memory (a fitted encoder, a loaded index, a cache) can hide a
collection that does not stand on its own. It prints one JSON object on its last line.

    python collection_child.py make ROOT NAME...     one collection per catalog name
    python collection_child.py reopen ROOT NAME...   reopen each, search, add, search again
    python collection_child.py delete PATH VECTORS   bm25 + word vectors: 10 docs, search, delete 5
    python collection_child.py search PATH           dense, nearest_ids and sparse search
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from embedcraft.encoders.pooling import MeanPoolingEncoder
from embedcraft.store import Collection, HnswSettings

DOCS = [
    "The cat sat on the mat.",
    "Dogs and cats are popular pets.",
    "The stock market fell sharply on Monday.",
    "Investors sold shares as the market dropped.",
    "A recipe for tomato soup with fresh basil.",
    "Cook the pasta in salted boiling water.",
    "The telescope revealed rings around the planet.",
    "Astronomers discovered a new planet orbiting a distant star.",
]
LATER = ["A kitten chased the puppy around the garden.", "Bond prices rose as banks lent more."]
QUERY = "cats and dogs as pets"


def _hits(col: Collection, query: str) -> list[list[object]]:
    return [[h.id, round(h.score, 5)] for h in col.search(query, k=4)]


def make(root: Path, names: list[str]) -> dict[str, object]:
    out = {}
    for name in names:
        with Collection(root / name, encoders=[name]) as col:
            col.add(DOCS, [f"d{i}" for i in range(len(DOCS))])
            out[name] = {"hits": _hits(col, QUERY)}
    return out


def reopen(root: Path, names: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in names:
        try:
            out[name] = _reopen_one(root / name, name)
        except Exception as exc:  # reported per encoder, so one failure names itself
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _reopen_one(path: Path, name: str) -> dict[str, object]:
    with Collection(path) as col:
        before = _hits(col, QUERY)
        col.add(LATER, ["later0", "later1"])
        after = [h.id for h in col.search("kitten puppy garden", k=3)]
        stored = col.export(name)
        agreement = None
        if not col.encoder(name).sparse:  # stored vectors against the reopened encoder's own
            fresh = np.asarray(col.encoder(name).encode(stored.texts), dtype=np.float64)
            kept = np.asarray(stored.vectors, dtype=np.float64)
            cos = (fresh * kept).sum(1) / (
                np.linalg.norm(fresh, axis=1) * np.linalg.norm(kept, axis=1)
            )
            agreement = float(cos.min())
        return {"hits": before, "after": after, "count": col.count(), "cos": agreement}


def delete(path: Path, vectors: str) -> dict[str, object]:
    enc = MeanPoolingEncoder(vectors, name="tiny-mean")
    hnsw = HnswSettings(threshold=4)  # the graph index, not only the flat one
    with Collection(path, encoders=["bm25", enc], hnsw=hnsw) as col:
        col.add(DOCS + LATER, [f"d{i}" for i in range(10)])
        col.search(QUERY, k=5)  # builds and saves the dense index
        col.delete([f"d{i}" for i in range(0, 10, 2)])
    return {}


def search(path: Path) -> dict[str, object]:
    with Collection(path) as col:
        name = next(n for n in col.encoder_names if not col.encoder(n).sparse)
        hits = [h.id for h in col.search(QUERY, k=10, mode="dense")]
        query = np.asarray(col.encoder(name).encode([QUERY]))[0]
        ids, scores = col.nearest_ids(query, k=10)
        words = " ".join(DOCS + LATER)  # every word of every document: all that remain match
        sparse = (
            [h.id for h in col.search(words, k=10, mode="sparse")]
            if len(col.encoder_names) > 1
            else []
        )
        return {
            "hits": hits,
            "nearest": ids[0],
            "finite": int(np.isfinite(scores).sum()),
            "sparse": sparse,
        }


def main() -> None:
    phase, target, *rest = sys.argv[1:]
    if phase == "make":
        result = make(Path(target), rest)
    elif phase == "reopen":
        result = reopen(Path(target), rest)
    elif phase == "delete":
        result = delete(Path(target), rest[0])
    else:
        result = search(Path(target))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
