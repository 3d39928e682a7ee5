"""Deprecated: moved to `embedcraft.words.sources`; each name looked up here warns."""

from __future__ import annotations

from ._moved import moved

__all__ = ["PretrainedWordVectors", "load_word_vectors", "pretrained_word_vectors"]

__getattr__ = moved(__name__, "embedcraft.words.sources", __all__)
