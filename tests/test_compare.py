"""compare: tasks, the runner (in process and isolated), and the reports, on data made here."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from embedcraft.compare import (
    AnalogyTask,
    ClassificationTask,
    ClusteringTask,
    RetrievalTask,
    SpeedTask,
    StsTask,
    WordSimilarityTask,
    compare_encoders,
    plot_quality_speed,
    quality_summary,
    read_labelled,
    to_csv,
    to_markdown,
    to_text,
)
from embedcraft.errors import InputError, UnknownEncoderError

TOPICS = {
    "pets": ["cat", "dog", "kitten", "puppy", "vet", "pet", "leash", "fur"],
    "money": ["stock", "market", "share", "bank", "trade", "price", "bond", "fund"],
    "food": ["soup", "pasta", "basil", "bread", "oven", "salad", "cheese", "sauce"],
    "space": ["planet", "star", "comet", "orbit", "telescope", "galaxy", "moon", "rocket"],
}


def _texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    texts, labels = [], []
    for i in range(n):
        topic = names[i % len(names)]
        texts.append(" ".join(rng.choice(TOPICS[topic], size=6)))
        labels.append(topic)
    return texts, labels


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    """Word vectors with one direction per topic, and a file for every task, all tiny."""
    rng = np.random.default_rng(1)
    names = sorted(TOPICS)
    lines = [f"{sum(len(w) for w in TOPICS.values())} 8"]
    for t, topic in enumerate(names):
        for word in TOPICS[topic]:
            vec = 0.15 * rng.standard_normal(8)
            vec[t] += 1.0
            lines.append(word + " " + " ".join(f"{v:.5f}" for v in vec))
    (tmp_path / "topics.vec").write_text("\n".join(lines) + "\n", encoding="utf-8")

    pairs = ["word1\tword2\tscore"]
    for a, b, score in [("cat", "dog", 9), ("stock", "bond", 8.5), ("soup", "bread", 8),
                        ("cat", "stock", 1), ("planet", "soup", 0.5), ("comet", "star", 9),
                        ("bank", "pasta", 1.5), ("kitten", "moon", 0.8), ("fund", "trade", 7.9),
                        ("salad", "cheese", 8.2)]:  # fmt: skip
        pairs.append(f"{a}\t{b}\t{score}")
    (tmp_path / "words.tsv").write_text("\n".join(pairs) + "\n", encoding="utf-8")
    (tmp_path / "analogies.txt").write_text(
        ": topics\ncat dog stock bond\nsoup bread planet star\n", encoding="utf-8"
    )

    texts, labels = _texts(80)
    rows = ["id\ttitle\tbody\ttopic"] + [
        f"{i}\t{t.split()[0]}\t{' '.join(t.split()[1:])}\t{label}"
        for i, (t, label) in enumerate(zip(texts, labels, strict=True))
    ]
    (tmp_path / "labelled.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    a, la = _texts(40, seed=2)
    b, lb = _texts(40, seed=3)
    sts = ["sentence1\tsentence2\tscore"]
    for i in range(40):
        j = (i + (0 if i % 2 == 0 else 1)) % 40  # even rows: same topic, odd rows: another topic
        sts.append(f"{a[i]}\t{b[j]}\t{5.0 if la[i] == lb[j] else 0.5}")
    (tmp_path / "sts.tsv").write_text("\n".join(sts) + "\n", encoding="utf-8")

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs, doc_labels = _texts(24, seed=4)
    with open(beir / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for i, text in enumerate(docs):
            fh.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    with open(beir / "queries.jsonl", "w", encoding="utf-8") as fh:
        for t, topic in enumerate(sorted(TOPICS)):
            fh.write(json.dumps({"_id": f"q{t}", "text": " ".join(TOPICS[topic][:3])}) + "\n")
    qrels = ["query-id\tcorpus-id\tscore"] + [
        f"q{sorted(TOPICS).index(label)}\td{i}\t1" for i, label in enumerate(doc_labels)
    ]
    (beir / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    return {
        "vec": tmp_path / "topics.vec",
        "words": tmp_path / "words.tsv",
        "analogies": tmp_path / "analogies.txt",
        "labelled": tmp_path / "labelled.tsv",
        "sts": tmp_path / "sts.tsv",
        "beir": beir,
    }


def test_read_labelled_joins_columns_and_finds_the_label(data: dict[str, Path]) -> None:
    got = read_labelled(data["labelled"], ("title", "body"), "topic")
    assert len(got.texts) == 80 and got.classes == sorted(TOPICS)
    first = got.texts[0].split(". ")
    assert len(first) == 2 and len(first[1].split()) == 5
    with pytest.raises(InputError, match="no label column found"):
        read_labelled(data["labelled"], ("title",))
    with pytest.raises(InputError, match="no column 'nope'"):
        read_labelled(data["labelled"], ("title", "nope"), "topic")
    one_label = data["labelled"].with_name("one.tsv")
    one_label.write_text("text\tlabel\na b\tx\nc d\tx\n", encoding="utf-8")
    with pytest.raises(InputError, match="fewer than two distinct labels"):
        read_labelled(one_label)


def _all_tasks(data: dict[str, Path]) -> list:
    columns = ("title", "body")
    texts = read_labelled(data["labelled"], columns, "topic").texts
    return [
        WordSimilarityTask(path=str(data["words"])),
        AnalogyTask(path=str(data["analogies"])),
        StsTask(path=str(data["sts"])),
        RetrievalTask(path=str(data["beir"])),
        ClassificationTask(path=str(data["labelled"]), text_columns=columns, label_column="topic"),
        ClusteringTask(path=str(data["labelled"]), text_columns=columns, label_column="topic"),
        SpeedTask(texts=texts),
    ]


def test_every_task_on_sparse_and_word_vector_encoders(data: dict[str, Path]) -> None:
    vec = str(data["vec"])
    result = compare_encoders(["tfidf", vec], _all_tasks(data), isolate=False)
    assert result.encoders == ["tfidf", "topics.vec"]  # a path is named by its last part
    vec = "topics.vec"
    words, analogy = result.cell("tfidf", "words:words"), result.cell("tfidf", "analogy:analogies")
    assert "sparse" in words.skipped and not words.scores
    assert "table of word vectors" in analogy.skipped
    table = {t: result.cell(vec, t).scores for t in result.tasks}
    assert table["words:words"]["spearman"] > 70  # topic directions rank the pairs
    ran = result.cell(vec, "analogy:analogies")  # on the table: not skipped, a percentage
    assert not ran.skipped and not ran.error and 0 <= ran.scores["accuracy"] <= 100
    assert table["sts:sts"]["spearman"] > 60
    assert table["retrieval:beir"]["ndcg@10"] > 80
    assert table["classify:labelled"]["logreg"] > 90 and table["classify:labelled"]["knn"] > 90
    assert table["cluster:labelled"]["v-measure"] > 80
    assert table["speed"]["texts/s"] > 0
    assert result.cell("tfidf", "classify:labelled").scores["logreg"] > 90
    assert all(c.peak_mib is None for c in result.cells)  # not measured in process


def test_a_dense_encoder_without_a_table_encodes_words_as_texts(data: dict[str, Path]) -> None:
    result = compare_encoders(
        ["minilm-l3"], [WordSimilarityTask(path=str(data["words"]))], isolate=False
    )
    cell = result.cell("minilm-l3", "words:words")
    assert "one-word text" in cell.note and -100 <= cell.scores["spearman"] <= 100


def test_isolated_runs_measure_memory_and_agree_with_in_process(data: dict[str, Path]) -> None:
    tasks = [StsTask(path=str(data["sts"]))]
    isolated = compare_encoders(["tfidf", "hashing"], tasks, isolate=True)
    inline = compare_encoders(["tfidf", "hashing"], tasks, isolate=False)
    for name in ("tfidf", "hashing"):
        assert isolated.cell(name, "sts:sts").scores == inline.cell(name, "sts:sts").scores
        assert isolated.peak_mib(name) is not None and isolated.peak_mib(name) >= 0


def test_a_failing_task_is_reported_and_the_run_goes_on(data: dict[str, Path]) -> None:
    empty = data["beir"].with_name("no_judged")
    (empty / "qrels").mkdir(parents=True)
    (empty / "corpus.jsonl").write_text('{"_id": "d", "text": "cat"}\n', encoding="utf-8")
    (empty / "queries.jsonl").write_text('{"_id": "q", "text": "cat"}\n', encoding="utf-8")
    (empty / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n", encoding="utf-8")
    tasks = [RetrievalTask(path=str(empty)), StsTask(path=str(data["sts"]))]
    result = compare_encoders(["tfidf"], tasks, isolate=False)
    assert "no judged queries" in result.cell("tfidf", "retrieval:no_judged").error
    assert result.cell("tfidf", "sts:sts").scores
    assert "error" in to_text(result)


def test_bad_requests_fail_before_any_task(data: dict[str, Path]) -> None:
    tasks = [StsTask(path=str(data["sts"]))]
    with pytest.raises(UnknownEncoderError, match="unknown encoder 'tfidff'"):
        compare_encoders(["tfidf", "tfidff"], tasks, isolate=False)
    with pytest.raises(InputError, match="at least one task"):
        compare_encoders(["tfidf"], [], isolate=False)
    with pytest.raises(InputError, match="named twice"):
        compare_encoders(["tfidf", "tfidf"], tasks, isolate=False)
    with pytest.raises(InputError, match="same title"):
        compare_encoders(["tfidf"], [tasks[0], StsTask(path=str(data["sts"]))], isolate=False)


def test_reports_table_markdown_csv_and_plot(data: dict[str, Path], tmp_path: Path) -> None:
    vec = str(data["vec"])
    tasks = _all_tasks(data)
    result = compare_encoders(["tfidf", "bm25", vec], tasks, isolate=False)
    vec = data["vec"].name
    text = to_text(result)
    assert text.splitlines()[0].split()[0] == "encoder"
    assert "tfidf, words:words: skipped" in text
    markdown = to_markdown(result)
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 3 and table[0].count("|") == table[2].count("|")
    rows = list(csv.DictReader(io.StringIO(to_csv(result))))
    logreg = [r for r in rows if r["encoder"] == vec and r["score"] == "logreg"]
    expected = result.cell(vec, "classify:labelled").scores["logreg"]
    assert float(logreg[0]["value"]) == pytest.approx(expected)
    means, common = quality_summary(result)
    assert (
        "words:words" not in common
        and "sts:sts" in common
        and set(means)
        == {
            "tfidf",
            "bm25",
            vec,
        }
    )
    png = plot_quality_speed(result, tmp_path / "out" / "plot.png")
    from matplotlib.image import imread

    pixels = imread(png)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500
    assert (pixels[..., :3] < 0.5).any(axis=-1).mean() > 0.005  # points, text and axes drawn
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20


def test_task_processes_exit_when_the_comparing_process_is_killed(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "task.pid"
    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from compare_tasks import PidThenSleepTask\n"
        "from embedcraft.compare import compare_encoders\n"
        "if __name__ == '__main__':\n"
        f"    task = PidThenSleepTask(path={str(pid_file)!r})\n"
        "    compare_encoders(['hashing'], [task], isolate=True)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 300  # guards against a hang; the pid file is the report
        while not pid_file.exists() or not pid_file.read_text():
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(child, signal.SIGKILL)
            raise AssertionError("the task process outlived the comparing process")
    finally:
        if parent.poll() is None:
            parent.kill()
