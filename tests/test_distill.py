"""Static models distilled from a transformer: the table, encoding by hand, save/load, the cache.

Distilling a whole vocabulary takes about a minute, so the tests distil minilm-l3 (the faster
catalog model) with `max_tokens` (the first 2,000 ordinary tokens) to 8 columns, once per
module; the cache tests replace `distill` with a stand-in that returns that model. They skip
with the reason when onnxruntime, tokenizers or the model package is missing.
"""

from __future__ import annotations

import copy
import json
import logging
import pickle
import threading
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from embedcraft import load_encoder
from embedcraft.encoders import distill as distill_module
from embedcraft.errors import (
    CorruptFileError,
    InputError,
    MissingDependencyError,
    NotFittedError,
    UnknownEncoderError,
)

TEXTS = [
    "The man is in the house.",
    "A woman and a child are playing in the water.",
    "",
    "It was the best of times, it was the worst of times.",
    "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich 😀",
    "new york city",
]
MAX_TOKENS = 2000
DIM = 8


@pytest.fixture(scope="module")
def static() -> distill_module.StaticTransformerEncoder:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tokenizers")
    from embedcraft.encoders.transformer import TransformerEncoder, locate_model

    try:
        locate_model("minilm-l3")
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    return distill_module.distill(
        TransformerEncoder("minilm-l3"), dim=DIM, max_tokens=MAX_TOKENS, batch_size=500
    )


def unnormalized(encoder: distill_module.StaticTransformerEncoder):  # type: ignore[no-untyped-def]
    plain = copy.copy(encoder)
    plain.normalize = False
    return plain


def test_table_shapes_and_skipped_tokens(static) -> None:  # type: ignore[no-untyped-def]
    size = static.tokenizer_.get_vocab_size(with_added_tokens=True)
    assert size == 30522  # the uncased BERT WordPiece vocabulary
    assert static.table_.shape == (size, DIM) and static.table_.dtype == np.float32
    assert static.known_.shape == (size,) and int(static.known_.sum()) == MAX_TOKENS
    vocab = static.tokenizer_.get_vocab()
    for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused993]"):
        assert not static.known_[vocab[special]]
        assert not static.table_[vocab[special]].any()
    assert static.known_[vocab["the"]] and static.table_[vocab["the"]].any()
    assert static.dim == DIM and static.kind == "static" and not static.sparse
    assert not static.needs_fit and static.name == "minilm-l3-static"
    assert static.source == "minilm-l3" and static.normalize
    assert static.recipe_["dim"] == DIM and static.recipe_["tokens"] == MAX_TOKENS
    vectors = static.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), DIM) and vectors.dtype == np.float32
    norms = np.linalg.norm(vectors, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 3]], 1.0, rtol=1e-5)


def test_encode_is_the_mean_of_the_token_rows(static) -> None:  # type: ignore[no-untyped-def]
    text = "A woman and a child watch the comet through a telescope."
    ids = static.tokenizer_.encode(text, add_special_tokens=False).ids
    rows = [i for i in ids if static.known_[i]]
    assert 2 <= len(rows) < len(ids)  # some tokens lie beyond max_tokens and are skipped
    expected = static.table_[rows].astype(np.float64).mean(axis=0)
    plain = unnormalized(static).encode(text)
    np.testing.assert_allclose(plain, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        static.encode(text), expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6
    )


def test_a_text_without_known_tokens_is_the_zero_vector(static) -> None:  # type: ignore[no-untyped-def]
    vectors = static.encode(["", "😀", "[UNK] [CLS]", "the"])
    assert not vectors[:3].any()
    assert np.linalg.norm(vectors[3]) == pytest.approx(1.0, rel=1e-5)
    assert static.encode([]).shape == (0, DIM)


MIXED = [
    *TEXTS,
    "Un café crème à Genève, naïve façade; ÆSIR Œuvre ß İstanbul ΣΊΣΥΦΟΣ",
    "e\u0301te\u0301 (combining accents) \u0f73 \u0344 and\u200bzero\u00a0width",
    "tabs\tand\nnew lines\r\x00nul \x0bvt \x7fdel \x85next \x96dash \ufffd",
    "中文字符 日本語 한국어 ＦＵＬＬＷＩＤＴＨ ﬁ ligature",
    "[CLS] the [SEP] [MASK] [unused3] [pad] [Cls] [not special]",
    "   ",
    "\x00\x01",
    "The QUICK brown fox: jumped-over 12,345.67 lazy dogs!!! ...",
]


def reference(encoder, texts):  # type: ignore[no-untyped-def]
    """The mean of the known token rows of each text, tokenized one at a time by the tokenizer
    (normalizer included), normalized; with the report fields counted the plain way."""
    out = np.zeros((len(texts), encoder.dim), dtype=np.float64)
    tokens = oov = empty = 0
    for i, text in enumerate(texts):
        ids = encoder.tokenizer_.encode(text[: encoder.max_chars], add_special_tokens=False).ids
        rows = [j for j in ids if encoder.known_[j]]
        tokens, oov = tokens + len(ids), oov + len(ids) - len(rows)
        if not rows:
            empty += 1
            continue
        mean = encoder.table_[rows].astype(np.float64).mean(axis=0)
        out[i] = mean / np.linalg.norm(mean) if encoder.normalize else mean
    return out, tokens, oov, empty


@pytest.mark.parametrize("batch_size", [1, 4, 1024])
def test_vectors_and_report_match_a_plain_computation(static, batch_size: int) -> None:  # type: ignore[no-untyped-def]
    texts = MIXED * 3
    for encoder in (static, unnormalized(static)):
        result = encoder.encode_with_report(texts, batch_size=batch_size)
        expected, tokens, oov, empty = reference(encoder, texts)
        np.testing.assert_allclose(result.vectors, expected, rtol=1e-5, atol=1e-6)
        report = result.report
        assert (report.inputs, report.tokens, report.oov_tokens) == (len(texts), tokens, oov)
        assert report.empty_inputs == empty and empty >= 3 * 3  # "", "   ", "\x00\x01", ...
        assert report.truncated == []


def test_token_ids_match_the_full_tokenizer_on_every_character(static) -> None:  # type: ignore[no-untyped-def]
    """Texts are normalized in Python and tokenized without the tokenizer's normalizer where
    that gives the same ids: every code point of the first three planes, in context."""
    from embedcraft.encoders.distill import _encode_batch

    chars = [chr(c) for c in range(0x30000) if not 0xD800 <= c < 0xE000]
    texts = [
        f"x{c}Ab {c}{c}y [{c}CLS] {c}" + ("[SEP]" if i % 50 == 0 else "")
        for i, c in enumerate(chars)
    ]
    texts += ["".join(chars[i : i + 40]) for i in range(0, len(chars), 40)]
    # Spacing marks of a nonzero combining class: NFD reorders them across characters, so a
    # character-by-character normalization would differ here (x\u302e\u1b44y: the two swap).
    marks = [c for c in chars if unicodedata.combining(c) and unicodedata.category(c) != "Mn"]
    texts += [f"x{a}{b}y \u0301{a}" for a in marks for b in marks]
    for start in range(0, len(texts), 4096):
        batch = texts[start : start + 4096]
        expected = [e.ids for e in _encode_batch(static.tokenizer_, batch)]
        assert static._token_ids(batch) == expected
    plain, normalizer = static._plain(), static.tokenizer_.normalizer
    fed = [(t, plain.normalize(t)) for t in texts]
    assert [t for t, n in fed if n is not None and n != normalizer.normalize_str(t)] == []
    assert sum(n is None for _, n in fed) < len(fed) // 2  # unassigned code points, "[cls]"
    assert static.count_tokens(["[CLS] Café", "", "[cls]"]) == [2, 0, 4]  # [CLS] cafe; [ cl ##s ]


def test_cut_texts_are_reported(static, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(type(static), "max_chars", 20)
    texts = ["short", "the man is in the house, the end", "", "é" * 30]
    result = static.encode_with_report(texts, batch_size=3)
    assert result.report.truncated == [1, 3]
    expected, tokens, _, _ = reference(static, texts)
    np.testing.assert_allclose(result.vectors, expected, rtol=1e-5, atol=1e-6)
    assert result.report.tokens == tokens


def test_bad_items_raise_type_error_naming_the_index(static) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="item 1 is NoneType"):
        static.encode(["fine", None])
    with pytest.raises(TypeError, match="got None"):
        static.encode(None)


def test_batches_and_order_do_not_change_a_vector(static) -> None:  # type: ignore[no-untyped-def]
    whole = static.encode(TEXTS)
    np.testing.assert_allclose(static.encode(TEXTS, batch_size=1), whole, rtol=0, atol=1e-6)
    np.testing.assert_allclose(static.encode(TEXTS[::-1])[::-1], whole, rtol=0, atol=1e-6)
    np.testing.assert_allclose(static.encode(TEXTS[3]), whole[3], rtol=0, atol=1e-6)


def test_very_long_texts_are_cut_at_max_chars(static, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(type(static), "max_chars", 20)
    head = "the man is in the"  # 17 characters
    np.testing.assert_allclose(
        static.encode(head + "   house, the end"), static.encode(head), atol=1e-6
    )


def test_save_and_load_give_identical_vectors(static, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    static.save(tmp_path / "m")
    spec = json.loads((tmp_path / "m" / "encoder.json").read_text("utf-8"))
    assert spec["type"] == "StaticTransformerEncoder" and sorted(spec["arrays"]) == [
        "known",
        "table",
    ]
    assert json.loads(spec["state"]["tokenizer"])["model"]["type"] == "WordPiece"
    loaded = load_encoder(tmp_path / "m")
    assert isinstance(loaded, distill_module.StaticTransformerEncoder)
    assert loaded.name == static.name and loaded.recipe_ == static.recipe_
    np.testing.assert_array_equal(loaded.encode(TEXTS), static.encode(TEXTS))
    again = pickle.loads(pickle.dumps(static))
    np.testing.assert_array_equal(again.encode(TEXTS), static.encode(TEXTS))
    spec["state"]["tokenizer"] = "{not json"
    (tmp_path / "m" / "encoder.json").write_text(json.dumps(spec), "utf-8")
    with pytest.raises(CorruptFileError, match="tokenizer does not load"):
        load_encoder(tmp_path / "m")


def test_input_checks(static) -> None:  # type: ignore[no-untyped-def]
    from embedcraft.encoders.transformer import TransformerEncoder

    with pytest.raises(NotFittedError, match="static_model"):
        distill_module.StaticTransformerEncoder().encode("text")
    with pytest.raises(TypeError, match="TransformerEncoder"):
        distill_module.distill(static)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="dim must be between 1 and 5"):
        distill_module.distill(TransformerEncoder("minilm-l3"), dim=6, max_tokens=5)
    with pytest.raises(UnknownEncoderError, match="catalog transformer"):
        distill_module.static_model("no-such-model")


class FakeDistill:
    """Stands in for `distill`: counts calls and hands back the module's small model, under the
    name asked for (as `distill` names what it builds)."""

    def __init__(self, model, delay: float = 0.0) -> None:  # type: ignore[no-untyped-def]
        self.model, self.delay, self.calls = model, delay, 0

    def __call__(self, transformer, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        time.sleep(self.delay)
        built = copy.deepcopy(self.model)
        return built.set_params(name=kwargs["name"]) if "name" in kwargs else built


def test_the_cache_is_built_once_then_reused(static, tmp_path, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path))
    fake = FakeDistill(static)
    monkeypatch.setattr(distill_module, "distill", fake)
    with caplog.at_level(logging.INFO, logger="embedcraft"):
        first = distill_module.static_model("minilm-l6")
    assert fake.calls == 1 and first.name == "minilm-l6-distilled"
    assert any("minilm-l6: built the static model in" in r.getMessage() for r in caplog.records)
    folder = tmp_path / "models" / "minilm-l6-distilled"
    assert (folder / "encoder.json").is_file() and (folder / "table.npy").is_file()
    second = distill_module.static_model("minilm-l6")
    by_name = load_encoder("minilm-l6-distilled")  # the catalog entry goes through the cache
    assert fake.calls == 1
    assert by_name.name == "minilm-l6-distilled" and by_name.dim == DIM
    np.testing.assert_array_equal(second.encode(TEXTS), first.encode(TEXTS))
    np.testing.assert_array_equal(by_name.encode(TEXTS), static.encode(TEXTS))
    leftovers = [p.name for p in (tmp_path / "models").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_stale_or_damaged_cache_is_rebuilt(static, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path))
    fake = FakeDistill(static)
    monkeypatch.setattr(distill_module, "distill", fake)
    distill_module.static_model("minilm-l6")
    spec_file = tmp_path / "models" / "minilm-l6-distilled" / "encoder.json"
    spec = json.loads(spec_file.read_text("utf-8"))
    spec["state"]["recipe"]["version"] = 0  # an older recipe
    spec_file.write_text(json.dumps(spec), "utf-8")
    distill_module.static_model("minilm-l6")
    assert fake.calls == 2
    (spec_file.parent / "table.npy").write_bytes(b"not an array")
    rebuilt = distill_module.static_model("minilm-l6")
    assert fake.calls == 3
    np.testing.assert_array_equal(rebuilt.encode(TEXTS), static.encode(TEXTS))


def test_concurrent_first_uses_build_once(static, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("fcntl", reason="without fcntl concurrent builders both build")
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path))
    fake = FakeDistill(static, delay=0.3)
    monkeypatch.setattr(distill_module, "distill", fake)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(distill_module.static_model("minilm-l6")))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and fake.calls == 1
