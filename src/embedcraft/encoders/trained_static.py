"""The catalog's `minilm-l6-static`: MiniLM-L6's token table trained on sentences against its
teacher, shipped in the package (`data/minilm-l6-static.npy`, float16, with its recipe in
`data/minilm-l6-static.json`; how it was made: `bench/train_static.py --ship`).

Why a file and not a first-use build: training needs the teacher's vectors of ~160k sentences
(about 20 minutes on two cores) and the corpus itself, which a user's machine does not have; the
distilled model it starts from (`minilm-l6-distilled`) still builds on first use in seconds.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorruptFileError
from .distill import StaticTransformerEncoder, plain_tokenizer
from .models import _vocab_file

__all__ = ["SHIPPED_STATIC", "shipped_file", "shipped_static_model"]

SHIPPED_STATIC = "minilm-l6-static"


def shipped_file(suffix: str) -> Path:
    """The shipped model's file with `suffix` (.npy, .json) in the package data."""
    return Path(str(resources.files("embedcraft").joinpath("data", SHIPPED_STATIC + suffix)))


def shipped_static_model() -> StaticTransformerEncoder:
    """The trained `minilm-l6-static`, loaded from the package (about 0.1 s)."""
    table_file, recipe_file = shipped_file(".npy"), shipped_file(".json")
    try:
        table = np.load(table_file, allow_pickle=False).astype(np.float32)
        recipe: dict[str, Any] = json.loads(recipe_file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptFileError(
            f"the shipped {SHIPPED_STATIC} model ({table_file}) does not load ({exc}): "
            "reinstall embedcraft"
        ) from None
    tokenizer = plain_tokenizer(_wordpiece(_vocab_file()))
    if table.ndim != 2 or len(table) != tokenizer.get_vocab_size(with_added_tokens=True):
        raise CorruptFileError(f"{table_file}: a {table.shape} table does not fit the vocabulary")
    encoder = StaticTransformerEncoder(
        source="minilm-l6-exact", normalize=True, name=SHIPPED_STATIC
    )
    encoder.tokenizer_ = tokenizer
    encoder.table_ = table
    encoder.known_ = np.any(table != 0, axis=1)  # special and unused tokens have zero rows
    encoder.recipe_ = recipe
    return encoder


def _wordpiece(vocab: Path) -> Any:
    from tokenizers.implementations import (  # type: ignore[attr-defined]
        BertWordPieceTokenizer,
    )

    return BertWordPieceTokenizer(str(vocab), lowercase=True)
