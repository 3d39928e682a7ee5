"""Images over HTTP: /v1/embeddings takes base64 data URLs for image models, through the real
`openai` client and httpx against a live server, compared with the library's own encodes."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from components import import_component
from embedcraft import load_encoder
from embedcraft.server import BackgroundServer, Limits, ServerConfig

Image = import_component("PIL.Image", "Pillow (pip install 'embedcraft[images]')")

KEY = "image-key"


def _picture(seed: int, size: tuple[int, int] = (48, 64)) -> Image.Image:
    """A smooth colour picture (gradients), different for each seed."""
    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    channels = [(x * (seed + 1) + y * (3 - seed % 3) + 60 * c) % 256 for c in range(3)]
    return Image.fromarray(np.stack(channels, axis=-1).astype(np.uint8))


def _data_url(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    kind = "jpeg" if fmt == "JPEG" else fmt.lower()
    return f"data:image/{kind};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _decoded(url: str) -> Image.Image:
    """What the server receives: the image the data URL holds, decoded."""
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


@pytest.fixture(scope="module")
def encoders() -> dict[str, Any]:
    return {"pixels": load_encoder("pixels"), "glove": load_encoder("glove-6b-50d")}


@pytest.fixture(scope="module")
def server(encoders: dict[str, Any]) -> Iterator[BackgroundServer]:
    with BackgroundServer(ServerConfig(encoders=encoders, api_key=KEY)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def http(server: BackgroundServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
        yield c


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()["error"])


def test_png_and_jpeg_data_urls_embed_like_the_library(
    client: openai.OpenAI, encoders: dict[str, Any]
) -> None:
    urls = [_data_url(_picture(0)), _data_url(_picture(1), "JPEG"), _data_url(_picture(2))]
    response = client.embeddings.create(model="pixels", input=urls)
    served = np.array([d.embedding for d in response.data], dtype=np.float32)
    direct = encoders["pixels"].encode([_decoded(u) for u in urls])
    assert [d.index for d in response.data] == [0, 1, 2]
    np.testing.assert_allclose(served, direct, atol=1e-6)
    assert response.usage.prompt_tokens == 3  # one per image
    one = client.embeddings.create(model="pixels", input=urls[1])  # a single string
    np.testing.assert_allclose(one.data[0].embedding, direct[1], atol=1e-6)


def test_wrong_kind_and_bad_images_are_the_clients_400(http: httpx.Client) -> None:
    good = _data_url(_picture(0))
    garbage = "data:image/jpeg;base64," + base64.b64encode(b"not a jpeg at all").decode()
    truncated = good[: len(good) // 2]
    truncated = truncated[: len(truncated) // 4 * 4]  # still valid base64, half a PNG
    cases = [
        ("pixels", ["a photo of a cat"], "input[0] is text, but this model reads images"),
        ("glove", ["a cat", good], "input[1] is an image (a data URL), but this model reads"),
        ("pixels", [good, garbage], "input[1]: not an image"),
        ("pixels", [good, good, truncated], "input[2]: "),
        ("pixels", ["data:image/png;base64,@@@@"], "input[0]: the base64 data is damaged"),
        ("pixels", ["data:text/plain;base64,aGVsbG8="], "input[0] is a data URL of 'text/plain'"),
    ]
    for model, inputs, message in cases:
        error = _error(http.post("/v1/embeddings", json={"model": model, "input": inputs}), 400)
        assert error["message"].startswith(message), (inputs[-1][:40], error)
        assert error["param"] == "input"


def test_image_request_limits_stay_enforced(encoders: dict[str, Any]) -> None:
    limits = Limits(max_inputs=2, max_body_bytes=4000)
    config = ServerConfig(encoders={"pixels": encoders["pixels"]}, limits=limits)
    small = _data_url(_picture(0, (8, 8)))
    with BackgroundServer(config) as running:
        url = f"{running.url}/v1/embeddings"
        many = httpx.post(url, json={"model": "pixels", "input": [small] * 3})
        error = _error(many, 422)
        assert error["code"] == "too_many_inputs" and "3 images; the limit is 2" in error["message"]
        big = _data_url(Image.effect_noise((96, 96), 64).convert("RGB"))
        assert len(big) > 4000
        assert (
            "limit is 4000 bytes"
            in _error(httpx.post(url, json={"model": "pixels", "input": big}), 413)["message"]
        )
        ok = httpx.post(url, json={"model": "pixels", "input": [small, small]})
        assert ok.status_code == 200 and len(ok.json()["data"]) == 2


def test_search_on_an_image_collection_is_refused_without_touching_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from embedcraft.store import Collection

    picture = tmp_path / "one.png"
    _picture(1).save(picture)
    collection = Collection(tmp_path / "pics", encoders=["pixels"])
    collection.add([str(picture)], ids=["one.png"])
    config = ServerConfig(encoders={}, collections={"pics": collection}, api_key=KEY)
    try:
        with BackgroundServer(config) as running:
            headers = {"Authorization": f"Bearer {KEY}"}
            for query in (str(picture), "/etc/passwd", "a cat on a mat"):
                reply = httpx.post(
                    f"{running.url}/search", json={"query": query}, headers=headers, timeout=60
                )
                assert reply.status_code == 400, reply.text
                error = reply.json()["error"]
                assert (
                    error["code"] == "unsupported_input_kind" and "holds images" in error["message"]
                )
                assert query not in error["message"]
    finally:
        collection.close()
