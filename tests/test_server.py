"""The HTTP server, as clients use it: the real `openai` client and httpx against live servers
started here (in a thread, and through `embedcraft serve` in a subprocess), compared with the
library's own encodes."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import scipy.sparse as sp

from cli_runner import command
from embedcraft import Collection, load_encoder
from embedcraft.encoders.postprocess import truncate_dim
from embedcraft.server import BackgroundServer, Limits, ServerConfig
from embedcraft.vectors import similarity

KEY = "test-key-123"
DOCS = [
    ("d1", "The cat sat on the mat.", {"year": 2001, "lang": "en"}),
    ("d2", "Dogs and cats are popular pets.", {"year": 2010, "lang": "en"}),
    ("d3", "The stock market fell sharply on Monday.", {"year": 2015, "lang": "fr"}),
    ("d4", "Astronomers discovered a new planet orbiting a distant star.", {"year": 2020}),
    ("d5", "The telescope revealed rings around the planet.", {"year": 2021, "lang": "en"}),
    ("d6", "A recipe for tomato soup with fresh basil.", {"year": 2018, "lang": "de"}),
]


@pytest.fixture(scope="module")
def encoders() -> dict[str, Any]:
    """minilm-l3 (batch-independent, so served vectors must equal direct ones), glove mean
    pooling (static), hashing (sparse, no fit) and bm25 fitted on the documents (asymmetric)."""
    bm25 = load_encoder("bm25").fit([text for _, text, _ in DOCS])
    return {
        "minilm-l3": load_encoder("minilm-l3"),
        "glove": load_encoder("glove-6b-50d"),
        "hashing": load_encoder("hashing"),
        "bm25": bm25,
    }


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collection]:
    col = Collection(tmp_path_factory.mktemp("server") / "docs", encoders=["bm25", "minilm-l3"])
    col.add([t for _, t, _ in DOCS], ids=[i for i, _, _ in DOCS], metadata=[m for *_, m in DOCS])
    yield col
    col.close()


@pytest.fixture(scope="module")
def server(encoders: dict[str, Any], collection: Collection) -> Iterator[BackgroundServer]:
    config = ServerConfig(encoders=encoders, collections={"docs": collection}, api_key=KEY)
    with BackgroundServer(config) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def http(server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    ) as c:
        yield c


def _vectors(response: Any) -> np.ndarray:
    return np.array([d.embedding for d in response.data], dtype=np.float32)


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The OpenAI-shaped error of a response that must have `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


TEXTS = ["A man is playing a guitar.", "The cat sat on the mat.", "", "Stock prices fell."]


# ---------------------------------------------------------------------- /v1/embeddings
def test_float_and_base64_equal_direct_encode(client: openai.OpenAI, encoders: dict) -> None:
    direct = encoders["minilm-l3"].encode(TEXTS)
    as_base64 = client.embeddings.create(model="minilm-l3", input=TEXTS)  # the client's default
    as_float = client.embeddings.create(model="minilm-l3", input=TEXTS, encoding_format="float")
    for response in (as_base64, as_float):
        assert [d.index for d in response.data] == list(range(len(TEXTS)))
        assert response.model == "minilm-l3"
        np.testing.assert_allclose(_vectors(response), direct, atol=1e-6)
    single = client.embeddings.create(model="glove", input="a cat on a mat")
    np.testing.assert_allclose(
        _vectors(single), encoders["glove"].encode(["a cat on a mat"]), atol=1e-6
    )


def test_repeated_texts_come_from_the_servers_cache(
    client: openai.OpenAI, http: httpx.Client, encoders: dict
) -> None:
    texts = ["a sentence only this test sends", "and a second one, also new here"]
    before = http.get("/health").json()["cache"]
    assert before["kind"] == "memory"
    first = client.embeddings.create(model="minilm-l3", input=texts)
    again = client.embeddings.create(model="minilm-l3", input=texts + texts[:1])
    after = http.get("/health").json()["cache"]["stats"]
    assert after["misses"] - before["stats"]["misses"] == 2  # each text encoded once
    assert after["hits"] - before["stats"]["hits"] == 3
    assert after["seconds_saved"] > before["stats"]["seconds_saved"]
    assert _vectors(again)[:2].tobytes() == _vectors(first).tobytes()
    np.testing.assert_allclose(_vectors(first), encoders["minilm-l3"].encode(texts), atol=1e-6)
    assert again.usage.prompt_tokens > first.usage.prompt_tokens  # usage counts every input


def test_base64_is_little_endian_float32(http: httpx.Client, encoders: dict) -> None:
    import base64

    body = {"model": "minilm-l3", "input": ["hello world"], "encoding_format": "base64"}
    payload = http.post("/v1/embeddings", json=body).json()
    raw = base64.b64decode(payload["data"][0]["embedding"])
    assert len(raw) == 384 * 4
    row = np.frombuffer(raw, dtype="<f4")
    np.testing.assert_allclose(row, encoders["minilm-l3"].encode("hello world"), atol=1e-6)


def test_dimensions_truncate_and_renormalize(client: openai.OpenAI, encoders: dict) -> None:
    response = client.embeddings.create(model="minilm-l3", input=TEXTS[:2], dimensions=64)
    got = _vectors(response)
    assert got.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    expected = truncate_dim(encoders["minilm-l3"].encode(TEXTS[:2]), 64)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_usage_counts_real_tokens(client: openai.OpenAI, http: httpx.Client) -> None:
    # transformers count their tokenizer's pieces: [CLS] hello world [SEP]
    response = client.embeddings.create(model="minilm-l3", input=["hello world"])
    assert response.usage.prompt_tokens == response.usage.total_tokens == 4
    longer = client.embeddings.create(model="minilm-l3", input=["hello world", "hello " * 300])
    assert longer.usage.prompt_tokens == 4 + 302  # counted before the model's truncation at 128
    # word encoders count analyzer words: "The cat sat on the mat." has 6
    static = client.embeddings.create(model="glove", input="The cat sat on the mat.")
    assert static.usage.prompt_tokens == 6
    sparse = http.post("/v1/sparse/embeddings", json={"model": "hashing", "input": ["a b c, d"]})
    assert sparse.json()["usage"]["prompt_tokens"] == 0  # one-letter tokens are not words there


def test_plain_bodies_skip_the_validation_layers_with_the_same_answers(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedcraft.server._routes import embeddings as route

    taken: list[Any] = []
    plain = route.plain_fields
    monkeypatch.setattr(route, "plain_fields", lambda body: taken.append(plain(body)) or taken[-1])
    body = {"model": "minilm-l3", "input": ["a cat", "stock prices"], "dimensions": 64}
    fast = http.post("/v1/embeddings", json=body)
    assert taken[-1] == ("minilm-l3", body["input"], "float", 64)  # the fast path answered
    routed = http.post("/v1/embeddings", json={**body, "dimensions": "64"})  # pydantic coerces
    assert taken[-1] is None  # left to the route
    assert fast.status_code == routed.status_code == 200
    assert fast.headers["content-type"] == routed.headers["content-type"]
    got, expected = fast.json(), routed.json()
    np.testing.assert_allclose(
        [d["embedding"] for d in got["data"]], [d["embedding"] for d in expected["data"]], atol=1e-6
    )
    assert {**got, "data": None} == {**expected, "data": None}
    # errors are the route's own, whichever way the request went
    for dims in (999, "999"):
        error = _error(http.post("/v1/embeddings", json={**body, "dimensions": dims}), 422)
        assert "between 1 and 384" in error["message"] and error["param"] == "dimensions"
    calls = len(taken)
    as_text = http.post(
        "/v1/embeddings", content=b'{"model": "minilm-l3", "input": "x"}',
        headers={"Content-Type": "text/plain"},
    )  # fmt: skip
    assert "must be a JSON object" in _error(as_text, 422)["message"]
    assert len(taken) == calls  # not JSON by its header: never read as JSON


def test_concurrent_clients_each_get_their_own_vectors(
    server: BackgroundServer, http: httpx.Client, encoders: dict
) -> None:
    clients, rounds = 12, 4
    texts = {
        c: [f"client {c} sentence {i} about topic {c * 7 + i}" for i in range(1 + c % 4)]
        for c in range(clients)
    }
    expected = {c: encoders["minilm-l3"].encode(t) for c, t in texts.items()}
    before = http.get("/health").json()["batching"]["minilm-l3"]
    barrier = threading.Barrier(clients)
    failures: list[str] = []

    def work(c: int) -> None:
        own = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
        barrier.wait()
        for _ in range(rounds):
            got = _vectors(own.embeddings.create(model="minilm-l3", input=texts[c]))
            if got.shape != expected[c].shape or not np.allclose(got, expected[c], atol=1e-6):
                failures.append(f"client {c} got vectors that are not its own")

    threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures
    after = http.get("/health").json()["batching"]["minilm-l3"]
    requests = after["requests"] - before["requests"]
    batches = after["batches"] - before["batches"]
    assert requests == clients * rounds
    assert batches < requests  # concurrent requests shared encodes


# ---------------------------------------------------------------------- other routes
def test_sparse_endpoint_gives_indices_and_values(http: httpx.Client, encoders: dict) -> None:
    for model, query in (("hashing", False), ("bm25", False), ("bm25", True)):
        body = {"model": model, "input": [t for _, t, _ in DOCS[:3]], "query": query}
        payload = http.post("/v1/sparse/embeddings", json=body).json()
        encoder = encoders[model]
        encode = encoder.encode_queries if query else encoder.encode
        direct = sp.csr_matrix(encode(body["input"]))
        rows, cols, vals = [], [], []
        for item in payload["data"]:
            assert item["object"] == "sparse_embedding"
            assert item["indices"] == sorted(item["indices"])
            rows += [item["index"]] * len(item["indices"])
            cols += item["indices"]
            vals += item["values"]
        got = sp.csr_matrix((vals, (rows, cols)), shape=(3, payload["dim"]), dtype=np.float32)
        assert payload["dim"] == encoder.dim
        assert abs(got - direct).max() < 1e-6
    bm25_doc = http.post("/v1/sparse/embeddings", json={"model": "bm25", "input": "cat"}).json()
    bm25_query = http.post(
        "/v1/sparse/embeddings", json={"model": "bm25", "input": "cat", "query": True}
    ).json()
    assert bm25_doc["data"][0]["values"] != bm25_query["data"][0]["values"]


def test_dense_and_sparse_models_point_to_their_endpoint(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="bm25", input="cat")
    assert "/v1/sparse/embeddings" in caught.value.message
    assert caught.value.code == "sparse_model"
    error = _error(http.post("/v1/sparse/embeddings", json={"model": "glove", "input": "x"}), 400)
    assert "/v1/embeddings" in error["message"]


def test_models_list(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    assert set(models) == {"minilm-l3", "glove", "hashing", "bm25"}
    assert models["minilm-l3"].model_extra["dim"] == 384
    assert models["glove"].model_extra["dim"] == 50
    assert models["bm25"].model_extra["sparse"] is True
    assert client.models.retrieve("glove").id == "glove"


def test_search_over_the_collection(http: httpx.Client, collection: Collection) -> None:
    body = {"query": "new planet in space", "k": 3, "where": {"year": {"$gte": 2015}}}
    payload = http.post("/search", json=body).json()
    direct = collection.search(body["query"], k=3, where=body["where"])
    assert payload["collection"] == "docs"
    assert [h["id"] for h in payload["data"]] == [h.id for h in direct]
    assert {h["id"] for h in payload["data"][:2]} == {"d4", "d5"}
    assert all(h["metadata"]["year"] >= 2015 for h in payload["data"])
    sparse = http.post("/search", json={"query": "tomato soup", "k": 1, "mode": "sparse"}).json()
    assert sparse["data"][0]["id"] == "d6"
    explained = http.post("/search", json={"query": "cat", "k": 1, "explain": True}).json()
    assert explained["data"][0]["explanation"]["bm25"]["terms"][0]["term"] == "cat"
    error = _error(http.post("/search", json={"query": "x", "collection": "nope"}), 404)
    assert "docs" in error["message"]
    bad_filter = _error(http.post("/search", json={"query": "x", "where": {"bad key!": 1}}), 400)
    assert "filter key" in bad_filter["message"]


def test_search_takes_min_score_and_names_a_filter_key_no_document_has(
    http: httpx.Client,
) -> None:
    """As the library and the CLI do: --min-score drops weak hits; an unknown key is the
    client's mistake (400 naming the keys that exist), not a server error."""
    every = http.post("/search", json={"query": "new planet in space", "k": 6}).json()["data"]
    cut = (every[0]["score"] + every[-1]["score"]) / 2
    body = {"query": "new planet in space", "k": 6, "min_score": cut}
    kept = http.post("/search", json=body).json()["data"]
    assert 0 < len(kept) < len(every)
    assert all(hit["score"] >= cut for hit in kept)
    unknown = _error(http.post("/search", json={"query": "x", "where": {"yeer": 2020}}), 400)
    assert "yeer" in unknown["message"] and "year" in unknown["message"]
    assert unknown["param"] == "where"


class _Tracebacks(logging.Handler):
    """Collects log records that carry a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@contextmanager
def _logged_tracebacks() -> Iterator[list[logging.LogRecord]]:
    """Records with a traceback that the server's logger or uvicorn's log meanwhile."""
    handler = _Tracebacks()
    loggers = [logging.getLogger(name) for name in ("embedcraft.server", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"year": 2**63}, "outside the 64-bit range"),
        ({"year": {"$gte": -(2**63) - 1}}, "outside the 64-bit range"),
        ({"year": {"$in": [2001, 2**64]}}, "outside the 64-bit range"),
        ({f"k{i}": 1 for i in range(1001)}, "at most 100 conditions"),
        ({"year": {"$in": list(range(20_000))}}, "at most 10000 values"),
        ({"year": {"$in": [2001, "2001"]}}, "mix of value types"),
    ],
)
def test_bad_filters_are_the_clients_400_with_no_traceback_logged(
    http: httpx.Client, where: dict, message: str
) -> None:
    """An integer beyond 64 bits was a 500 (SQLite's OverflowError), 1,001 keys too
    ("Expression tree is too large"), each with a traceback in the server log."""
    with _logged_tracebacks() as tracebacks:
        error = _error(http.post("/search", json={"query": "cat", "where": where}), 400)
        assert message in error["message"]
        assert (error["type"], error["param"], error["code"]) == (
            "invalid_request_error",
            "where",
            "invalid_filter",
        )
        assert http.post("/search", json={"query": "cat"}).status_code == 200  # still serving
    assert tracebacks == []


def test_similarity(http: httpx.Client, encoders: dict) -> None:
    a, b = ["a cat on a mat"], ["a kitten on a rug", "stock markets fell"]
    payload = http.post("/similarity", json={"model": "minilm-l3", "a": a, "b": b}).json()
    expected = similarity(encoders["minilm-l3"].encode(a), encoders["minilm-l3"].encode(b))
    np.testing.assert_allclose(payload["scores"], expected, atol=1e-5)
    assert payload["scores"][0][0] > payload["scores"][0][1]
    bm25 = http.post("/similarity", json={"model": "bm25", "a": "cat", "b": [DOCS[0][1]]}).json()
    assert bm25["metric"] == "dot"
    enc = encoders["bm25"]
    score = similarity(enc.encode_queries(["cat"]), enc.encode([DOCS[0][1]]), "dot")[0, 0]
    assert bm25["scores"][0][0] == pytest.approx(score, rel=1e-5)


def test_health_needs_no_key(server: BackgroundServer) -> None:
    payload = httpx.get(f"{server.url}/health").json()
    assert payload["status"] == "ok"
    assert payload["collections"] == ["docs"]


def test_head_health_answers_like_get(server: BackgroundServer) -> None:
    """A load balancer's HEAD probe got 405."""
    head = httpx.head(f"{server.url}/health")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/json"


# ---------------------------------------------------------------------- errors
def test_missing_or_wrong_key_gets_401(server: BackgroundServer) -> None:
    missing = _error(httpx.post(f"{server.url}/v1/embeddings", json={}), 401)
    assert missing["code"] == "missing_api_key"
    assert "Authorization: Bearer" in missing["message"]
    wrong = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.embeddings.create(model="minilm-l3", input="x")
    assert caught.value.code == "invalid_api_key"


def test_unknown_model_names_the_served_ones(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert caught.value.code == "model_not_found"
    assert "minilm-l3" in caught.value.message and "bm25" in caught.value.message


def test_bad_requests_get_422_in_the_openai_shape(http: httpx.Client) -> None:
    cases = [
        ({"model": "minilm-l3", "input": [1, 2, 3]}, "token arrays are not supported"),
        ({"model": "minilm-l3", "input": []}, "input is empty"),
        ({"model": "minilm-l3", "input": ["ok", 2.5]}, "input[1] must be a string"),
        ({"input": "x"}, "model: this field is required"),
        ({"model": "minilm-l3", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "minilm-l3", "input": "x", "dimensions": 999}, "between 1 and 384"),
    ]
    for body, message in cases:
        error = _error(http.post("/v1/embeddings", json=body), 422)
        assert message in error["message"], (body, error)
    not_json = http.post(
        "/v1/embeddings", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert "not valid JSON" in _error(not_json, 422)["message"]
    assert "no route" in _error(http.get("/v2/nothing"), 404)["message"]


def test_limits_give_413_and_422(encoders: dict) -> None:
    limits = Limits(max_inputs=3, max_chars=40, max_body_bytes=2000)
    config = ServerConfig(encoders={"minilm-l3": encoders["minilm-l3"]}, limits=limits)
    with BackgroundServer(config) as small:
        client = openai.OpenAI(base_url=f"{small.url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.UnprocessableEntityError) as many:
            client.embeddings.create(model="minilm-l3", input=["a", "b", "c", "d"])
        assert many.value.code == "too_many_inputs"
        assert "4 texts; the limit is 3" in many.value.message
        with pytest.raises(openai.UnprocessableEntityError) as long:
            client.embeddings.create(model="minilm-l3", input=["short", "x" * 41])
        assert long.value.code == "input_too_long"
        assert "input[1] has 41 characters; the limit is 40" in long.value.message
        huge = httpx.post(
            f"{small.url}/v1/embeddings", json={"model": "minilm-l3", "input": "y" * 5000}
        )
        error = _error(huge, 413)
        assert "limit is 2000 bytes" in error["message"]
        ok = client.embeddings.create(model="minilm-l3", input=["a", "b", "c"])
        assert len(ok.data) == 3


# ---------------------------------------------------------------------- shutdown, CLI
def test_background_server_finishes_requests_then_stops() -> None:
    encoder = load_encoder("minilm-l3")
    encoding = threading.Event()
    encode = encoder.encode

    def reporting_encode(texts: Any, **kwargs: Any) -> Any:
        if len(texts) > 1:  # the big request, not the one-text warm-up
            encoding.set()
        return encode(texts, **kwargs)

    encoder.encode = reporting_encode  # type: ignore[method-assign]
    config = ServerConfig(encoders={"minilm-l3": encoder})
    running = BackgroundServer(config).start()
    url = running.url
    results: list[int] = []
    big = [f"sentence number {i} in a long request" for i in range(1500)]

    def call() -> None:
        results.append(
            httpx.post(
                f"{url}/v1/embeddings", json={"model": "minilm-l3", "input": big}, timeout=120
            ).status_code
        )

    caller = threading.Thread(target=call)
    caller.start()
    assert encoding.wait(120), "the request never reached the encoder"
    running.stop()  # while the request is being encoded
    caller.join(120)
    assert results == [200]  # the request in flight was answered before the server exited
    assert not running.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDCRAFT_API_KEY": KEY}


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_serve_fits_serves_and_stops_cleanly(
    tmp_path: Path, collection: Collection, stop_signal: signal.Signals
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t for _, t, _ in DOCS), encoding="utf-8")
    saved = tmp_path / "my-tfidf"  # a saved folder is served under its own name
    load_encoder("tfidf").fit([t for _, t, _ in DOCS]).save(saved)
    port = _free_port()
    args = ["serve", "--port", port, "-e", "tfidf", "-e", "l3=minilm-l3", "--fit-on", corpus]
    args += ["-e", saved, "-c", f"mydocs={collection.path}", "--log-level", "warning"]
    proc = subprocess.Popen(
        command(args), env=_cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300  # a guard against a hang, not a speed assumption
        while True:
            try:
                health = httpx.get(f"{url}/health").json()
                break
            except httpx.ConnectError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the server did not start in 300 s"
                time.sleep(0.2)
        assert health["models"] == ["tfidf", "l3", "my-tfidf"]
        assert health["collections"] == ["mydocs"]
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        assert len(client.embeddings.create(model="l3", input="hi").data[0].embedding) == 384
        assert "my-tfidf" in [m.id for m in client.models.list().data]
        headers = {"Authorization": f"Bearer {KEY}"}
        fitted = httpx.post(
            f"{url}/v1/sparse/embeddings", json={"model": "tfidf", "input": "cat"}, headers=headers
        ).json()
        assert fitted["dim"] > 10 and len(fitted["data"][0]["indices"]) == 1
        hits = httpx.post(f"{url}/search", json={"query": "soup"}, headers=headers).json()
        assert hits["collection"] == "mydocs" and hits["data"][0]["id"] == "d6"
    finally:
        proc.send_signal(stop_signal)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "server stopped" in err and "Traceback" not in err
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health")


def test_cli_serve_refuses_an_unfitted_encoder(tmp_path: Path) -> None:
    result = subprocess.run(
        command(["serve", "-e", "tfidf", "--port", _free_port()]),
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2  # a missing option: usage
    assert result.stderr.strip().splitlines() == [
        "embedcraft serve: error: encoder 'tfidf' needs fitting: pass --fit-on FILE (the texts "
        "to fit "
        "on) or the folder of a saved fitted encoder"
    ]


def test_config_refuses_what_cannot_be_served(encoders: dict) -> None:
    from embedcraft import InputError

    with pytest.raises(InputError, match="nothing to serve"):
        ServerConfig()
    with pytest.raises(InputError, match="needs fitting before it can be served"):
        ServerConfig(encoders={"tfidf": load_encoder("tfidf")})
    with pytest.raises(InputError, match="model name 'a b'"):
        ServerConfig(encoders={"a b": encoders["hashing"]})


def test_config_refuses_an_input_kind_the_server_cannot_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server reads inputs by the encoder's declared input kind, one reader per kind; an
    encoder of a kind without a reader (here: images, their reader taken away) is refused when
    configured, not at its first warm-up encode."""
    from embedcraft import InputError
    from embedcraft.encoders.base import BaseEncoder
    from embedcraft.encoders.contract import InputKind
    from embedcraft.server import _inputs

    class _Images(BaseEncoder):  # "_": kept out of the saved-encoder type registry
        input_kind = InputKind.IMAGE
        needs_fit = False

    monkeypatch.delitem(_inputs._READERS, InputKind.IMAGE)
    with pytest.raises(InputError, match="'pics' reads image inputs; the server reads only text"):
        ServerConfig(encoders={"pics": _Images()})


def test_without_fastapi_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, encoders: dict
) -> None:
    from embedcraft import MissingDependencyError
    from embedcraft.server import create_app

    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'embedcraft\[serve\]'"):
        create_app(ServerConfig(encoders={"hashing": encoders["hashing"]}))
