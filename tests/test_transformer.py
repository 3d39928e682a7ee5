"""Transformer sentence and token vectors (ONNX Runtime + tokenizers), checked against what a
user relies on: batch invariance, input order, pooling by hand, truncation and chunking, model
folders, settings errors, pickling.

Most tests use minilm-l3 (fast, 128 tokens) through one module-scoped encoder; only the "bank"
test uses minilm-l6. Tests skip with the reason when a model package is missing.
"""

from __future__ import annotations

import json
import pickle
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from embedcraft import load_encoder
from embedcraft.encoders.transformer import (
    ContextualTokens,
    TransformerEncoder,
    TruncationReport,
    locate_model,
)
from embedcraft.errors import InputError, MissingDependencyError, UnknownEncoderError

SHORT = "A man is playing a guitar on the street."
TEXTS = [
    "The cat sat on the mat.",
    "Dogs and cats are popular pets.",
    "The stock market fell sharply on Monday after a long week of uncertain trading.",
    "Investors sold shares as the market dropped.",
    "Soup.",
    "A recipe for tomato soup with fresh basil, garlic, olive oil and a pinch of salt.",
    "Cook the pasta in salted boiling water.",
    "The telescope revealed rings around the planet.",
    "Astronomers discovered a new planet orbiting a distant star in a nearby galaxy.",
    "Hi",
]

# Common words that the uncased BERT vocabulary keeps whole; the tests keep only those that are
# one word piece (checked with count_tokens), so token positions can be computed by hand.
_CANDIDATES = (
    "river house tree stone water fire earth wind cloud rain snow sun moon star sky sea lake "
    "hill road city town king queen book page door window table chair green blue red black "
    "white small large early late music dance story paper glass metal horse bird fish garden "
    "forest island bridge market school church street summer winter spring autumn"
)
CANDIDATE_WORDS = _CANDIDATES.split()


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Models built on first use (minilm-l6 may be one) go to a temporary cache, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDCRAFT_CACHE", str(tmp_path_factory.mktemp("embedcraft-cache")))
        yield


def _encoder(name: str, **kwargs: object) -> TransformerEncoder:
    """A catalog transformer, or a skip naming the missing package."""
    try:
        locate_model(name)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    return TransformerEncoder(name, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def l3() -> TransformerEncoder:
    encoder = _encoder("minilm-l3")
    encoder.encode("warm up")
    return encoder


@pytest.fixture(scope="module")
def one_piece_words(l3: TransformerEncoder) -> list[str]:
    counts = l3.count_tokens(CANDIDATE_WORDS)
    words = [w for w, n in zip(CANDIDATE_WORDS, counts, strict=True) if n == 3]  # [CLS] w [SEP]
    assert len(words) >= 40, "the vocabulary should keep most common words whole"
    return words


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _long_text(words: list[str], n: int) -> str:
    """`n` one-piece words, cycling through `words` (n tokens + [CLS] and [SEP])."""
    return " ".join(words[i % len(words)] for i in range(n))


# ------------------------------------------------------------------------- batching and order
def test_vector_does_not_depend_on_the_batch(l3: TransformerEncoder, one_piece_words) -> None:
    alone = l3.encode(SHORT)
    in_list = l3.encode([SHORT])[0]
    # One batch of three texts of very different lengths: the short one is padded.
    neighbours = [_long_text(one_piece_words, 100), SHORT, "Yes."]
    batch3 = l3.encode(neighbours, batch_size=3)[1]
    other = ["Soup.", "The telescope revealed rings around the planet.", SHORT, "No"]
    batch3b = l3.encode(other, batch_size=3)[2]
    mixed = [
        _long_text(one_piece_words, 5 + i) if i % 2 else TEXTS[i % len(TEXTS)] for i in range(70)
    ]
    mixed[33] = SHORT
    batch64 = l3.encode(mixed, batch_size=64)[33]
    for got in (in_list, batch3, batch3b, batch64):
        assert _cos(alone, got) >= 0.99999


def test_long_texts_run_in_smaller_batches_under_the_token_budget(
    l3: TransformerEncoder, one_piece_words: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedcraft.encoders.transformer import TOKEN_BUDGET

    _, runtime = l3._runtime()
    shapes: list[tuple[int, int]] = []
    real = runtime.hidden

    def recording(ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        shapes.append((len(ids), max(len(i) for i in ids)))
        return real(ids)

    monkeypatch.setattr(runtime, "hidden", recording)
    texts = [_long_text(one_piece_words, 120)] * 40 + ["Yes.", "No."] * 40
    got = l3.encode(texts, batch_size=64)
    assert shapes[0][0] == 64 and shapes[0][1] <= 4  # short texts: the full batch
    assert sum(rows for rows, _ in shapes) == 80 + 40  # every text ran once
    assert all(rows * length <= TOKEN_BUDGET for rows, length in shapes)
    assert max(length for _, length in shapes) == 122 and len(shapes) >= 3
    monkeypatch.undo()
    alone = l3.encode(texts[0])
    assert _cos(alone, got[0]) >= 0.99999 and _cos(alone, got[39]) >= 0.99999


def test_output_rows_follow_input_order(l3: TransformerEncoder) -> None:
    base = np.vstack([l3.encode(t) for t in TEXTS])
    assert (base @ base.T - np.eye(len(TEXTS))).max() < 0.999, "texts must be distinguishable"
    perm = np.random.default_rng(7).permutation(len(TEXTS))
    shuffled = l3.encode([TEXTS[i] for i in perm], batch_size=3)
    assert shuffled.shape == (len(TEXTS), 384)
    sims = shuffled @ base.T
    assert list(sims.argmax(axis=1)) == list(perm)
    assert sims[np.arange(len(TEXTS)), perm].min() >= 0.99999


def test_vectors_are_unit_length_by_default_and_raw_without_normalize(
    l3: TransformerEncoder,
) -> None:
    unit = l3.encode(TEXTS)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    raw = _encoder("minilm-l3", normalize=False).encode(TEXTS)
    norms = np.linalg.norm(raw, axis=1)
    assert np.abs(norms - 1.0).max() > 1e-2
    np.testing.assert_allclose(raw / norms[:, None], unit, atol=1e-5)


def test_empty_list_gives_no_rows(l3: TransformerEncoder) -> None:
    assert l3.encode([]).shape == (0, l3.dim)


# ------------------------------------------------------------------------- pooling
def test_pooling_modes_differ_and_match_token_vectors_by_hand(l3: TransformerEncoder) -> None:
    text = "Unbelievably good embeddings of short texts."
    hidden = l3.encode_tokens(text).vectors
    assert hidden.shape[0] == l3.count_tokens(text)[0]  # every piece, [CLS] and [SEP] included
    by_hand = {"mean": hidden.mean(axis=0), "cls": hidden[0], "max": hidden.max(axis=0)}
    got = {}
    for pooling, want in by_hand.items():
        got[pooling] = _encoder("minilm-l3", pooling=pooling, normalize=False).encode(text)
        np.testing.assert_allclose(got[pooling], want, rtol=1e-4, atol=1e-5)
    assert _cos(got["mean"], got["cls"]) < 0.999
    assert _cos(got["mean"], got["max"]) < 0.999
    assert _cos(got["cls"], got["max"]) < 0.999
    # The default (the model's own setting) is mean pooling, normalized.
    default = l3.encode(text)
    np.testing.assert_allclose(
        default, by_hand["mean"] / np.linalg.norm(by_hand["mean"]), atol=1e-5
    )


# ------------------------------------------------------------------------- token vectors
def _plain(s: str) -> str:
    """Lowercase without accents: how the uncased tokenizer spells a span of the text."""
    return "".join(
        c for c in unicodedata.normalize("NFD", s.lower()) if not unicodedata.combining(c)
    )


def test_token_offsets_map_back_to_the_text(l3: TransformerEncoder) -> None:
    text = "Unbelievably, the Café serves embeddings!"
    found = l3.encode_tokens(text)
    assert isinstance(found, ContextualTokens)
    assert found.tokens[0] == "[CLS]" and found.tokens[-1] == "[SEP]"
    assert found.word_ids[0] is None and found.word_ids[-1] is None
    assert len(found.tokens) == len(found.offsets) == len(found.word_ids) == len(found.vectors)
    for token, (start, end), word in zip(
        found.tokens[1:-1], found.offsets[1:-1], found.word_ids[1:-1], strict=True
    ):
        assert word is not None
        assert _plain(text[start:end]) == token.removeprefix("##")


def test_words_join_word_pieces(l3: TransformerEncoder) -> None:
    text = "Unbelievably good embeddings."
    found = l3.encode_tokens(text)
    assert len(found.tokens) > 2 + 4, "the long words should split into several pieces"
    words, vectors = found.words()
    assert words == ["Unbelievably", "good", "embeddings", "."]
    assert vectors.shape == (4, found.vectors.shape[1])
    for k in range(len(words)):
        pieces = [i for i, w in enumerate(found.word_ids) if w == k]
        np.testing.assert_allclose(vectors[k], found.vectors[pieces].mean(axis=0), atol=1e-6)
    np.testing.assert_array_equal(found.word_vector("EMBEDDINGS"), vectors[2])
    with pytest.raises(InputError, match="bank"):
        found.word_vector("bank")


def test_bank_by_the_river_is_not_bank_for_money() -> None:
    l6 = _encoder("minilm-l6")
    river = [
        "We sat on the bank of the river and watched the water flow.",
        "The boat drifted toward the muddy bank of the stream.",
    ]
    money = [
        "I deposited my salary at the bank this morning.",
        "The bank approved the loan for our new house.",
    ]
    r1, r2, m1, m2 = (l6.encode_tokens(t).word_vector("bank") for t in river + money)
    across = max(_cos(r, m) for r in (r1, r2) for m in (m1, m2))
    assert _cos(r1, r2) > across
    assert _cos(m1, m2) > across


# ------------------------------------------------------------------------- long texts
def test_truncation_is_reported_for_long_texts_only(
    l3: TransformerEncoder, one_piece_words: list[str]
) -> None:
    fits = _long_text(one_piece_words, 126)  # exactly 128 tokens with [CLS] and [SEP]
    too_long = _long_text(one_piece_words, 127)
    assert l3.count_tokens([fits, too_long]) == [128, 129]
    out = l3.encode(["short", too_long, fits, "also short", _long_text(one_piece_words, 400)])
    report = l3.last_truncation
    assert isinstance(report, TruncationReport)
    assert report.truncated == [1, 4]
    assert report.texts == 5 and report.max_tokens == 128 and not report.chunked
    # A truncated text is encoded as its first 126 word pieces.
    assert _cos(out[4], l3.encode(_long_text(one_piece_words, 126))) >= 0.99999
    l3.encode(["short"])
    assert l3.last_truncation.truncated == []


def test_a_megabyte_text_is_quick_and_reported(l3: TransformerEncoder) -> None:
    huge = "word " * 200_000
    assert len(huge) == 1_000_000
    start = time.perf_counter()
    out = l3.encode(["short text", huge])
    assert time.perf_counter() - start < 5.0
    assert l3.last_truncation.truncated == [1]
    assert np.isfinite(out).all()
    assert _cos(out[1], l3.encode("word " * 126)) >= 0.99999


def test_text_within_the_token_limit_is_not_cut_for_its_character_length(
    l3: TransformerEncoder,
) -> None:
    # 10,000 spaces are no tokens at all: the text is the sentence, well under 128 tokens.
    padded = " " * 10_000 + SHORT
    assert l3.count_tokens(padded) == l3.count_tokens(SHORT)
    out = l3.encode([padded, SHORT])
    assert l3.last_truncation.truncated == []
    assert _cos(out[0], out[1]) >= 0.99999


def test_chunking_averages_overlapping_windows(one_piece_words: list[str]) -> None:
    max_length, overlap, n = 32, 8, 70
    chunker = _encoder(
        "minilm-l3", max_length=max_length, long_texts="chunk", chunk_overlap=overlap
    )
    truncator = _encoder("minilm-l3", max_length=max_length)
    raw = _encoder("minilm-l3", max_length=max_length, normalize=False)
    words = [one_piece_words[i % len(one_piece_words)] for i in range(n)]
    text = " ".join(words)
    chunked = chunker.encode(["a short one", text])
    assert chunker.last_truncation.truncated == [1] and chunker.last_truncation.chunked
    # Windows of max_length - 2 pieces, each starting `overlap` pieces before the last ended.
    room, windows, start = max_length - 2, [], 0
    while True:
        windows.append(" ".join(words[start : start + room]))
        if start + room >= n:
            break
        start += room - overlap
    assert len(windows) == 3
    mean = raw.encode(windows).mean(axis=0)
    assert _cos(chunked[1], mean / np.linalg.norm(mean)) >= 0.99999
    truncated = truncator.encode(text)
    assert _cos(chunked[1], truncated) < 0.999
    tail = truncator.encode(" ".join(words[n // 2 :]))
    assert _cos(chunked[1], tail) > _cos(truncated, tail)
    # A text that fits is one window: the same as without chunking.
    assert _cos(chunked[0], truncator.encode("a short one")) >= 0.99999


# ------------------------------------------------------------------------- odd inputs
def test_empty_string_gives_a_fixed_non_zero_vector(l3: TransformerEncoder) -> None:
    first = l3.encode("")
    again = l3.encode(["Some text first.", "", "More text."])[1]
    assert np.isfinite(first).all()
    assert np.linalg.norm(first) == pytest.approx(1.0, abs=1e-5)
    assert _cos(first, again) >= 0.99999


def test_none_is_a_type_error_naming_its_index(l3: TransformerEncoder) -> None:
    with pytest.raises(TypeError, match="item 1"):
        l3.encode(["fine", None])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        l3.encode(None)  # type: ignore[arg-type]


def test_unknown_model_name() -> None:
    with pytest.raises(UnknownEncoderError, match="minilm-l3"):
        locate_model("no-such-transformer")
    with pytest.raises(UnknownEncoderError):
        TransformerEncoder("no-such-transformer").encode("text")


# ------------------------------------------------------------------------- model folders
def test_folder_without_tokenizer_names_the_missing_file(tmp_path: Path) -> None:
    onnx = _encoder("minilm-l3").spec.onnx
    (tmp_path / "model.onnx").symlink_to(onnx)
    with pytest.raises(InputError, match="tokenizer.json"):
        locate_model(tmp_path)
    with pytest.raises(InputError, match="tokenizer.json"):
        load_encoder(tmp_path).encode("text")


def test_model_folder_loads_and_matches_the_catalog_model(
    l3: TransformerEncoder, tmp_path: Path
) -> None:
    folder = tmp_path / "my-minilm"
    folder.mkdir()
    (folder / "model.onnx").symlink_to(l3.spec.onnx)
    l3._runtime()[1].tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "embedcraft-model.json").write_text(
        json.dumps({"pooling": "mean", "max_length": 128})
    )
    encoder = load_encoder(folder)
    assert isinstance(encoder, TransformerEncoder)
    assert encoder.name == "my-minilm" and encoder.kind == "contextual"
    assert encoder.spec.max_length == 128 and encoder.spec.pooling == "mean"
    got, want = encoder.encode(TEXTS), l3.encode(TEXTS)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert encoder.encode_tokens(SHORT).tokens == l3.encode_tokens(SHORT).tokens


def test_model_folder_with_unknown_settings(l3: TransformerEncoder, tmp_path: Path) -> None:
    (tmp_path / "model.onnx").symlink_to(l3.spec.onnx)
    l3._runtime()[1].tokenizer.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "embedcraft-model.json").write_text(json.dumps({"poolin": "mean"}))
    with pytest.raises(InputError, match="poolin"):
        locate_model(tmp_path)
    (tmp_path / "embedcraft-model.json").write_text("{not json")
    with pytest.raises(InputError, match="JSON"):
        locate_model(tmp_path)


# ------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    "settings, message",
    [
        ({"max_length": 4}, "max_length"),
        ({"max_length": 100_000}, "max_length"),
        ({"pooling": "sum"}, "pooling"),
        ({"long_texts": "split"}, "long_texts"),
        ({"long_texts": "chunk", "chunk_overlap": 500}, "chunk_overlap"),
    ],
)
def test_bad_settings_are_input_errors(settings: dict, message: str) -> None:
    encoder = _encoder("minilm-l3", **settings)
    with pytest.raises(InputError, match=message):
        encoder.encode(["some text", "another"])


def test_batch_size_must_be_positive(l3: TransformerEncoder) -> None:
    with pytest.raises(InputError, match="batch_size"):
        l3.encode(["text"], batch_size=-1)


def test_single_thread_gives_the_same_vectors(l3: TransformerEncoder) -> None:
    one = _encoder("minilm-l3", threads=1).encode(TEXTS)
    np.testing.assert_allclose(one, l3.encode(TEXTS), atol=1e-5)


def test_pickle_and_clone_encode_identically(l3: TransformerEncoder) -> None:
    want = l3.encode(TEXTS)
    restored = pickle.loads(pickle.dumps(l3))
    np.testing.assert_allclose(restored.encode(TEXTS), want, atol=1e-6)
    tuned = _encoder("minilm-l3", pooling="cls", max_length=64)
    copy = clone(tuned)
    assert copy.get_params() == tuned.get_params()
    np.testing.assert_allclose(copy.encode(TEXTS), tuned.encode(TEXTS), atol=1e-6)


def test_exact_minilm_l6_vectors_do_not_depend_on_the_batch() -> None:
    """The exact path computes in float32, so neighbours cannot move a text's vector."""
    l6 = _encoder("minilm-l6-exact")
    texts = [
        "A man is playing a guitar.",
        "The quarterly report shows rising costs across every division of the company.",
        "Cats sleep.",
        "Three children are running on the beach while their parents watch from the dunes.",
    ]
    alone = np.vstack([l6.encode([t]) for t in texts])
    mixed = l6.encode(texts * 5, batch_size=7)[: len(texts)]
    assert float((alone * mixed).sum(axis=1).min()) >= 0.99999
