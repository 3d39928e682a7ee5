"""See a set of vectors: 2-D projections (PCA, t-SNE, UMAP), a PNG, and a standalone HTML
explorer whose search highlights each item's nearest neighbours in the original space.

matplotlib (PNG) and umap-learn (UMAP) are optional: ``pip install 'embedcraft[plot]'``.
"""

from __future__ import annotations

from ._explorer import write_explorer
from ._labels import Labels, encode_labels
from ._neighbours import nearest_neighbours
from ._png import write_png
from ._project import METHODS, Projection, project
from ._thumbnails import Thumbnails, make_thumbnails

__all__ = [
    "METHODS",
    "Labels",
    "Projection",
    "Thumbnails",
    "encode_labels",
    "make_thumbnails",
    "nearest_neighbours",
    "project",
    "write_explorer",
    "write_png",
]
