"""Deprecated: moved to `embedcraft.words.formats`; each name looked up here warns."""

from __future__ import annotations

from .._moved import moved

__all__ = [
    "WORD_FILE_FORMATS",
    "WordFileFormat",
    "detect_format",
    "read_word_vectors",
    "write_word_vectors",
]

__getattr__ = moved(__name__, "embedcraft.words.formats", __all__)
