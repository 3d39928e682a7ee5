from __future__ import annotations

import pytest

from embedcraft import (
    BaseEncoder,
    BM25Encoder,
    Encoder,
    UnknownEncoderError,
    list_encoders,
    load_encoder,
)


def test_every_entry_builds_an_encoder_under_the_contract(corpus: list[str]) -> None:
    entries = list_encoders()
    assert [e.name for e in entries][:5] == ["onehot", "bow", "tfidf", "bm25", "hashing"]
    for entry in entries:
        encoder = load_encoder(entry.name)
        assert isinstance(encoder, BaseEncoder)
        assert encoder.name == entry.name
        assert encoder.needs_fit == entry.needs_fit
        assert encoder.sparse == (entry.kind == "sparse")
        assert entry.source and entry.description and entry.width
        vectors = encoder.fit(corpus).encode(corpus[:2])
        assert isinstance(encoder, Encoder)  # the protocol (dim is readable once fitted)
        assert vectors.shape == (2, encoder.dim)


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UnknownEncoderError, match="did you mean tfidf") as info:
        load_encoder("tfdif")
    assert "Known names: onehot, bow, tfidf, bm25, hashing" in str(info.value)
    with pytest.raises(UnknownEncoderError, match="unknown encoder 'zzzz'"):
        load_encoder("zzzz")


def test_a_saved_folder_loads_by_path(corpus: list[str], tmp_path) -> None:
    encoder = load_encoder("bm25").fit(corpus)
    encoder.save(tmp_path / "my-bm25")
    loaded = load_encoder(tmp_path / "my-bm25")
    assert isinstance(loaded, BM25Encoder) and loaded.name == "bm25"
    assert loaded.dim == encoder.dim
    with pytest.raises(UnknownEncoderError, match="not a saved encoder"):
        load_encoder(tmp_path)


def test_names_are_case_insensitive() -> None:
    assert load_encoder("TFIDF").name == "tfidf"
