"""The exceptions embedcraft raises: one family, each with a message a user can act on."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "CorruptFileError",
    "DimensionMismatchError",
    "EmbedcraftError",
    "InputError",
    "MissingDependencyError",
    "NotFittedError",
    "UnknownEncoderError",
]


class EmbedcraftError(Exception):
    """Base class of every error embedcraft raises on purpose."""


class InputError(EmbedcraftError, ValueError):
    """Input data (a file, a text, a vector) that cannot be used as given."""


# sklearn ships no type hints, so its NotFittedError is Any to the checker
class NotFittedError(EmbedcraftError, _SklearnNotFittedError):  # type: ignore[misc]
    """An encoder that learns from a corpus was used before `fit`."""


class UnknownEncoderError(EmbedcraftError, KeyError):
    """A name that is neither in the catalog nor a saved encoder folder."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class CorruptFileError(EmbedcraftError, ValueError):
    """A saved file that exists but cannot be read back."""


class DimensionMismatchError(EmbedcraftError, ValueError):
    """Two sets of vectors whose widths differ."""


class MissingDependencyError(EmbedcraftError, ImportError):
    """An optional package that this feature needs is not installed."""


def missing_dependency(package: str, extra: str, feature: str) -> MissingDependencyError:
    """Build the error for an optional package that is not installed, naming the install command."""
    return MissingDependencyError(
        f"{feature} needs the '{package}' package: pip install 'embedcraft[{extra}]'"
    )
