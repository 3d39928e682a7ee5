"""Fuzzing every file loader: mutated real files may fail, but only with embedcraft's errors.

Each loader gets small valid files (seeds), mutated by hypothesis: bit flips, truncation, byte
insertion and deletion, repeated spans, gzip damage (mutating the compressed bytes) and
"interesting" payloads (numbers of thousands of digits, JSON nested 1,500 deep, invalid UTF-8,
NUL, NaN, a field over the csv module's 128 KiB default, a line of megabytes). Whatever a loader
does with such a file, the only exception allowed out is an `EmbedcraftError`. The runs are
derandomized (the same inputs on every run) and bounded: the whole file takes well under a
minute. The number of inputs tried per loader is printed by the last test (and recorded as the
`fuzz_counts` property and in the pytest cache under `embedcraft/fuzz_counts`).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import shutil
import warnings
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedcraft._files import load_npy
from embedcraft.catalog import load_encoder
from embedcraft.distributed._source import Source
from embedcraft.errors import EmbedcraftError
from embedcraft.evaluate.retrieval import load_beir
from embedcraft.evaluate.sts import read_sts_pairs
from embedcraft.evaluate.words import evaluate_analogies, evaluate_word_pairs
from embedcraft.io import read_texts
from embedcraft.recommend.interactions import read_interactions
from embedcraft.store import read_documents
from embedcraft.training.corpus import TokenStream
from embedcraft.words import SubwordTable, WordVectors
from embedcraft.words.formats import read_word_vectors, write_word_vectors
from embedcraft.words.sources import load_word_vectors

PAIR_WORDS = ["cat", "dog", "kitten", "puppy", "king", "queen", "man", "woman", "bank", "bond"]
PAIR_WORDS += ["stock", "share"]

COUNTS: Counter[str] = Counter()
"""Inputs tried per loader in this run."""

TEXTS = [
    "The cat sat on the mat.",
    'Quotes "inside", commas, and a tab-free line',
    "Ünïcödé café 日本 🙂",
    "Stocks fell on Monday as investors sold shares.",
    "",
    "Astronomers found a planet orbiting a distant star.",
]

# payloads that reached raw exceptions or odd behaviour before (issue 14), and their kin
PAYLOADS = [
    b"9" * 5000,
    b"-" + b"1" * 4400,
    b"[" * 1500,
    b'{"text": "deep", "m": ' + b"[" * 1500 + b"]" * 1500 + b"}\n",
    b'{"text": ' + b"7" * 5000 + b"}\n",
    b"\xff\xfe",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\x00",
    b"nan",
    b"inf",
    b"-1",
    b"1e400",
    b"\n",
    b"\r\n",
    b'"',
    b"\t",
    b" ",
    b",",
    b"null",
    b"[]",
    b'"abcd"',
    b"{}",
    b"\x1f\x8b",
    b"x" * 200_000,
    b"0 " * 300_000,
]


# ------------------------------------------------------------------------------------- seeds
def _words(n: int = 12) -> list[str]:
    return [f"w{i}" for i in range(n - 3)] + ["café", "日本", "🙂"]


def _matrix(n: int = 12, dim: int = 5) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)


def _jsonl(rows: list[Any]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _csv(sep: str, texts: list[str] = TEXTS) -> bytes:
    rows = [f"id{sep}title{sep}text"]
    for i, text in enumerate(texts):
        cell = text.replace('"', "'") if sep == "\t" else '"' + text.replace('"', '""') + '"'
        rows.append(f"{i}{sep}title {i}{sep}{cell}")
    return ("\n".join(rows) + "\n").encode()


def _records(texts: list[str] = TEXTS) -> list[dict[str, Any]]:
    return [
        {"id": i, "text": t, "meta": {"n": i, "tags": ["a", "b"]}, "x": 1.5 * i}
        for i, t in enumerate(texts)
    ]


def _parquet(path: Path, texts: list[str] = TEXTS) -> Path:
    table = pa.table(
        {
            "id": [str(i) for i in range(len(texts))],
            "text": texts,
            "score": [float(i) for i in range(len(texts))],
            "when": pa.array(
                [1_600_000_000_000_000 + i for i in range(len(texts))], pa.timestamp("us")
            ),
        }
    )
    # plain, uncompressed pages: flipped bits reach the values, not only a codec's checks
    pq.write_table(table, path, compression="none", use_dictionary=False)
    return path


def _text_seeds(root: Path, gz: bool, texts: list[str] = TEXTS) -> list[Path]:
    contents = {
        "t.txt": "\n".join(texts).encode() + b"\n",
        "t.csv": _csv(",", texts),
        "t.tsv": _csv("\t", texts),
        "t.jsonl": _jsonl(_records(texts)) + _jsonl(texts[:2]),
    }
    paths = []
    for name, data in contents.items():
        path = root / (name + ".gz" if gz else name)
        path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
        paths.append(path)
    if not gz:
        paths.append(_parquet(root / "t.parquet", texts))
    return paths


def _word_seeds(root: Path, gz: bool) -> list[Path]:
    words, vectors = _words(), _matrix()
    suffix = ".gz" if gz else ""
    paths = []
    for name, fmt in [
        ("w2v.txt", "word2vec"),
        ("w2v.bin", "word2vec-binary"),
        ("glove.txt", "glove"),
        ("ft.vec", "fasttext"),
    ]:
        path = root / (name + suffix)
        write_word_vectors(path, words, vectors, format=fmt)  # type: ignore[arg-type]
        paths.append(path)
    # gensim's binary layout: no newline after each vector
    body = b"".join(
        w.encode() + b" " + v.astype("<f4").tobytes() for w, v in zip(words, vectors, strict=True)
    )
    data = f"{len(words)} {vectors.shape[1]}\n".encode() + body
    path = root / ("gensim.bin" + suffix)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    paths.append(path)
    return paths


def _saved_word_vectors(root: Path) -> list[Path]:
    words, vectors = _words(), _matrix()
    counts = np.arange(len(words), 0, -1)
    WordVectors(words, vectors, counts, name="plain").save(root / "plain")
    subwords = SubwordTable(_matrix(20), 3, 5)
    WordVectors(words, vectors, subwords=subwords, name="sub").save(root / "sub")
    return [root / "plain", root / "sub"]


def _npy_seeds(root: Path) -> list[Path]:
    np.save(root / "f32.npy", _matrix())
    np.save(root / "i64.npy", np.arange(30, dtype=np.int64))
    np.save(root / "f64f.npy", np.asfortranarray(_matrix().astype(np.float64)))
    return [root / "f32.npy", root / "i64.npy", root / "f64f.npy"]


def _corpus_seeds(root: Path, gz: bool) -> list[Path]:
    return [p for p in _text_seeds(root, gz) if not p.name.endswith(".parquet")]


def _source_seeds(root: Path, gz: bool) -> list[Path]:
    return _text_seeds(root, gz)


def _sts_seeds(root: Path) -> list[Path]:
    lines = ["sentence1\tsentence2\tscore"]
    lines += [f"{a}\t{b}\t{i * 0.7:.1f}" for i, (a, b) in enumerate(itertools.pairwise(TEXTS))]
    path = root / "sts.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [path]


def _beir_seeds(root: Path) -> list[Path]:
    folder = root / "beir"
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": f"d{i}", "title": f"t{i}", "text": t} for i, t in enumerate(TEXTS)]
    (folder / "corpus.jsonl").write_bytes(_jsonl(corpus))
    queries = [{"_id": "q1", "text": "cats"}, {"_id": 2, "text": "planets"}]
    (folder / "queries.jsonl").write_bytes(_jsonl(queries))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td0\t1\n2\td5\t2\n")
    return [folder]


def _interaction_seeds(root: Path) -> list[Path]:
    udata = root / "u.data"
    udata.write_text("".join(f"{u}\t{i}\t{(u + i) % 5 + 1}\t{880000000 + u * 7 + i}\n"
                             for u in range(1, 6) for i in range(1, 5)))  # fmt: skip
    ratings = root / "ratings.csv"
    ratings.write_text(
        "userId,movieId,rating,timestamp\n"
        + "".join(
            f"{u},{i},{(u * i) % 5 + 0.5},{964982703 + i}\n" for u in range(3) for i in range(4)
        )
    )
    return [udata, ratings]


def _encoder_seeds(root: Path) -> list[Path]:
    corpus = [*TEXTS[:4], "cats and dogs", "planets and stars"]
    paths = []
    for name in ("tfidf", "bm25", "onehot"):
        load_encoder(name).fit(corpus).save(root / name)
        paths.append(root / name)
    return paths


# ------------------------------------------------------------------------------------- loaders
@dataclass(frozen=True)
class Loader:
    """A loader under test: how to make its seed files, and how to load one (mutated) copy."""

    name: str
    seeds: Callable[[Path], list[Path]]
    load: Callable[[Path], object]
    examples: int


def _read_all_texts(path: Path) -> object:
    return read_texts(path)


def _document_seeds(root: Path) -> list[Path]:
    """Tables `index` takes: every row has a text (an empty one is refused, by design)."""
    return _text_seeds(root, gz=False, texts=[t for t in TEXTS if t])


def _read_documents(path: Path) -> object:
    """What `index` reads; typed metadata must print back as the text it came from."""
    table = read_documents(path)
    for row in table.metadata:
        for value in row.values():
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert np.isfinite(value), f"metadata {value!r} is not finite"
    return table


def _word_vectors_for_pairs() -> WordVectors:
    words = [w.upper() for w in PAIR_WORDS]
    rng = np.random.default_rng(0)
    return WordVectors(words, rng.normal(size=(len(words), 8)).astype(np.float32))


def _pairs_seeds(root: Path) -> list[Path]:
    lines = ["word1\tword2\tscore"]
    lines += [f"{a}\t{b}\t{i * 0.9:.2f}" for i, (a, b) in enumerate(itertools.pairwise(PAIR_WORDS))]
    path = root / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [path]


def _analogy_seeds(root: Path) -> list[Path]:
    path = root / "analogies.txt"
    path.write_text(
        ": family\ncat dog kitten puppy\nking queen man woman\n: money\nbank bond stock share\n",
        encoding="utf-8",
    )
    return [path]


def _word_pairs(path: Path) -> object:
    return evaluate_word_pairs(_word_vectors_for_pairs(), path)


def _analogies(path: Path) -> object:
    return evaluate_analogies(_word_vectors_for_pairs(), path)


def _sound(words: list[Any], vectors: np.ndarray) -> None:
    """What a successful load must hold: unique words without whitespace, finite rows."""
    assert all(isinstance(w, str) and w and not any(c.isspace() for c in w) for w in words), words
    assert len(set(words)) == len(words) == vectors.shape[0], "words and rows disagree"
    assert np.isfinite(vectors).all(), "a NaN or infinite vector was loaded"


def _read_vectors(path: Path) -> object:
    words, vectors = read_word_vectors(path)
    _sound(words, vectors)
    return words


def _load_vectors(path: Path) -> object:
    found = load_word_vectors(path)
    _sound(found.words, found.vectors)
    return found


def _tokens(path: Path) -> object:
    return sum(len(doc) for doc in TokenStream(path))


def _source_rows(path: Path) -> object:
    return sum(len(shard.ids) for shard in Source(path).shards(4, metadata=True))


def _load_word_vector_folder(path: Path) -> object:
    for found in (WordVectors.load(path, mmap=False), WordVectors.load(path)):
        _sound(found.words, np.asarray(found.vectors))
        assert found.counts is None or (found.counts >= 0).all()
    return found


LOADERS = [
    Loader("read_texts", lambda root: _text_seeds(root, gz=False), _read_all_texts, 300),
    Loader("read_texts .gz", lambda root: _text_seeds(root, gz=True), _read_all_texts, 200),
    Loader("read_word_vectors", lambda root: _word_seeds(root, gz=False), _read_vectors, 300),
    Loader("read_word_vectors .gz", lambda root: _word_seeds(root, gz=True), _read_vectors, 200),
    Loader(
        "load_word_vectors (file)", lambda root: _word_seeds(root, gz=False), _load_vectors, 100
    ),
    Loader("WordVectors.load (folder)", _saved_word_vectors, _load_word_vector_folder, 300),
    Loader("load_npy", _npy_seeds, load_npy, 200),
    Loader("TokenStream (corpus)", lambda root: _corpus_seeds(root, gz=False), _tokens, 200),
    Loader("TokenStream (corpus) .gz", lambda root: _corpus_seeds(root, gz=True), _tokens, 150),
    Loader("Source (distributed)", lambda root: _source_seeds(root, gz=False), _source_rows, 200),
    Loader(
        "Source (distributed) .gz", lambda root: _source_seeds(root, gz=True), _source_rows, 150
    ),
    Loader("read_sts_pairs", _sts_seeds, read_sts_pairs, 200),
    Loader("load_beir", _beir_seeds, load_beir, 200),
    Loader("read_interactions", _interaction_seeds, read_interactions, 200),
    Loader("read_documents (index)", _document_seeds, _read_documents, 200),
    Loader("evaluate_word_pairs", _pairs_seeds, _word_pairs, 150),
    Loader("evaluate_analogies", _analogy_seeds, _analogies, 150),
    Loader("load_encoder (folder)", _encoder_seeds, load_encoder, 200),
]


# JSON values put in place of a value of a JSON file (a saved folder's description, a record)
JSON_VALUES: list[Any] = [
    None,
    [],
    {},
    "abcd",
    [0, 1, 2, 3],
    -1,
    0,
    2**70,
    1e308,
    True,
    "",
    [[["x"]]],
]
# what a .npy array is re-saved as: another dtype or shape, or with a NaN
NPY_CHANGES = [
    "bool",
    "int8",
    "float16",
    "complex64",
    "<U3",
    "1-d",
    "3-d",
    "transpose",
    "nan",
    "empty",
]


# ------------------------------------------------------------------------------------- mutations
def _mutation() -> st.SearchStrategy[tuple[Any, ...]]:
    where = st.floats(0, 1, allow_nan=False)
    return st.one_of(
        st.tuples(st.just("json"), where, st.sampled_from(JSON_VALUES)),
        st.tuples(st.just("npy"), where, st.sampled_from(NPY_CHANGES)),
        st.tuples(st.just("flip"), where, st.integers(0, 7)),
        st.tuples(st.just("truncate"), where),
        st.tuples(st.just("insert"), where, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), where, st.integers(1, 64)),
        st.tuples(st.just("repeat"), where, st.integers(1, 200), st.integers(2, 50)),
        st.tuples(st.just("payload"), where, st.sampled_from(PAYLOADS), st.booleans()),
    )


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every node of a parsed JSON value, the root first."""
    out = [path]
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        out += _nodes(child, (*path, key))
    return out


def _swap_json(data: bytes, fraction: float, new: Any) -> bytes:
    """A JSON document (or one line of JSONL) with one node replaced by `new`."""
    try:
        lines = [data.decode("utf-8")]
        try:
            docs = [json.loads(lines[0])]
        except ValueError:
            lines = lines[0].split("\n")
            docs = [json.loads(line) if line.strip() else None for line in lines]
    except ValueError:
        return data  # not JSON: nothing to swap
    index = min(int(fraction * len(docs)), len(docs) - 1)
    doc = docs[index]
    paths = _nodes(doc)
    path = paths[min(int(fraction * 7919) % len(paths), len(paths) - 1)]
    if not path:
        doc = new
    else:
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = new
    lines[index] = json.dumps(doc)
    return "\n".join(lines).encode()


def _change_npy(data: bytes, fraction: float, change: str) -> bytes:
    """A .npy file re-saved with another dtype or shape, or with a NaN."""
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception:  # numpy raises many types for a damaged file (what this suite is about)
        return data  # not a readable .npy file: nothing to change
    with np.errstate(all="ignore"):  # casts that overflow are part of the damage
        if change == "1-d":
            array = array.ravel()
        elif change == "3-d":
            array = array.reshape(1, *array.shape, 1)
        elif change == "transpose":
            array = array.T
        elif change == "empty":
            array = array[:0]
        elif change == "nan":
            array = array.astype(np.float32)
            if array.size:
                array.flat[min(int(fraction * array.size), array.size - 1)] = np.nan
        else:
            with warnings.catch_warnings():  # complex to real drops the imaginary part: wanted
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                array = array.astype(change)
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def _mutate(data: bytes, mutation: tuple[Any, ...]) -> bytes:
    kind, fraction = mutation[0], mutation[1]
    at = min(int(fraction * len(data)), max(len(data) - 1, 0))
    if kind == "json":
        return _swap_json(data, fraction, mutation[2])
    if kind == "npy":
        return _change_npy(data, fraction, mutation[2])
    if kind == "flip":
        if not data:
            return data
        out = bytearray(data)
        out[at] ^= 1 << mutation[2]
        return bytes(out)
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + mutation[2] + data[at:]
    if kind == "delete":
        return data[:at] + data[at + mutation[2] :]
    if kind == "repeat":
        span = data[at : at + mutation[2]]
        return data[:at] + span * mutation[3] + data[at:]
    payload, replace = mutation[2], mutation[3]
    return data[:at] + payload + data[at + len(payload) if replace else at :]


@st.composite
def _damage(draw: st.DrawFn, data: bytes, gz: bool) -> bytes:
    """`data` mutated 1-3 times; a gzipped file either in its compressed bytes or inside."""
    mutations = draw(st.lists(_mutation(), min_size=1, max_size=3))
    inside = gz and draw(st.booleans())
    if inside:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):  # pragma: no cover - seeds are valid
            inside = False
    for mutation in mutations:
        data = _mutate(data, mutation)
    return gzip.compress(data, mtime=0) if inside else data


def _fuzz(loader: Loader, root: Path) -> None:
    seed_dir = root / "seeds"
    seed_dir.mkdir()
    seeds = loader.seeds(seed_dir)
    for seed in seeds:  # every seed is valid: the loader reads it without error
        loader.load(seed)
    work = root / "work"

    @settings(
        max_examples=loader.examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        seed = data.draw(st.sampled_from(seeds), label="seed")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        if seed.is_dir():
            target_dir = work / seed.name
            shutil.copytree(seed, target_dir)
            files = sorted(p for p in target_dir.rglob("*") if p.is_file())
            target = data.draw(st.sampled_from(files), label="file")
            path = target_dir
        else:
            target = path = work / seed.name
            shutil.copyfile(seed, target)
        damaged = data.draw(_damage(target.read_bytes(), target.name.endswith(".gz")))
        target.write_bytes(damaged)
        COUNTS[loader.name] += 1
        with contextlib.suppress(EmbedcraftError):  # a clear error is the right answer
            loader.load(path)

    run()


@pytest.mark.parametrize("loader", LOADERS, ids=[loader.name for loader in LOADERS])
def test_damaged_files_raise_only_embedcraft_errors(loader: Loader, tmp_path: Path) -> None:
    _fuzz(loader, tmp_path)


# the inputs issue 14 found, fed to every reader of the kind: each is one clear error
HUGE_INT = b'{"text": "a"}\n{"text": "b", "n": ' + b"9" * 5000 + b"}\n"
DEEP = b'{"text": "a"}\n{"text": "b", "m": ' + b"[" * 1500 + b"]" * 1500 + b"}\n"
BAD_DEFLATE = bytes([*gzip.compress(b'{"text": "a"}\n', mtime=0)[:10], 0xFF]) + b"\x00" * 20
JSONL_READERS: list[tuple[str, Callable[[Path], object]]] = [
    ("read_texts", read_texts),
    ("TokenStream", _tokens),
    ("Source", _source_rows),
]


@pytest.mark.parametrize(("name", "read"), JSONL_READERS, ids=[n for n, _ in JSONL_READERS])
@pytest.mark.parametrize(
    ("file", "data", "message"),
    [
        ("t.jsonl", HUGE_INT, r"line 2: unreadable JSON \(Exceeds the limit"),
        ("t.jsonl", DEEP, "line 2: JSON nested too deeply"),
        ("t.jsonl.gz", BAD_DEFLATE, r"damaged (gzip|compressed) data"),
    ],
    ids=["huge-integer", "deep-nesting", "bad-deflate"],
)
def test_known_damage_is_one_clear_error(
    tmp_path: Path, name: str, read: Callable[[Path], object], file: str, data: bytes, message: str
) -> None:
    path = tmp_path / file
    path.write_bytes(data)
    with pytest.raises(EmbedcraftError, match=message) as info:
        read(path)
    assert str(path) in str(info.value), name


def test_zz_fuzz_counts(record_property: Any, request: pytest.FixtureRequest, capsys: Any) -> None:
    """Report the inputs tried per loader (runs last: the file's tests run in order)."""
    counts = dict(COUNTS)
    record_property("fuzz_counts", json.dumps(counts))
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    if cache is not None:
        cache.set("embedcraft/fuzz_counts", counts)
    with capsys.disabled():
        print("\nfuzzed inputs per loader:")
        for name, n in counts.items():
            print(f"  {name:28s} {n:5d}")
        print(f"  {'total':28s} {sum(counts.values()):5d}")
