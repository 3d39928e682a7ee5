"""Small topical documents and word vectors shared by the collection test files (SQLite and
PostgreSQL): four topics whose words lie near one direction each, so dense search has an answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedcraft.words import WordVectors

TOPICS = {
    "pets": "cat dog kitten puppy pet fur paw leash vet",
    "money": "stock market shares investor price bank bond trade fund",
    "food": "soup pasta basil recipe tomato cook oven salt bread",
    "space": "planet star telescope orbit moon rocket galaxy comet astronaut",
}
COMMON = ["the", "a", "of", "and", "on", "in", "with", "to", "is", "new"]


def documents(n: int, seed: int = 0) -> tuple[list[str], list[str], list[dict]]:
    """n documents cycling through the topics: texts, ids d0.., metadata (topic, n, even, score)."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    texts, ids, meta = [], [], []
    for i in range(n):
        topic = names[i % len(names)]
        words = rng.choice(TOPICS[topic].split(), size=5).tolist()
        words += rng.choice(COMMON, size=3).tolist()
        rng.shuffle(words)
        texts.append(" ".join(words) + f" doc{i}")
        ids.append(f"d{i}")
        meta.append({"topic": topic, "n": i, "even": i % 2 == 0, "score": round(i * 0.5, 1)})
    return texts, ids, meta


def topic_vectors(folder: Path, dim: int = 24, seed: int = 1) -> Path:
    """Word vectors with one direction per topic (plus noise), saved as a folder."""
    rng = np.random.default_rng(seed)
    words, rows = [], []
    centers = {t: rng.normal(size=dim) for t in TOPICS}
    for topic, text in TOPICS.items():
        for w in text.split():
            words.append(w)
            rows.append(centers[topic] + 0.6 * rng.normal(size=dim))
    for w in COMMON:
        words.append(w)
        rows.append(0.3 * rng.normal(size=dim))
    WordVectors(words, np.vstack(rows).astype(np.float32), name="tiny").save(folder)
    return folder
