"""Batch encoding on Ray: equal vectors to one process, resuming after a kill, guarded shards.

One local Ray (2 CPUs) serves the whole module; the killed run is the real CLI in a subprocess
that joins it with --address, the way a user points `embedcraft encode` at a cluster.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cli_runner import command
from components import import_component, require_component
from embedcraft import MemoryCache, load_encoder
from embedcraft.errors import InputError, MissingDependencyError, NotFittedError

ray = import_component("ray", "Ray")

from embedcraft.distributed import RayOptions, encode_dataset, read_shards  # noqa: E402

WORDS = [
    "cat",
    "dog",
    "market",
    "stock",
    "planet",
    "star",
    "soup",
    "basil",
    "pasta",
    "water",
    "telescope",
    "ring",
    "orbit",
    "share",
    "price",
    "fell",
    "rose",
    "movie",
    "actor",
    "plot",
    "scene",
    "music",
    "river",
    "mountain",
    "city",
    "train",
]
TWO = RayOptions(workers=2)


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + f" item {i}"
        for i in range(n)
    ]


def write_jsonl(path: Path, texts: list[str], first_id: int = 0) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"id": f"doc-{first_id + i}", "text": text, "n": i}) + "\n")
    return path


def shard_files(folder: Path) -> dict[str, tuple[int, int]]:
    """Each shard's (inode, mtime_ns): a rewritten shard gets a new inode (rename into place)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("shard-*.parquet")}


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local Ray for the module; its address, for runs that join it from another process."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    texts = make_texts(12_000)
    return write_jsonl(tmp_path_factory.mktemp("big") / "corpus.jsonl", texts), texts


def test_12k_texts_give_the_vectors_of_one_process(cluster: str, big, tmp_path: Path) -> None:
    source, texts = big
    result = encode_dataset(source, "hashing", tmp_path / "out", shard_rows=2500, ray=TWO)
    assert (result.rows, result.shards, result.shards_written) == (12_000, 5, 5)
    assert result.rows_encoded == 12_000 and result.workers == 2 and result.sparse
    assert len(set(result.worker_pids)) == 2  # one encoder per worker process
    ids, vectors = read_shards(tmp_path / "out")
    assert ids == [f"doc-{i}" for i in range(12_000)]
    expected = load_encoder("hashing").encode(texts)
    assert vectors.shape == expected.shape and (vectors != expected).nnz == 0
    meta = pq.read_schema(tmp_path / "out" / "shard-000004.parquet").metadata
    assert json.loads(meta[b"embedcraft.encoder"])["name"] == "hashing"
    assert pq.read_metadata(tmp_path / "out" / "shard-000004.parquet").num_rows == 2000


def test_dense_model_from_a_folder_uri_into_a_collection(cluster: str, tmp_path: Path) -> None:
    texts = make_texts(600, seed=1)
    folder = tmp_path / "csv"
    folder.mkdir()
    for part, start in (("a.csv", 0), ("b.csv", 350)):
        chunk = texts[start : start + 350]
        rows = ["key,body,topic"] + [
            f'k{start + i},"{t}",t{(start + i) % 3}' for i, t in enumerate(chunk)
        ]
        (folder / part).write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "_SUCCESS").write_text("", encoding="utf-8")  # marker files are not data
    result = encode_dataset(
        f"file://{folder}",
        "minilm-l3",
        tmp_path / "out",
        column="body",
        id_column="key",
        shard_rows=256,
        ray=TWO,
        collection=tmp_path / "col",
    )
    assert (result.rows, result.shards, result.dim) == (600, 3, 384)
    ids, vectors = read_shards(tmp_path / "out")
    assert ids == [f"k{i}" for i in range(600)]
    expected = load_encoder("minilm-l3").encode(texts)
    np.testing.assert_allclose(vectors, expected, atol=2e-5)
    from embedcraft.store import Collection

    with Collection(tmp_path / "col") as col:
        assert col.count() == 600 and result.collection_rows == 600
        hit = col.search(texts[437], k=1)[0]
        assert hit.id == "k437" and hit.metadata == {"topic": f"t{437 % 3}"}


def test_workers_share_the_disk_cache(cluster: str, tmp_path: Path) -> None:
    from embedcraft.cache import EmbeddingCache

    texts = make_texts(600, seed=2)
    source = write_jsonl(tmp_path / "in.jsonl", texts)
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    first = encode_dataset(
        source, "minilm-l3", tmp_path / "a", shard_rows=256, ray=TWO, cache=cache
    )
    assert first.workers == 2 and cache.info()["entries"] == 600
    _, vectors = read_shards(tmp_path / "a")
    np.testing.assert_allclose(vectors, load_encoder("minilm-l3").encode(texts), atol=2e-5)
    with sqlite3.connect(cache.path) as conn:  # mark every cached vector: zeros
        conn.execute("UPDATE entries SET vector = zeroblob(length(vector))")
    again = encode_dataset(
        source, "minilm-l3", tmp_path / "b", shard_rows=300, ray=TWO, cache=cache
    )
    _, served = read_shards(tmp_path / "b")
    assert again.rows_encoded == 600 and not served.any()  # every row came from the cache
    with pytest.raises(InputError, match="shares the disk cache"):
        encode_dataset(source, "minilm-l3", tmp_path / "c", ray=TWO, cache=MemoryCache())


def test_killed_run_resumes_without_redoing_finished_shards(cluster: str, tmp_path: Path) -> None:
    texts = make_texts(4000, seed=2)
    source = write_jsonl(tmp_path / "corpus.jsonl", texts)
    out = tmp_path / "out"
    args = ["encode", "-e", "minilm-l3", "-i", source, "-o", out, "--engine", "ray",
            "--address", cluster, "--workers", "1", "--shard-rows", "200"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(command(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the finished shards are what the run reports; the deadline only guards against a hang
        # (a loaded 2-core machine can take minutes to start Ray and the first shards)
        deadline = time.monotonic() + 600
        while len(shard_files(out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        _, err = proc.communicate(timeout=30)
    done = shard_files(out)
    assert 3 <= len(done) < 20, err.decode()[-2000:]  # killed part-way
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False

    result = encode_dataset(source, "minilm-l3", out, shard_rows=200, ray=RayOptions(workers=2))
    assert result.shards == 20 and result.shards_skipped == len(done)
    assert result.rows_encoded == 4000 - 200 * len(done)
    after = shard_files(out)
    assert {name: after[name] for name in done} == done  # finished shards untouched
    assert not list(out.glob(".*.tmp"))
    ids, vectors = read_shards(out)
    assert ids == [f"doc-{i}" for i in range(4000)]
    np.testing.assert_allclose(vectors, load_encoder("minilm-l3").encode(texts), atol=2e-5)


def test_damaged_shards_are_redone_and_a_finished_run_starts_no_workers(
    cluster: str, big, tmp_path: Path
) -> None:
    source, texts = big
    out = tmp_path / "out"
    encode_dataset(source, "hashing", out, shard_rows=3000, ray=TWO)
    before = shard_files(out)
    again = encode_dataset(source, "hashing", out, shard_rows=3000, ray=TWO)
    assert (again.shards_skipped, again.rows_encoded, again.workers) == (4, 0, 0)
    data = (out / "shard-000001.parquet").read_bytes()
    (out / "shard-000001.parquet").write_bytes(data[: len(data) // 2])  # a torn copy
    (out / "shard-000002.parquet").unlink()
    redo = encode_dataset(source, "hashing", out, shard_rows=3000, ray=TWO)
    assert (redo.shards_written, redo.shards_skipped, redo.rows_encoded) == (2, 2, 6000)
    after = shard_files(out)
    assert after["shard-000000.parquet"] == before["shard-000000.parquet"]
    assert after["shard-000003.parquet"] == before["shard-000003.parquet"]
    _, vectors = read_shards(out)
    assert (vectors != load_encoder("hashing").encode(texts)).nnz == 0


def test_another_encoder_or_changed_source_never_reuses_old_shards(
    cluster: str, tmp_path: Path
) -> None:
    texts = make_texts(900, seed=3)
    source = write_jsonl(tmp_path / "corpus.jsonl", texts)
    out = tmp_path / "out"
    encode_dataset(source, "hashing", out, shard_rows=300, ray=TWO)
    with pytest.raises(InputError, match="encoder 'hashing'"):
        encode_dataset(source, "glove-6b-50d", out, shard_rows=300, ray=TWO)
    with pytest.raises(InputError, match="shard size 300"):
        encode_dataset(source, "hashing", out, shard_rows=200, ray=TWO)
    write_jsonl(source, [*texts[:-1], "a changed last line"])
    with pytest.raises(InputError, match="source"):
        encode_dataset(source, "hashing", out, shard_rows=300, ray=TWO)
    result = encode_dataset(source, "hashing", out, shard_rows=300, ray=TWO, overwrite=True)
    assert result.shards_written == 3 and result.rows_encoded == 900


def test_bad_input_is_refused_before_any_work(cluster: str, big, tmp_path: Path) -> None:
    source, _ = big
    with pytest.raises(InputError, match="no column 'body'"):
        encode_dataset(source, "hashing", tmp_path / "a", column="body", ray=TWO)
    with pytest.raises(NotFittedError, match="embedcraft fit"):
        encode_dataset(source, "tfidf", tmp_path / "b", ray=TWO)
    with pytest.raises(InputError, match="no such file"):
        encode_dataset(tmp_path / "missing.csv", "hashing", tmp_path / "c", ray=TWO)
    with pytest.raises(InputError, match="sparse"):
        encode_dataset(source, "hashing", tmp_path / "d", ray=TWO, collection=tmp_path / "col")
    (tmp_path / "file.parquet").write_bytes(b"x")
    with pytest.raises(InputError, match="is a file"):
        encode_dataset(source, "hashing", tmp_path / "file.parquet", ray=TWO)
    assert not (tmp_path / "a").exists() and not (tmp_path / "d").exists()


def write_formats(folder: Path, rows: list[tuple[str, str, str]]) -> dict[str, Path]:
    """The same rows (key, title, description) in every format the local engine reads: .txt
    holds the joined texts, one per line; the others the columns."""
    import csv
    import gzip

    import pyarrow as pa

    folder.mkdir()
    header = ["key", "title", "description", "topic"]
    records = [[k, t, d, f"t{i % 3}"] for i, (k, t, d) in enumerate(rows)]
    joined = "".join(". ".join(p for p in (t, d) if p) + "\n" for _, t, d in rows)
    with (folder / "table.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *records])
    contents = {
        "texts.txt": joined.encode(),
        "table.csv": (folder / "table.csv").read_bytes(),
        "table.tsv": "".join("\t".join(r) + "\n" for r in [header, *records]).encode(),
        "table.jsonl": "".join(
            json.dumps(dict(zip(header, r, strict=True))) + "\n" for r in records
        ).encode(),
    }
    paths = {}
    for name, data in contents.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
        paths[name + ".gz"] = folder / (name + ".gz")
        paths[name + ".gz"].write_bytes(gzip.compress(data))
    paths["table.parquet"] = folder / "table.parquet"
    columns = {name: [r[j] for r in records] for j, name in enumerate(header)}
    pq.write_table(pa.table(columns), paths["table.parquet"])
    return paths


def test_the_ray_engine_reads_every_format_the_local_engine_reads(
    cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`embedcraft encode --engine ray` on .txt, CSV, TSV, JSONL (each also gzipped) and
    Parquet gives the ids and vectors of the local engine, joined columns included."""
    import scipy.sparse as sp

    from embedcraft.cli import main

    rng = random.Random(7)
    rows = [
        (f"k{i}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 4))),
         " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9))) + ", more")
        for i in range(23)
    ]  # fmt: skip
    paths = write_formats(tmp_path / "in", rows)
    assert len(paths) == 9
    for name, path in paths.items():
        columns = [] if ".txt" in name else ["--column", "title,description", "--id-column", "key"]
        local, shards = tmp_path / f"{name}.npz", tmp_path / f"{name}-shards"
        assert main(["encode", "-e", "hashing", "-i", str(path), "-o", str(local), *columns]) == 0
        ray_args = ["--engine", "ray", "--workers", "1", "--shard-rows", "10"]
        args = ["encode", "-e", "hashing", "-i", str(path), "-o", str(shards), *columns]
        assert main([*args, *ray_args]) == 0, name
        ids, vectors = read_shards(shards)
        expected = sp.load_npz(local)
        with np.load(local) as data:
            expected_ids = data["ids"].tolist()
        keys = [str(i) for i in range(1, 24)] if ".txt" in name else [k for k, _, _ in rows]
        assert ids == expected_ids == keys, name
        assert vectors.shape == expected.shape == (23, expected.shape[1]), name
        assert (vectors != expected).nnz == 0, name
    capsys.readouterr()


def test_without_ray_the_error_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from embedcraft.distributed import encode_dataset\n"
        f"encode_dataset({str(tmp_path / 'in.jsonl')!r}, 'hashing', {str(tmp_path / 'o')!r})\n"
    )
    write_jsonl(tmp_path / "in.jsonl", ["one text"])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert MissingDependencyError.__name__ in done.stderr
    assert "pip install 'embedcraft[distributed]'" in done.stderr


def test_an_unreachable_cluster_is_a_clear_error_within_seconds(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port that nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = write_jsonl(tmp_path / "corpus.jsonl", make_texts(20, seed=5))
    args = ["encode", "-e", "hashing", "-i", source, "-o", tmp_path / "out", "--engine", "ray",
            "--address", f"127.0.0.1:{port}"]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command(args), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and time.monotonic() - started < 60
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


def test_shards_load_into_a_pgvector_collection(cluster: str, tmp_path: Path) -> None:
    import_component("psycopg", "PostgreSQL")
    from embedcraft.store import PostgresCollection
    from pg_server import ServerUnavailable, postgres_server

    texts = make_texts(1500, seed=6)
    source = write_jsonl(tmp_path / "corpus.jsonl", texts)
    try:
        server = postgres_server()
        url = server.__enter__()
    except ServerUnavailable as exc:
        require_component("PostgreSQL", str(exc))
    try:
        target = f"{url}?table_prefix=ray_"
        result = encode_dataset(
            source, "glove-6b-50d", tmp_path / "out", shard_rows=500, ray=TWO, collection=target
        )
        assert result.collection_rows == 1500
        expected = load_encoder("glove-6b-50d").encode(texts)
        with PostgresCollection(target) as col:
            assert col.count() == 1500
            (hits,) = col.search_vectors(expected[1234], k=1)
            assert hits[0].id == "doc-1234" and hits[0].text == texts[1234]
            stored = col.export(limit=1500)
        order = [int(i.removeprefix("doc-")) for i in stored.ids]
        np.testing.assert_allclose(stored.vectors, expected[order], rtol=1e-5, atol=1e-6)
    finally:
        server.__exit__(None, None, None)
