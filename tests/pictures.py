"""Small pictures the image tests draw themselves (Pillow is imported when one is drawn, so a
test module can first stop through `components.import_component` when Pillow is missing)."""

from __future__ import annotations

from typing import Any

import numpy as np


def gradient(kind: int, size: tuple[int, int] = (96, 128)) -> Any:
    """A smooth RGB picture (a PIL image); each kind (0, 1, 2) is unlike the others."""
    from PIL import Image

    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    make = {
        0: lambda c: (x * 2 + c * 40) % 256,
        1: lambda c: (y * 2 + c * 90) % 256,
        2: lambda c: ((x - 64) ** 2 + (y - 48) ** 2) // (c + 3) % 256,
    }[kind]
    return Image.fromarray(np.stack([make(c) for c in range(3)], -1).astype(np.uint8))
