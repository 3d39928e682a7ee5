"""`encode` as sentence-transformers users call it: one string gives one 1-D vector, and
`normalize_embeddings`, `show_progress_bar`, `convert_to_numpy` are honoured; the arguments
embedcraft cannot honour raise TypeError naming what to use instead, never pass silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from components import import_component
from conftest import CORPUS
from embedcraft import load_encoder
from embedcraft.encoders import BaseEncoder
from embedcraft.encoders.postprocess import PostProcessedEncoder

TEXTS = ["a cat sat on the mat", "the stock market fell", "qzxwv"]


@pytest.fixture(scope="module")
def static() -> BaseEncoder:
    return load_encoder("minilm-l6-static")


@pytest.fixture(scope="module")
def glove() -> BaseEncoder:
    return load_encoder("glove-6b-50d")  # not unit length; an unknown word gives a zero row


@pytest.fixture(scope="module")
def tfidf() -> BaseEncoder:
    return load_encoder("tfidf").fit(CORPUS)


def test_one_string_gives_one_vector_and_a_list_of_one_a_row(static: BaseEncoder) -> None:
    one = static.encode("a cat sat on the mat")
    assert isinstance(one, np.ndarray) and one.shape == (static.dim,)
    rows = static.encode(["a cat sat on the mat"])
    assert rows.shape == (1, static.dim)
    np.testing.assert_allclose(one, rows[0])
    assert static.encode_queries("a cat").shape == (static.dim,)
    assert static.encode_queries(["a cat"]).shape == (1, static.dim)


def test_the_report_and_transform_stay_two_dimensional(static: BaseEncoder) -> None:
    assert static.encode_with_report("a cat").vectors.shape == (1, static.dim)
    assert static.transform("a cat").shape == (1, static.dim)


def test_a_sparse_encoder_gives_one_row_for_one_string(tfidf: BaseEncoder) -> None:
    one = tfidf.encode("the cat sat")
    assert sp.issparse(one) and one.shape == (1, tfidf.dim)


def test_a_wrapped_encoder_takes_one_string_too(static: BaseEncoder) -> None:
    small = PostProcessedEncoder(static, truncate_dim=32)
    assert small.encode("a cat").shape == (32,)
    assert small.encode_queries("a cat").shape == (32,)
    assert small.encode_queries(["a cat"]).shape == (1, 32)


def test_normalize_embeddings_gives_unit_rows_and_keeps_zero_rows(glove: BaseEncoder) -> None:
    plain = glove.encode(TEXTS)
    assert not np.allclose(np.linalg.norm(plain[:2], axis=1), 1.0)
    unit = glove.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), [1.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(unit[0], plain[0] / np.linalg.norm(plain[0]), rtol=1e-5)
    single = glove.encode("a cat", normalize_embeddings=True)
    assert single.shape == (50,) and abs(float(np.linalg.norm(single)) - 1.0) < 1e-6
    queries = glove.encode_queries(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(queries, unit)


def test_normalize_embeddings_on_a_sparse_encoder(tfidf: BaseEncoder) -> None:
    unit = tfidf.encode(["the cat sat", "qzxwv"], normalize_embeddings=True)
    assert sp.issparse(unit)
    norms = np.sqrt(unit.multiply(unit).sum(axis=1)).A1
    np.testing.assert_allclose(norms, [1.0, 0.0], atol=1e-6)


def test_show_progress_bar_is_progress(
    static: BaseEncoder, capsys: pytest.CaptureFixture[str]
) -> None:
    static.encode(TEXTS, show_progress_bar=True)
    assert "3/3" in capsys.readouterr().err
    static.encode(TEXTS, show_progress_bar=False)
    assert capsys.readouterr().err == ""


def test_convert_to_numpy(static: BaseEncoder, tfidf: BaseEncoder) -> None:
    dense = tfidf.encode(["the cat sat", "a dog"], convert_to_numpy=True)
    assert isinstance(dense, np.ndarray) and dense.shape == (2, tfidf.dim)
    np.testing.assert_allclose(dense, tfidf.encode(["the cat sat", "a dog"]).toarray())
    assert tfidf.encode("the cat", convert_to_numpy=True).shape == (tfidf.dim,)
    assert sp.issparse(tfidf.encode(["the cat"], convert_to_numpy=False))
    assert static.encode(TEXTS, convert_to_numpy=True).shape == (3, static.dim)
    with pytest.raises(TypeError, match="numpy"):
        static.encode(TEXTS, convert_to_numpy=False)


@pytest.mark.parametrize(
    ("argument", "value", "says"),
    [
        ("convert_to_tensor", True, "torch.from_numpy"),
        ("device", "cuda", "CPU"),
        ("precision", "int8", "quantize"),
        ("output_value", "token_embeddings", "one vector per input"),
        ("truncate_dim", 64, "PostProcessedEncoder"),
        ("prompt_name", "query", "no prompts"),
        ("normalise", True, "normalize_embeddings"),
    ],
)
def test_arguments_that_cannot_be_honoured_are_refused(
    static: BaseEncoder, argument: str, value: object, says: str
) -> None:
    with pytest.raises(TypeError, match=says):
        static.encode(TEXTS, **{argument: value})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=argument):
        static.encode_queries(TEXTS, **{argument: value})  # type: ignore[arg-type]


def test_what_embedcraft_does_anyway_is_accepted(static: BaseEncoder) -> None:
    same = static.encode(
        TEXTS, convert_to_tensor=False, device=None, precision="float32", batch_size=2
    )
    np.testing.assert_allclose(same, static.encode(TEXTS))


def test_one_image_gives_one_vector(tmp_path: Path) -> None:
    import_component("PIL.Image", "Pillow (pip install 'embedcraft[images]')")
    from embedcraft.encoders.image import PixelsEncoder
    from pictures import gradient

    pixels = PixelsEncoder()
    path = tmp_path / "one.png"
    gradient(0).save(path)
    one = pixels.encode(path)
    assert one.shape == (pixels.dim,)
    np.testing.assert_allclose(one, pixels.encode([path])[0])
    assert pixels.encode(str(path)).shape == (pixels.dim,)
    assert pixels.encode(gradient(1)).shape == (pixels.dim,)
    assert pixels.encode(np.asarray(gradient(1))).shape == (pixels.dim,)
    assert pixels.encode(path.read_bytes()).shape == (pixels.dim,)
    assert pixels.encode(np.stack([np.asarray(gradient(1))])).shape == (1, pixels.dim)
