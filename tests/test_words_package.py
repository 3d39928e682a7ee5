"""The `embedcraft.words` package: its pinned public names, and the old module paths that still
resolve (with a DeprecationWarning naming the new home) while callers move."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import embedcraft.words

MOVED = [
    (
        "embedcraft.wordsources",
        "embedcraft.words.sources",
        ["PretrainedWordVectors", "load_word_vectors", "pretrained_word_vectors"],
    ),
    (
        "embedcraft.encoders.word_formats",
        "embedcraft.words.formats",
        [
            "WORD_FILE_FORMATS",
            "WordFileFormat",
            "detect_format",
            "read_word_vectors",
            "write_word_vectors",
        ],
    ),
]


def test_public_names_are_pinned() -> None:
    assert embedcraft.words.__all__ == [
        "Lookup",
        "OOVPolicy",
        "OutOfVocabularyError",
        "SubwordTable",
        "WordVectors",
    ]
    for name in embedcraft.words.__all__:
        assert getattr(embedcraft.words, name) is getattr(embedcraft.words._vectors, name)


@pytest.mark.parametrize(("old", "new", "names"), MOVED)
def test_old_paths_resolve_the_same_objects_and_warn(old: str, new: str, names: list[str]) -> None:
    old_module = importlib.import_module(old)
    new_module = importlib.import_module(new)
    assert old_module.__all__ == names == new_module.__all__
    for name in names:
        with pytest.warns(
            DeprecationWarning, match=f"^{old} is deprecated: import {name} from {new}$"
        ) as seen:
            found = getattr(old_module, name)
        assert found is getattr(new_module, name)
        assert [w.filename for w in seen] == [__file__]  # points at the caller's line


def test_from_import_of_an_old_path_warns() -> None:
    with pytest.warns(
        DeprecationWarning, match="import load_word_vectors from embedcraft.words.sources"
    ):
        from embedcraft.wordsources import load_word_vectors
    with pytest.warns(
        DeprecationWarning, match="import read_word_vectors from embedcraft.words.formats"
    ):
        from embedcraft.encoders.word_formats import read_word_vectors
    from embedcraft.words.formats import read_word_vectors as new_reader
    from embedcraft.words.sources import load_word_vectors as new_loader

    assert load_word_vectors is new_loader and read_word_vectors is new_reader


def test_importing_an_old_path_alone_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for old, _, _ in MOVED:
            importlib.reload(importlib.import_module(old))


def test_other_names_of_an_old_path_say_where_it_went() -> None:
    old = importlib.import_module("embedcraft.encoders.word_formats")
    with pytest.raises(
        AttributeError,
        match=r"no attribute '_CHUNK_BYTES' \(it moved to embedcraft\.words\.formats\)",
    ):
        old._CHUNK_BYTES  # noqa: B018


def test_importing_embedcraft_uses_no_deprecated_path() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            "-c",
            "import embedcraft, embedcraft.cli",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
