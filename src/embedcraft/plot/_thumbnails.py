"""Small JPEG thumbnails as data URLs, so the HTML explorer of images stays one file.

Each image is decoded as the encoders decode it (`inputs.images.load_image`: upright, RGB, a
big JPEG decoded at reduced scale, refused over `max_pixels` before decoding), shrunk to fit
`size` x `size` and saved as a JPEG. The total is bounded: once the thumbnails made so far
reach `budget` bytes, the remaining points get none (their tooltip shows the text only).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import InputError
from ..inputs.images import DEFAULT_MAX_PIXELS, ImageInput, image_label, load_image

__all__ = ["DEFAULT_BUDGET", "Thumbnails", "make_thumbnails"]

DEFAULT_SIZE = 64
DEFAULT_BUDGET = 24_000_000
"""Bytes of data URLs an explorer page may carry (about 10k thumbnails of 64 px)."""
_CHUNK = 256


@dataclass
class Thumbnails:
    """One data URL per image (None where it could not be read or the budget ran out)."""

    urls: list[str | None]
    failed: dict[int, str] = field(default_factory=dict)
    """Index -> why the image could not be read."""
    over_budget: int = 0
    """Images left without a thumbnail because the page's budget was spent."""

    @property
    def bytes(self) -> int:
        return sum(len(u) for u in self.urls if u)


def _one(source: ImageInput, index: int, size: int, quality: int) -> str:
    image = load_image(
        source, max_pixels=DEFAULT_MAX_PIXELS, min_side=size, label=image_label(source, index)
    )
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def make_thumbnails(
    images: Sequence[ImageInput],
    *,
    size: int = DEFAULT_SIZE,
    quality: int = 70,
    budget: int = DEFAULT_BUDGET,
    threads: int = 4,
) -> Thumbnails:
    """Thumbnails (at most `size` px a side, JPEG `quality`) of `images` (paths, PIL images,
    arrays), as data URLs; an unreadable image gets None and is named in `failed`."""
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 512:
        raise InputError(f"thumbnail size must be 8 to 512 pixels, got {size!r}")
    if not 1 <= quality <= 95:
        raise InputError(f"JPEG quality must be 1 to 95, got {quality!r}")

    def one(item: tuple[int, ImageInput]) -> str | InputError:
        try:
            return _one(item[1], item[0], size, quality)
        except InputError as exc:
            return exc

    result = Thumbnails([None] * len(images))
    spent = 0
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for start in range(0, len(images), _CHUNK):
            if spent >= budget:
                result.over_budget = len(images) - start
                break
            chunk = list(enumerate(images[start : start + _CHUNK], start=start))
            for (index, _), made in zip(chunk, pool.map(one, chunk), strict=True):
                if isinstance(made, InputError):
                    result.failed[index] = str(made)
                elif spent + len(made) > budget:
                    result.over_budget += 1
                else:
                    result.urls[index] = made
                    spent += len(made)
    return result
