"""The encoder contract, checked on every family: what callers rely on without probing.

Results and reports must not depend on `batch_size` (the report covers the whole call), every
encoder declares what it is, and its saved spec rebuilds an equal encoder in another process's
terms (from JSON-ready values and arrays).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from conftest import CORPUS
from embedcraft import load_encoder
from embedcraft.catalog import FAMILY_MODULES, list_encoders
from embedcraft.encoders import (
    BaseEncoder,
    Encoder,
    EncodeReport,
    EncoderKind,
    InputKind,
    MeanPoolingEncoder,
)
from embedcraft.encoders.postprocess import PostProcessedEncoder
from embedcraft.errors import InputError

# Ten texts; the made-up words are outside GloVe's vocabulary: 13 of them in all.
OOV_TEXTS = [
    "the cat qzxwv sat",
    "blorptastic dogs and qzxwv cats",
    "markets fell",
    "zzyzzyx frumple the snorkwhistle",
    "a recipe for soup",
    "flibbertyjib",
    "the planet grooblex and the star vrenk",
    "quantiblorf mibbleflax zorptastic",
    "stars",
    "plinkerdoo",
]
OOV_TOTAL = 13


def _vectors_equal(a: object, b: object, *, atol: float = 1e-6) -> None:
    if sp.issparse(a):
        assert sp.issparse(b)
        np.testing.assert_allclose(a.toarray(), b.toarray(), atol=atol)  # type: ignore[union-attr]
    else:
        np.testing.assert_allclose(a, b, atol=atol)  # type: ignore[arg-type]


def _distilled() -> BaseEncoder:
    from embedcraft.encoders.distill import distill
    from embedcraft.encoders.transformer import TransformerEncoder

    return distill(TransformerEncoder("minilm-l3"), dim=8, max_tokens=3000)


BUILDERS: dict[str, Callable[[], BaseEncoder]] = {
    "onehot": lambda: load_encoder("onehot").fit(CORPUS),
    "bow": lambda: load_encoder("bow").fit(CORPUS),
    "tfidf": lambda: load_encoder("tfidf").fit(CORPUS),
    "bm25": lambda: load_encoder("bm25").fit(CORPUS),
    "hashing": lambda: load_encoder("hashing"),
    "glove-mean": lambda: load_encoder("glove-6b-50d"),
    "glove-tfidf": lambda: load_encoder("glove-6b-50d-tfidf").fit(CORPUS),
    "glove-sif": lambda: load_encoder("glove-6b-50d-sif").fit(CORPUS),
    "minilm-l3": lambda: load_encoder("minilm-l3"),
    "minilm-l6-exact": lambda: load_encoder("minilm-l6-exact"),
    "distilled": _distilled,
    "postprocessed": lambda: PostProcessedEncoder(load_encoder("minilm-l3"), truncate_dim=64),
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def encoder(request: pytest.FixtureRequest) -> BaseEncoder:
    return BUILDERS[request.param]()


def test_every_encoder_declares_the_contract(encoder: BaseEncoder) -> None:
    assert isinstance(encoder, Encoder)
    assert encoder.kind in set(EncoderKind) and encoder.input_kind is InputKind.TEXT
    assert encoder.metric in ("cosine", "dot") and encoder.is_fitted()
    assert isinstance(encoder.token_unit, str) and encoder.token_unit
    counts = encoder.count_tokens(["telescope planets orbit", ""])
    assert len(counts) == 2 and counts[0] > counts[1] >= 0
    assert encoder.count_tokens("telescope planets orbit") == counts[:1]


def test_vectors_and_reports_do_not_depend_on_batch_size(encoder: BaseEncoder) -> None:
    texts = OOV_TEXTS + CORPUS
    whole = encoder.encode_with_report(texts, batch_size=1000)
    for size in (1, 3, 7):
        part = encoder.encode_with_report(texts, batch_size=size)
        _vectors_equal(part.vectors, whole.vectors, atol=1e-5)
        assert part.report == whole.report
    assert whole.report.inputs == len(texts)
    assert encoder.last_report == whole.report  # the last call's report, whole


def test_queries_do_not_depend_on_batch_size(encoder: BaseEncoder) -> None:
    one = encoder.encode_queries(CORPUS, batch_size=2)
    _vectors_equal(one, encoder.encode_queries(CORPUS, batch_size=100), atol=1e-5)


def test_the_saved_spec_rebuilds_an_equal_encoder(encoder: BaseEncoder) -> None:
    if isinstance(encoder, PostProcessedEncoder):
        with pytest.raises(InputError, match="settings"):
            encoder.save("unused")
        return
    spec, arrays = encoder.to_spec()
    spec = json.loads(json.dumps(spec))  # JSON-ready, as stored in a collection or a folder
    rebuilt = BaseEncoder.from_spec(spec, arrays)
    assert type(rebuilt) is type(encoder) and rebuilt.name == encoder.name
    _vectors_equal(rebuilt.encode(CORPUS), encoder.encode(CORPUS))


def test_the_name_is_a_parameter_that_clone_keeps(encoder: BaseEncoder) -> None:
    if isinstance(encoder, PostProcessedEncoder):
        return  # wraps an encoder; its parameters are the wrapped one's
    assert encoder.get_params()["name"] == encoder.name
    assert clone(encoder).name == encoder.name


def test_oov_report_counts_every_batch_of_the_call() -> None:
    glove = MeanPoolingEncoder(vectors="glove-6b-50d")
    for size in (5, 3, 1, 100):
        report = glove.encode_with_report(OOV_TEXTS, batch_size=size).report
        assert report.oov_tokens == OOV_TOTAL, size
        assert report.empty_inputs == 3 and report.inputs == 10
    glove.encode(OOV_TEXTS, batch_size=5)
    assert glove.last_report is not None and glove.last_report.oov_tokens == OOV_TOTAL


def test_truncation_report_positions_are_those_of_the_call() -> None:
    l3 = load_encoder("minilm-l3")
    long = "word " * 400
    texts = ["short", long, "short too", "tiny", long, "end"]
    for size in (1, 2, 64):
        report = l3.encode_with_report(texts, batch_size=size).report
        assert report.truncated == [1, 4] and report.max_tokens == 128, size


def test_batch_size_is_checked_once_for_every_family() -> None:
    for name in ("tfidf", "glove-6b-50d", "minilm-l3"):
        encoder = load_encoder(name)
        if encoder.needs_fit:
            encoder.fit(CORPUS)
        for bad in (0, -3):
            with pytest.raises(InputError, match="batch_size must be >= 1"):
                encoder.encode(["a"], batch_size=bad)


def test_the_catalog_is_built_from_the_family_modules() -> None:
    import importlib

    names = [entry.name for entry in list_encoders()]
    assert len(names) == len(set(names))
    from_families = [
        entry.name
        for module in FAMILY_MODULES
        for entry in importlib.import_module(module).catalog_entries()
    ]
    assert names == from_families
    for entry in list_encoders():
        assert entry.kind in set(EncoderKind) and entry.input_kind in set(InputKind)
    images = {entry.name for entry in list_encoders() if entry.input_kind is InputKind.IMAGE}
    assert images == {"efficientnet-lite0", "pixels"}  # every other entry reads text


def test_a_report_merges_batch_positions() -> None:
    first = EncodeReport(inputs=2, tokens=5, oov_tokens=1, truncated=[1], max_tokens=8)
    second = EncodeReport(inputs=3, tokens=4, truncated=[0, 2], max_tokens=8, failed={1: "bad"})
    merged = EncodeReport().merged(first, [4, 0]).merged(second, [1, 2, 3])
    assert merged.truncated == [0, 1, 3] and merged.inputs == 5 and merged.tokens == 9
    assert merged.failed == {2: "bad"}
    assert merged.oov_tokens == 1 and merged.oov_rate == pytest.approx(1 / 9)


TOY_FAMILY = '''
from pathlib import Path
from typing import ClassVar

import numpy as np

from embedcraft.encoders.base import BaseEncoder
from embedcraft.encoders.contract import CatalogEntry, EncoderKind


class ToyLengthEncoder(BaseEncoder):
    """Two features per text: its length in characters and in words."""

    kind: ClassVar[EncoderKind] = EncoderKind.STATIC
    needs_fit: ClassVar[bool] = False

    def __init__(self, scale: float = 1.0, name: str = "toy") -> None:
        self.scale = scale
        self.name = name

    @property
    def dim(self) -> int:
        return 2

    def _encode(self, texts):
        return np.array([[len(t), len(t.split())] for t in texts], np.float32) * self.scale + 1


def catalog_entries():
    return [CatalogEntry("toy", EncoderKind.STATIC, "2", False, "test", "lengths",
                         lambda: ToyLengthEncoder(name="toy"))]


def open_path(path: Path):
    return None
'''


def test_a_new_family_is_one_module_and_one_catalog_line(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from embedcraft import catalog, open_collection

    (tmp_path / "toy_family.py").write_text(TOY_FAMILY, "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(catalog, "FAMILY_MODULES", (*catalog.FAMILY_MODULES, "toy_family"))
    try:
        toy = load_encoder("toy")
        assert [e.name for e in list_encoders()][-1] == "toy"
        encoded = toy.encode_with_report(["a b", "abc def ghi"], batch_size=1)
        np.testing.assert_array_equal(encoded.vectors, [[4, 3], [12, 4]])
        assert encoded.report.inputs == 2 and toy.count_tokens("a b c") == [3]
        toy.save(tmp_path / "saved")
        assert load_encoder(tmp_path / "saved").encode("a b").tolist() == [4.0, 3.0]
        with open_collection(tmp_path / "c", encoders=["toy"]) as collection:
            collection.add(["a b", "a much longer text here"], ids=["short", "long"])
            assert collection.search("a b", k=1)[0].id == "short"
    finally:
        sys.modules.pop("toy_family", None)


def test_an_unfitted_encoder_has_a_spec_but_cannot_be_saved(tmp_path) -> None:
    from embedcraft.errors import NotFittedError

    bm25 = load_encoder("bm25")
    spec, arrays = bm25.to_spec()
    assert spec["state"] == {} and arrays == {} and spec["params"]["name"] == "bm25"
    rebuilt = BaseEncoder.from_spec(json.loads(json.dumps(spec)))
    assert not rebuilt.is_fitted() and not rebuilt.has_learned_state()
    with pytest.raises(NotFittedError):
        bm25.save(tmp_path / "unfitted")
    assert not (tmp_path / "unfitted").exists()
