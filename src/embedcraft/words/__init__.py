"""Word vectors in one place: the `WordVectors` type (here), their files (`formats`) and where
they come from (`sources`: pretrained names, saved folders, vector files)."""

from __future__ import annotations

from ._vectors import Lookup, OOVPolicy, OutOfVocabularyError, SubwordTable, WordVectors

__all__ = ["Lookup", "OOVPolicy", "OutOfVocabularyError", "SubwordTable", "WordVectors"]
