"""The default served model gives one text one vector, however many requests ask at once.

Issue 20 found 25 different vectors for 200 concurrent requests of one text: the int8 default
set activation scales per batch, so the server's runs (of varying size, with varying neighbours)
changed a text's vector. The served cache is off here, so every request is really encoded.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx", reason="the default model's int8 build needs the onnx package")

from embedcraft import load_encoder
from embedcraft.server import BackgroundServer, ServerConfig

TEXT = "Users expect the same text to give the same vector."
NEIGHBOURS = [
    "Short one.",
    "A somewhat longer neighbour sentence that pads the batch it lands in with extra tokens.",
    "Stock prices fell sharply on Monday as investors sold shares.",
]


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    config = ServerConfig(encoders={"minilm-l6": load_encoder("minilm-l6")}, cache=None)
    with BackgroundServer(config) as running:
        yield running


async def _ask(client: httpx.AsyncClient, texts: list[str]) -> list[bytes]:
    body = {"model": "minilm-l6", "input": texts, "encoding_format": "base64"}
    response = await client.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    return [base64.b64decode(item["embedding"]) for item in response.json()["data"]]


async def _concurrently(url: str, requests: list[list[str]]) -> list[list[bytes]]:
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        return await asyncio.gather(*(_ask(client, texts) for texts in requests))


def test_200_concurrent_requests_of_one_text_give_one_vector(server: BackgroundServer) -> None:
    requests: list[list[str]] = []
    for i in range(200):  # alone, and beside texts of other lengths, in varying order
        extra = NEIGHBOURS[: i % 4]
        requests.append([TEXT, *extra] if i % 2 else [*extra, TEXT])
    answers = asyncio.run(_concurrently(server.url, requests))
    vectors = {rows[texts.index(TEXT)] for texts, rows in zip(requests, answers, strict=True)}
    assert len(vectors) == 1
    served = np.frombuffer(vectors.pop(), dtype="<f4")
    direct = load_encoder("minilm-l6").encode([TEXT])[0]
    assert np.array_equal(served, direct)
