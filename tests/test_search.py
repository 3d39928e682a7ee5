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


def test_reciprocal_rank_fusion_sums_reciprocal_ranks() -> None:
    from embedcraft.search import RRF_K, reciprocal_rank_fusion

    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]])
    expected = {
        "a": 1 / (RRF_K + 1) + 1 / (RRF_K + 2),
        "b": 1 / (RRF_K + 2),
        "c": 1 / (RRF_K + 3) + 1 / (RRF_K + 1),
    }
    assert [key for key, _ in fused] == ["a", "c", "b"]
    assert dict(fused) == pytest.approx(expected)
    assert reciprocal_rank_fusion([["a"], ["b"]], k=1) == [("a", 1 / (RRF_K + 1))]


def test_weighted_fusion_scales_each_list() -> None:
    from embedcraft.search import weighted_fusion

    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    sparse = [("c", 12.0), ("b", 2.0)]
    fused = dict(weighted_fusion([dense, sparse], [0.5, 0.5]))
    assert fused == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.5})
    assert [k for k, _ in weighted_fusion([dense, sparse], [1.0, 0.0])] == ["a", "b", "c"]
    with pytest.raises(InputError, match="2 weights"):
        weighted_fusion([dense], [0.5, 0.5])
