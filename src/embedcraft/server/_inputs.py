"""How the server reads a request's inputs, chosen by the encoder's declared `input_kind`.

Each input kind the server can read has a reader (checks a request field, within the limits) and a
warm-up input (one input that makes a lazily loaded model load). Text models read strings; image
models read images sent as base64 data URLs (`data:image/png;base64,...`), decoded here so an
undecodable one is the client's 400 naming its index. An encoder of a kind without a reader is
refused when the server is configured, with a message naming the kind. Serving a new kind means
adding its reader here, and nothing else in the server.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..encoders.contract import Encoder, InputKind
from ..errors import InputError
from ._errors import ApiError

if TYPE_CHECKING:
    from ._config import Limits

__all__ = ["InputReader", "read_inputs", "reader_for", "warm_up_inputs"]


@dataclass(frozen=True)
class InputReader:
    """What the server needs to accept one kind of input in a request."""

    read: Callable[[Any, Limits, str], list[Any]]
    """The inputs of a request field, checked against the limits (ApiError otherwise)."""
    warm_up: tuple[Any, ...]
    """Inputs encoded once at start-up, so a lazily loaded model loads before the first request."""


def _listed(value: Any, limits: Limits, param: str, noun: str, shape: str) -> list[Any]:
    """A request field as a non-empty list of at most `max_inputs` items (one item may come
    alone); `noun` and `shape` name what it holds in the errors."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ApiError(422, f"{param} must be {shape}", param=param)
    if not items:
        raise ApiError(422, f"{param} is empty: give at least one {noun}", param=param)
    if len(items) > limits.max_inputs:
        raise ApiError(
            422,
            f"{param} has {len(items)} {noun}s; the limit is {limits.max_inputs} per request",
            param=param,
            code="too_many_inputs",
        )
    return items


def _read_texts(value: Any, limits: Limits, param: str) -> list[str]:
    """The texts of a request field (a string or a list of strings), within the limits."""
    items = _listed(value, limits, param, "text", "a string or a list of strings")
    for i, item in enumerate(items):
        if isinstance(item, str):
            if _DATA_URL.match(item):
                raise ApiError(
                    400,
                    f"{param}[{i}] is an image (a data URL), but this model reads text: send "
                    "images to an image model",
                    param=param,
                    code="wrong_input_kind",
                )
            if len(item) > limits.max_chars:
                raise ApiError(
                    422,
                    f"{param}[{i}] has {len(item)} characters; the limit is {limits.max_chars}",
                    param=param,
                    code="input_too_long",
                )
            continue
        if isinstance(item, int | list) and not isinstance(item, bool):
            raise ApiError(
                422,
                f"{param}: token arrays are not supported (token ids differ between models); "
                "send the texts as strings",
                param=param,
                code="token_arrays_unsupported",
            )
        raise ApiError(
            422, f"{param}[{i}] must be a string, got {type(item).__name__}", param=param
        )
    return items


_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.IGNORECASE)
_DATA_PREFIX = re.compile(r"^data:(?P<type>[^,;]*)(?P<params>[^,]*),", re.IGNORECASE)


def _read_images(value: Any, limits: Limits, param: str) -> list[Any]:
    """The images of a request field (a data URL or a list of them), decoded to RGB images.

    The body-size limit bounds the bytes, `max_inputs` the count; each image is checked against
    the decoder's pixel limit from its header before its pixels are decoded.
    """
    items = _listed(value, limits, param, "image", "an image data URL or a list of them")
    return [_decode_image(item, i, param) for i, item in enumerate(items)]


def _decode_image(item: Any, i: int, param: str) -> Any:
    """One data URL as a decoded RGB image; ApiError(400) naming the item otherwise."""
    from ..inputs.images import load_image

    where = f"{param}[{i}]"
    if not isinstance(item, str):
        raise ApiError(
            422, f"{where} must be a string (an image data URL), got {type(item).__name__}",
            param=param,
        )  # fmt: skip
    head = _DATA_PREFIX.match(item)
    if head is None:
        raise ApiError(
            400,
            f"{where} is text, but this model reads images: send each image as a base64 data "
            "URL (data:image/jpeg;base64,...)",
            param=param,
            code="wrong_input_kind",
        )
    if not head["type"].lower().startswith("image/") or ";base64" not in head["params"].lower():
        raise ApiError(
            400,
            f"{where} is a data URL of {head['type'] or 'no type'!r}"
            f"{'' if ';base64' in head['params'].lower() else ' not in base64'}: send "
            "data:image/...;base64,...",
            param=param,
            code="invalid_image",
        )
    try:
        data = base64.b64decode(item[head.end() :], validate=True)
    except binascii.Error:
        raise ApiError(
            400, f"{where}: the base64 data is damaged", param=param, code="invalid_image"
        ) from None
    try:
        return load_image(data, label=where)
    except InputError as exc:
        raise ApiError(400, str(exc), param=param, code="invalid_image") from None


_READERS: dict[InputKind, InputReader] = {
    InputKind.TEXT: InputReader(read=_read_texts, warm_up=("warm up",)),
    InputKind.IMAGE: InputReader(
        read=_read_images, warm_up=(np.full((32, 32, 3), 127, dtype=np.uint8),)
    ),
}


def reader_for(name: str, encoder: Encoder) -> InputReader:
    """The reader of `encoder`'s input kind; InputError when the server cannot read that kind."""
    kind = encoder.input_kind
    reader = _READERS.get(kind)
    if reader is None:
        readable = ", ".join(str(k) for k in _READERS)
        raise InputError(
            f"encoder {name!r} reads {kind} inputs; the server reads only {readable} inputs"
        )
    return reader


def read_inputs(encoder: Encoder, value: Any, limits: Limits, param: str) -> list[Any]:
    """The inputs of request field `param` for `encoder`, read the way its input kind needs."""
    return reader_for(encoder.name, encoder).read(value, limits, param)


def warm_up_inputs(name: str, encoder: Encoder) -> list[Any]:
    """One batch of inputs that makes `encoder` load its model now (before the first request)."""
    return list(reader_for(name, encoder).warm_up)
