"""Training corpora (TokenStream, write_tokenized) and Word2Vec / FastText training on gensim.

The training corpus is synthetic: two topics with disjoint vocabularies, so what good vectors
must show (words of a topic closer to each other than across topics) is known in advance.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from embedcraft.errors import InputError
from embedcraft.io import read_texts
from embedcraft.training.corpus import CorpusStats, TokenStream, write_tokenized

DOCS = ["Hello World, hello!", "A <br /> line <b>with</b> tags", "", "Ünïcode wörds 42"]
TOKENS = [
    ["hello", "world", "hello"],
    ["a", "br", "line", "b", "with", "b", "tags"],
    [],
    ["ünïcode", "wörds", "42"],
]
STRIPPED = [["hello", "world", "hello"], ["a", "line", "with", "tags"], [], TOKENS[3]]


def _txt(path: Path, docs: list[str] = DOCS) -> Path:
    path.write_text("\n".join(docs) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------- TokenStream
def test_txt_one_document_per_line(tmp_path: Path) -> None:
    stream = TokenStream(_txt(tmp_path / "c.txt"))
    assert list(stream) == TOKENS
    assert list(stream.texts()) == DOCS


def test_strip_tags_only_when_asked(tmp_path: Path) -> None:
    path = _txt(tmp_path / "c.txt")
    assert list(TokenStream(path, strip_tags=True)) == STRIPPED
    assert list(TokenStream(path, strip_tags=False)) == TOKENS


def test_gzipped_txt(tmp_path: Path) -> None:
    path = tmp_path / "c.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(DOCS) + "\n")
    assert list(TokenStream(path)) == TOKENS
    assert list(TokenStream(path, strip_tags=True)) == STRIPPED


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"one two\r\nthree\r\n")
    assert list(TokenStream(path).texts()) == ["one two", "three"]


def test_jsonl_with_a_column(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    records = [{"id": i, "body": d} for i, d in enumerate(DOCS)]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    assert list(TokenStream(path, column="body")) == TOKENS
    # no --column: the usual text column ("body" here), as read_texts and `encode` choose it
    assert list(TokenStream(path)) == TOKENS
    with pytest.raises(InputError, match=r"c\.jsonl: no column 'text'; columns are id, body$"):
        list(TokenStream(path, column="text"))
    path.write_text('{"id": 1, "words": "x"}\n', encoding="utf-8")
    with pytest.raises(
        InputError, match=r"no text column found; pass --column \(columns are id, words\)"
    ):
        list(TokenStream(path))
    path.write_text('{"text": "fine"}\n{"text": broken\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 2: invalid JSON"):
        list(TokenStream(path))


def test_csv_with_quoted_fields(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text"])
        writer.writerow([1, "comma, inside"])
        writer.writerow([2, "a newline\ninside one field"])
    assert list(TokenStream(path)) == [
        ["comma", "inside"],
        ["a", "newline", "inside", "one", "field"],
    ]
    with pytest.raises(InputError, match="no column 'body'; columns are id, text"):
        list(TokenStream(path, column="body"))


def test_gzipped_tsv_without_quoting(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write('label\ttext\npos\t"quoted" words, here\nneg\t\n')
    assert list(TokenStream(path)) == [["quoted", "words", "here"], []]


@pytest.mark.parametrize(
    ("name", "content"),
    [("c.csv", "text,id\nhello world,1\n"), ("c.jsonl", '{"text": "hello world"}\n')],
)
def test_a_utf8_byte_order_mark_is_ignored(tmp_path: Path, name: str, content: str) -> None:
    # spreadsheet programs write UTF-8 files with a BOM; io.read_texts already accepts them
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))
    assert list(TokenStream(path)) == [["hello", "world"]]


def test_stream_is_re_iterable(tmp_path: Path) -> None:
    stream = TokenStream(_txt(tmp_path / "c.txt"))
    first, second = list(stream), list(stream)
    assert first == second == TOKENS


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"fine line\nanother\nbad \xff byte\n")
    with pytest.raises(InputError, match=r"line 3, column 5: invalid UTF-8 \(byte 0xff\)"):
        list(TokenStream(path))
    path = tmp_path / "c.csv"  # in a table too: the physical line, not "near" it
    path.write_bytes(b'text\n"two\nlines"\nok \xe9\n')
    with pytest.raises(InputError, match=r"c\.csv, line 4, column 4: invalid UTF-8 \(byte 0xe9\)"):
        list(TokenStream(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        TokenStream(tmp_path / "absent.txt")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".csv.gz"])
def test_several_columns_are_joined_as_read_texts_joins_them(tmp_path: Path, suffix: str) -> None:
    # `--column title,description` in a training corpus: the same joined text as every reader
    rows = [("1", "Rates rise", "The bank moved."), ("2", "Goal!", ""), ("3", "", "Only this")]
    if suffix == ".jsonl":
        data = "".join(
            json.dumps({"id": i, "title": t, "description": d}) + "\n" for i, t, d in rows
        )
    else:
        sep = "\t" if suffix == ".tsv" else ","
        data = "".join(sep.join(row) + "\n" for row in [("id", "title", "description"), *rows])
    path = tmp_path / f"news{suffix}"
    raw = data.encode("utf-8")
    path.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    stream = TokenStream(path, column="title,description")
    expected = ["Rates rise. The bank moved.", "Goal!", "Only this"]
    assert list(stream.texts()) == expected
    assert read_texts(path, column="title,description").texts == expected
    assert list(stream) == [["rates", "rise", "the", "bank", "moved"], ["goal"], ["only", "this"]]
    with pytest.raises(InputError, match="no column 'summary'"):
        list(TokenStream(path, column="title,summary"))


def test_write_tokenized_skips_empty_documents(tmp_path: Path) -> None:
    stats = write_tokenized(TokenStream(_txt(tmp_path / "c.txt")), tmp_path / "out.txt")
    assert stats == CorpusStats(documents=3, tokens=13)
    lines = (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()
    assert lines == [" ".join(t) for t in TOKENS if t]


def test_write_tokenized_on_an_empty_corpus(tmp_path: Path) -> None:
    path = _txt(tmp_path / "c.txt", ["", "  ...  ", "!!"])
    with pytest.raises(InputError, match="the corpus has no words to train on"):
        write_tokenized(TokenStream(path), tmp_path / "out.txt")


# ------------------------------------------------------------------------- training
FRUIT = [f"fruit{i}" for i in range(15)]
METAL = [f"metal{i}" for i in range(15)]


@pytest.fixture(scope="module")
def topic_corpus(tmp_path_factory) -> Path:
    """400 documents of 10 words, alternating between two disjoint topics (4,000 tokens)."""
    rng = random.Random(0)
    lines = []
    for i in range(400):
        topic = FRUIT if i % 2 == 0 else METAL
        lines.append(" ".join(rng.choice(topic) for _ in range(10)))
    path = tmp_path_factory.mktemp("corpus") / "topics.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def word2vec(topic_corpus: Path):
    pytest.importorskip("gensim")
    from embedcraft.training.gensim_models import train_word2vec

    return train_word2vec(
        topic_corpus, dim=16, window=3, min_count=1, epochs=10, sample=0, seed=1, workers=1
    )


def test_word2vec_report_and_counts(word2vec, topic_corpus: Path) -> None:
    wv, report = word2vec
    expected = Counter(topic_corpus.read_text(encoding="utf-8").split())
    assert report.model == "word2vec"
    assert (report.documents, report.tokens) == (400, 4000)
    assert report.vocabulary == len(wv) == len(expected) == 30
    assert report.epochs == 10 and len(report.losses) == 10
    assert all(np.isfinite(x) and x > 0 for x in report.losses)
    assert report.losses[-1] < report.losses[0]
    assert report.tokens_per_second > 0
    assert wv.dim == 16 and wv.oov == "raise"
    assert wv.counts is not None
    assert dict(zip(wv.words, wv.counts.tolist(), strict=True)) == dict(expected)
    assert all(np.diff(wv.counts) <= 0)  # most frequent first, as restrict_vocab assumes


def test_word2vec_separates_the_topics(word2vec) -> None:
    wv, _ = word2vec
    unit = wv.normalized
    fruit = unit[[wv.index[w] for w in FRUIT]]
    metal = unit[[wv.index[w] for w in METAL]]
    within = (np.mean(fruit @ fruit.T) + np.mean(metal @ metal.T)) / 2
    across = np.mean(fruit @ metal.T)
    assert within > across + 0.3
    for word in FRUIT[:5] + METAL[:5]:
        nearest = wv.most_similar(word, k=1)[0][0]
        assert (nearest in FRUIT) == (word in FRUIT), (word, nearest)


def test_word2vec_is_repeatable_with_one_worker(word2vec, topic_corpus: Path) -> None:
    from embedcraft.training.gensim_models import train_word2vec

    again, _ = train_word2vec(
        TokenStream(topic_corpus), dim=16, window=3, min_count=1, epochs=10, sample=0, seed=1,
        workers=1,
    )  # fmt: skip
    assert again.words == word2vec[0].words
    np.testing.assert_array_equal(again.vectors, word2vec[0].vectors)


def test_fasttext_gives_subword_vectors_to_unseen_words(topic_corpus: Path) -> None:
    pytest.importorskip("gensim")
    from embedcraft.training.gensim_models import train_fasttext

    wv, report = train_fasttext(
        topic_corpus, dim=16, window=3, min_count=1, epochs=5, bucket=5000, seed=1, workers=1
    )
    assert report.model == "fasttext" and report.tokens == 4000 and len(wv) == 30
    assert wv.oov == "subword" and wv.subwords is not None
    assert (wv.subwords.min_n, wv.subwords.max_n) == (3, 6)
    unseen = wv.vector("fruit99")
    assert "fruit99" not in wv and np.linalg.norm(unseen) > 0
    found = wv.lookup(["fruit1", "fruit99"])
    assert found.oov == ["fruit99"]
    np.testing.assert_array_equal(found.vectors[1], unseen)
    # its n-grams are those of the fruit words: it sits with them, not with the metals
    to_fruit = np.mean([wv.similarity("fruit99", w) for w in FRUIT])
    to_metal = np.mean([wv.similarity("fruit99", w) for w in METAL])
    assert to_fruit > to_metal


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 0}, "dim must be >= 1, got 0"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"window": -1}, "window must be >= 1"),
        ({"min_count": 100_000}, "no word occurs at least min_count=100000 times"),
    ],
)
def test_bad_training_parameters(topic_corpus: Path, kwargs, message: str) -> None:
    pytest.importorskip("gensim")
    from embedcraft.training.gensim_models import train_fasttext, train_word2vec

    params = {"min_count": 1, "workers": 1, "dim": 8, **kwargs}
    with pytest.raises(InputError, match=message):
        train_word2vec(topic_corpus, **params)
    with pytest.raises(InputError, match=message):
        train_fasttext(topic_corpus, bucket=100, **params)


def test_fasttext_rejects_bad_ngram_range(topic_corpus: Path) -> None:
    from embedcraft.training.gensim_models import train_fasttext

    with pytest.raises(InputError, match="need 1 <= min_n <= max_n"):
        train_fasttext(topic_corpus, min_n=5, max_n=3)


def test_training_on_an_empty_corpus(tmp_path: Path) -> None:
    pytest.importorskip("gensim")
    from embedcraft.training.gensim_models import train_word2vec

    with pytest.raises(InputError, match="no words to train on"):
        train_word2vec(_txt(tmp_path / "empty.txt", ["", "..."]), min_count=1, workers=1)
