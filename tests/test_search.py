from __future__ import annotations

import pytest

from embedcraft import InputError, MemoryIndex, load_encoder


@pytest.mark.parametrize("name", ["tfidf", "bm25", "bow", "onehot", "hashing"])
def test_memory_index_finds_the_matching_document(name: str, corpus: list[str]) -> None:
    ids = [f"doc{i}" for i in range(len(corpus))]
    index = MemoryIndex.from_texts(load_encoder(name), corpus, ids)
    assert len(index) == len(corpus)
    hits = index.search("astronomers telescope planet", k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].id in {"doc6", "doc7"} and hits[0].text == corpus[int(hits[0].id[3:])]
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert index.fitted_here == (name != "hashing")
    many = index.search_many(["stock market", "pasta"], k=1)
    assert [h[0].id for h in many] == ["doc3", "doc5"] or many[0][0].id in {"doc2", "doc3"}


def test_memory_index_reuses_a_fitted_encoder(corpus: list[str]) -> None:
    encoder = load_encoder("tfidf").fit(corpus[:4])
    index = MemoryIndex.from_texts(encoder, corpus)
    assert not index.fitted_here and encoder.dim == load_encoder("tfidf").fit(corpus[:4]).dim
    assert index.ids == [str(i) for i in range(len(corpus))]


def test_k_larger_than_the_corpus_returns_everything(corpus: list[str]) -> None:
    index = MemoryIndex.from_texts(load_encoder("bm25"), corpus[:3])
    assert len(index.search("cat", k=50)) == 3
    with pytest.raises(InputError):
        MemoryIndex(
            load_encoder("hashing"), ["a"], ["x", "y"], load_encoder("hashing").encode(["x"])
        )
