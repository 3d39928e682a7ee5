"""The embedding cache: exact vectors back, only misses encoded, shared safely between processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import embedcraft
from cli_runner import command
from embedcraft import EmbeddingCache, MemoryCache, TransformerEncoder, caching
from embedcraft.cache import VectorCache
from pictures import gradient

TEXTS = [
    "The cat sat on the mat.",
    "Stock markets fell sharply on Monday.",
    "A comet passed close to the planet.",
    "The cat sat on the mat.",  # repeated within the call
    "",
]


@pytest.fixture(scope="module")
def exact() -> TransformerEncoder:
    return TransformerEncoder("minilm-l6-exact", name="minilm-l6-exact")


def test_second_encode_is_served_whole_and_equals_a_fresh_one_byte_for_byte(
    tmp_path: Path, exact: TransformerEncoder
) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    fresh = exact.encode(TEXTS, cache=False)
    first = exact.encode_with_report(TEXTS, cache=cache)
    assert first.report.cached == 1  # the repeated text was encoded once
    assert cache.stats.misses == 4 and cache.info()["entries"] == 4
    second = exact.encode_with_report(TEXTS, cache=cache)
    assert second.report.cached == len(TEXTS) and cache.stats.misses == 4
    assert first.vectors.tobytes() == fresh.tobytes()
    assert second.vectors.tobytes() == fresh.tobytes()
    assert second.vectors.dtype == np.float32 and second.vectors.shape == (5, exact.dim)


def test_what_a_cached_call_reports(tmp_path: Path) -> None:
    short = TransformerEncoder("minilm-l6-exact", max_length=16)
    long_text = " ".join(["word"] * 100)
    cache = MemoryCache()
    first = short.encode_with_report(["short text", long_text], cache=cache)
    again = short.encode_with_report(["short text", long_text], cache=cache)
    assert first.report.truncated == again.report.truncated == [1]
    assert again.report.max_tokens == first.report.max_tokens == 16
    assert again.report.cached == 2 and again.report.inputs == 2


def test_another_model_setting_is_another_entry(tmp_path: Path, exact: TransformerEncoder) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    exact.encode(TEXTS[:3], cache=cache)
    cut = TransformerEncoder("minilm-l6-exact", max_length=8, name="minilm-l6-exact")
    assert cut.fingerprint() != exact.fingerprint()
    vectors = cut.encode_with_report(TEXTS[:3], cache=cache)
    assert vectors.report.cached == 0
    assert not np.allclose(vectors.vectors, exact.encode(TEXTS[:3]))
    threads = TransformerEncoder("minilm-l6-exact", threads=1, name="minilm-l6-exact")
    assert threads.fingerprint() == exact.fingerprint()  # speed settings share entries


def test_how_onnxruntime_runs_the_model_is_part_of_the_fingerprint(
    exact: TransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graph rewrites left off change the rounding, so vectors cached under other ones
    are not served as if computed now."""
    from embedcraft.encoders import _onnx
    from embedcraft.encoders.fingerprint import encoder_fingerprint

    now = encoder_fingerprint(exact)
    monkeypatch.setattr(_onnx, "UNUSED_FUSIONS", ())
    assert encoder_fingerprint(exact) != now


def test_off_unless_asked_and_on_inside_a_caching_block(
    tmp_path: Path, exact: TransformerEncoder
) -> None:
    cache = MemoryCache()
    exact.encode(TEXTS[:2])
    assert exact.last_report.cached == 0
    with caching(cache):
        exact.encode(TEXTS[:2])
        exact.encode(TEXTS[:2])
        assert exact.last_report.cached == 2
        exact.encode(TEXTS[:2], cache=False)
        assert exact.last_report.cached == 0
    with pytest.raises(embedcraft.InputError, match="cache must be"):
        exact.encode(TEXTS[:2], cache="yes")  # type: ignore[arg-type]


def test_encoders_faster_than_a_lookup_bypass_the_cache(corpus: list[str]) -> None:
    cache = MemoryCache()
    for fast in (embedcraft.TfidfEncoder().fit(corpus), embedcraft.load_encoder("hashing")):
        fast.encode(corpus, cache=cache)
        assert not fast.worth_caching
    assert cache.info()["entries"] == 0 and cache.stats.misses == 0


def test_images_are_keyed_by_content_not_path(tmp_path: Path) -> None:
    picture = tmp_path / "a.png"
    gradient(0).save(picture)
    pixels = embedcraft.PixelsEncoder()
    cache = MemoryCache()
    first = pixels.encode([str(picture)], cache=cache)
    gradient(2).save(picture)  # same path, other picture
    second = pixels.encode_with_report([str(picture)], cache=cache)
    assert second.report.cached == 0 and not np.allclose(first, second.vectors)
    missing = pixels.encode_with_report([str(tmp_path / "gone.png")], cache=cache)
    assert 0 in missing.report.failed and cache.info()["entries"] == 2  # failures are not kept


def test_least_recently_used_entries_go_past_the_limit(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite", max_bytes=40_000)
    row = np.ones(64, np.float32).tobytes()  # 256 bytes + a 16-byte key
    keys = [i.to_bytes(16, "big") for i in range(400)]
    for start in range(0, 400, 50):
        cache.store(keys[start : start + 50], [(row, 0)] * 50)
    info = cache.info()
    assert info["bytes"] <= 40_000 and info["entries"] == info["bytes"] // 272
    assert keys[399] in cache.lookup([keys[399]]) and not cache.lookup([keys[0]])
    with sqlite3.connect(cache.path) as conn:
        (count,) = conn.execute("SELECT count(*) FROM entries").fetchone()
    assert count == info["entries"]


def test_a_damaged_cache_file_is_set_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = EmbeddingCache(path)
    assert cache.store([b"k" * 16], [(b"\0" * 16, 0)]) == 1
    assert (tmp_path / "c.sqlite.damaged").is_file()


WRITER = """
import sys, numpy as np
from embedcraft.cache import EmbeddingCache
cache = EmbeddingCache(sys.argv[1])
me = int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
for start in range(0, 3000, 100):  # each writer's range overlaps its neighbour's by half
    keys = [(me * 1500 + i).to_bytes(16, "big") for i in range(start, start + 100)]
    rows = [(np.full(32, me * 1500 + i, np.float32).tobytes(), i)
            for i in range(start, start + 100)]
    cache.store(keys, rows)
print("done", flush=True)
"""


def test_four_processes_writing_one_cache_lose_and_corrupt_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    EmbeddingCache(path).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(me)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for me in range(4)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:  # all start writing together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out.strip() == "done"
    cache = EmbeddingCache(path)
    wanted = list(range(0, 3 * 1500 + 3000))
    found = cache.lookup([n.to_bytes(16, "big") for n in wanted])
    assert len(found) == len(wanted) == 7500
    for n in wanted:
        vector, _ = found[n.to_bytes(16, "big")]
        assert np.frombuffer(vector, np.float32).tolist() == [float(n)] * 32
    info = cache.info()
    assert info["entries"] == 7500 and info["bytes"] == 7500 * (16 + 128)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_both_caches_honour_the_interface() -> None:
    assert isinstance(MemoryCache(), VectorCache)


def test_cli_reruns_come_from_the_cache_and_cache_info_and_clear(tmp_path: Path) -> None:
    texts = tmp_path / "t.txt"
    texts.write_text("\n".join(TEXTS[:3]) + "\n", encoding="utf-8")
    env = {**__import__("os").environ, "EMBEDCRAFT_CACHE": str(tmp_path / "cache")}

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(command(list(args)), capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return done

    encode = ["encode", "-e", "minilm-l6-exact", "-i", texts]
    first = run(*encode, "-o", tmp_path / "a.npy")
    assert "embedding cache" not in first.stderr
    second = run(*encode, "-o", tmp_path / "b.npy")
    assert "3 of 3 vectors came from the embedding cache" in second.stderr
    assert np.load(tmp_path / "a.npy").tobytes() == np.load(tmp_path / "b.npy").tobytes()
    third = run(*encode, "-o", tmp_path / "c.npy", "--no-cache")
    assert "embedding cache" not in third.stderr
    info = json.loads(run("cache", "info", "--json").stdout)
    assert info["entries"] == 3 and info["path"].startswith(str(tmp_path / "cache"))
    assert "removed 3 vectors" in run("cache", "clear").stdout
    assert json.loads(run("cache", "info", "--json").stdout)["entries"] == 0


def test_a_collection_indexed_again_encodes_nothing_again(tmp_path: Path) -> None:
    docs = [f"document {i} about {topic}" for i, topic in enumerate(["cats", "stocks"] * 20)]
    cache = MemoryCache()
    with caching(cache):
        for name in ("a", "b"):
            with embedcraft.Collection(tmp_path / name, encoders=["minilm-l6-exact"]) as col:
                col.add(docs)
                assert col.search("cats", k=1)[0].text.endswith("cats")
    assert cache.stats.misses == len(docs) + 1  # the documents once, and the query
    assert cache.stats.hits == len(docs) + 1


def test_a_cache_that_cannot_be_written_never_fails_an_encode(
    tmp_path: Path, exact: TransformerEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.close()  # every lookup and write now fails inside SQLite
    vectors = exact.encode(TEXTS[:2], cache=cache)
    assert vectors.tobytes() == exact.encode(TEXTS[:2]).tobytes()
    assert "embedding cache" in caplog.text
