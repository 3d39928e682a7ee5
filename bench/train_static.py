"""Train `minilm-l6-static` against its teacher on the text in ../shared/data, then score it.

Corpora (never STS-B dev/test, SICK, AG News or SciFact's queries, which it is scored on),
as sentences, deduplicated:
- `shipped` (default; 163,285 texts): only text whose licence lets us ship a model trained on
  it (see `corpus_shipped`). `--ship` writes the result as the package's `minilm-l6-static`.
- `all` (258,293 texts): STS-B train, Brown, IMDB reviews 0-11,999 and SciFact's corpus.
The teacher's vectors are kept in the work folder, so a second run skips the teacher (the slow
part: ~20 minutes on two busy cores for `minilm-l6-exact` on `shipped`). Prints the teacher and
fit time, peak RSS, and STS-B dev/test, SICK-R and SciFact nDCG@10 of the distilled and the
trained model (the latter with its table rounded to float16, as it ships).

    python bench/train_static.py [--teacher minilm-l6-exact] [--corpus shipped|all] [--limit N]
                                 [--l2 0.1] [--dims 256] [--workdir DIR] [--output DIR] [--ship]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
import resource
import time
from pathlib import Path

import numpy as np

from _common import SHARED_DATA, machine_report
from embedcraft.catalog import load_encoder
from embedcraft.encoders.distill import StaticTransformerEncoder
from embedcraft.encoders.trained_static import shipped_file
from embedcraft.evaluate.retrieval import evaluate_retrieval, load_beir
from embedcraft.evaluate.sts import evaluate_sts
from embedcraft.training.static import train_static

SENTENCE = re.compile(r"(?<=[.!?])\s+")
SICK = ("sentence_A", "sentence_B", "relatedness_score")


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE.split(text) if len(s.split()) >= 3]


def _stsb_train() -> list[str]:
    out: list[str] = []
    with open(SHARED_DATA / "stsb" / "sts-train.tsv", encoding="utf-8") as fh:
        rows = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)
        for row in rows:
            out += [row[5], row[6]]
    return out


def _scifact_corpus() -> list[str]:
    out: list[str] = []
    with gzip.open(SHARED_DATA / "beir_scifact" / "corpus.jsonl.gz", "rt") as fh:
        for line in fh:
            doc = json.loads(line)
            out += sentences(doc["title"] + ". " + doc["text"])
    return out


def _tsv_column(path: Path, column: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [row[column] for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]


def corpus_all() -> list[str]:
    """STS-B train, Brown, IMDB reviews 0-11,999 and SciFact's corpus, as sentences."""
    out = _stsb_train()
    with gzip.open(SHARED_DATA / "text_corpora" / "brown_sentences.tsv.gz", "rt") as fh:
        next(fh)
        out += [line.rstrip("\n").split("\t")[2] for line in fh]
    with gzip.open(SHARED_DATA / "imdb_reviews" / "imdb.jsonl.gz", "rt") as fh:
        for i, line in enumerate(fh):
            if i >= 12_000:
                break
            out += sentences(json.loads(line)["text"].replace("<br />", " "))
    return out + _scifact_corpus()


def corpus_shipped() -> list[str]:
    """Only text whose licence lets us ship a model trained on it: STS-B train sentences
    (CC BY-SA 4.0 and their sources' terms), SciFact's abstracts (ODC-By 1.0), Pang & Lee's
    sentence polarity, subjectivity and polarity v2 reviews (CC BY 4.0), and the State of the
    Union and inaugural addresses (public domain)."""
    out = _stsb_train() + _scifact_corpus()
    classification = SHARED_DATA / "text_classification"
    out += _tsv_column(classification / "rt_sentence_polarity.tsv", "text")
    out += _tsv_column(classification / "subjectivity.tsv", "text")
    with gzip.open(classification / "movie_reviews_polarity2.jsonl.gz", "rt") as fh:
        for line in fh:
            out += [s for s in json.loads(line)["text"].split("\n") if len(s.split()) >= 3]
    with gzip.open(SHARED_DATA / "text_corpora" / "nltk_plain_texts.jsonl.gz", "rt") as fh:
        for line in fh:
            doc = json.loads(line)
            if doc["corpus"] in ("state_union", "inaugural"):
                out += sentences(" ".join(doc["text"].split()))
    return out


CORPORA = {"all": corpus_all, "shipped": corpus_shipped}


def corpus(name: str, limit: int | None) -> list[str]:
    """The training texts of corpus `name`, deduplicated, in a fixed order."""
    texts = list(dict.fromkeys(t.strip() for t in CORPORA[name]() if t.strip()))
    return texts[:limit] if limit else texts


def scores(encoder: object) -> dict[str, float]:
    stsb = SHARED_DATA / "stsb"
    sick = SHARED_DATA / "sick" / "sick_semeval2014.tsv"
    scifact = load_beir(SHARED_DATA / "beir_scifact", "test")
    return {
        "STS-B dev": 100 * evaluate_sts(encoder, stsb / "sts-dev.tsv").spearman,  # type: ignore[arg-type]
        "STS-B test": 100 * evaluate_sts(encoder, stsb / "sts-test.tsv").spearman,  # type: ignore[arg-type]
        "SICK-R": 100 * evaluate_sts(encoder, sick, SICK).spearman,  # type: ignore[arg-type]
        "SciFact nDCG@10": evaluate_retrieval(encoder, scifact).metrics["ndcg@10"],  # type: ignore[arg-type]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="minilm-l6-exact")
    parser.add_argument(
        "--corpus",
        choices=sorted(CORPORA),
        default="shipped",
        help="shipped: only text whose licence allows shipping the model (what the catalog's "
        "minilm-l6-static is trained on); all: also Brown and IMDB",
    )
    parser.add_argument("--limit", type=int, help="train on the first N texts only")
    parser.add_argument("--l2", type=float, default=0.1)
    parser.add_argument(
        "--workdir", type=Path, default=Path.home() / ".cache/embedcraft/bench/static"
    )
    parser.add_argument("--dims", type=int, default=256, help="PCA to N dims (default 256)")
    parser.add_argument("--output", type=Path, help="save the trained model here")
    parser.add_argument(
        "--ship",
        action="store_true",
        help="write the model as the package's minilm-l6-static (src/embedcraft/data/, float16)",
    )
    args = parser.parse_args()
    print(machine_report(), flush=True)
    texts = corpus(args.corpus, args.limit)
    print(f"corpus: {len(texts):,} texts", flush=True)
    student = load_encoder("minilm-l6-distilled")
    for name, value in scores(student).items():
        print(f"  distilled {name:<16} {value:.4f}", flush=True)
    t0 = time.perf_counter()
    trained, cost = train_static(
        load_encoder(args.teacher), student, texts, l2=args.l2, work=args.workdir,
        dims=args.dims, progress=True,
    )  # fmt: skip
    print(
        f"trained in {time.perf_counter() - t0:.1f} s: teacher {cost['teacher_s']:.1f} s "
        f"({cost['texts'] / max(cost['teacher_s'], 1e-9):,.0f} texts/s; 0 when resumed from "
        f"{args.workdir}), fit {cost['fit_s']:.1f} s; peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB",
        flush=True,
    )
    trained.table_ = trained.table_.astype(np.float16).astype(np.float32)  # as it ships
    measured = scores(trained)
    for name, value in measured.items():
        print(f"  trained   {name:<16} {value:.4f}", flush=True)
    if args.output:
        trained.save(args.output)
        print(f"saved to {args.output}")
    if args.ship:
        ship(trained, args, len(texts), cost, measured)


def ship(
    trained: StaticTransformerEncoder,
    args: argparse.Namespace,
    texts: int,
    cost: dict[str, float],
    measured: dict[str, float],
) -> None:
    """Write the package's minilm-l6-static: the float16 table and its recipe."""
    recipe = {
        **trained.recipe_,
        "teacher": args.teacher,
        "corpus": f"bench/train_static.py --corpus {args.corpus}: {corpus_shipped.__doc__}",
        "texts": texts,
        "teacher_seconds": round(cost["teacher_s"], 1),
        "fit_seconds": round(cost["fit_s"], 1),
        "scores": {name: round(value, 4) for name, value in measured.items()},
    }
    np.save(shipped_file(".npy"), trained.table_.astype(np.float16), allow_pickle=False)
    shipped_file(".json").write_text(json.dumps(recipe, indent=1) + "\n", encoding="utf-8")
    print(f"shipped: {shipped_file('.npy')} and {shipped_file('.json')}")


if __name__ == "__main__":
    main()
