"""Reading texts from the files users have (.txt, CSV/TSV, JSONL, Parquet) and writing vectors.

`read_texts` collects the records `embedcraft.inputs` streams into one `TextTable`: ids, texts
and the other columns as metadata. Errors name the file and line. Vector files are written aside
and renamed, so a failed write leaves nothing behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._files import atomic_file
from .errors import InputError, missing_dependency
from .inputs import TEXT_FORMATS, read_records
from .inputs import csv_dict_reader as csv_dict_reader  # public here before embedcraft.inputs
from .inputs import parquet_rows as parquet_rows

__all__ = ["TEXT_FORMATS", "VECTOR_FORMATS", "TextTable", "read_texts", "write_vectors"]

VECTOR_FORMATS = (".npy", ".npz", ".parquet")


@dataclass
class TextTable:
    """Texts read from a file, with their ids and any other columns as metadata."""

    ids: list[str]
    texts: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


def read_texts(
    path: str | os.PathLike[str], *, column: str | None = None, id_column: str | None = None
) -> TextTable:
    """Read texts from .txt (one per line), .csv/.tsv, .jsonl or .parquet (optionally .gz).

    The text column defaults to the first of text/sentence/document/content/body present
    (`column="title,description"` joins several with ". "); the id column to id/_id/doc_id,
    else the row number (1-based). See `embedcraft.inputs.read_records`.
    """
    table = TextTable([], [], [])
    for batch in read_records(path, column=column, id_column=id_column):
        table.ids += batch.ids
        table.texts += batch.texts
        table.metadata += batch.metadata
    return table


def write_vectors(path: str | os.PathLike[str], vectors: Any, ids: list[str] | None = None) -> Path:
    """Write vectors to .npy (dense), .npz (dense or sparse, with ids) or .parquet (with ids).

    Sparse .npz files use scipy's layout (`scipy.sparse.load_npz` reads them) plus an `ids` array.
    """
    p = Path(path)
    kind = p.suffix.lower()
    if kind not in VECTOR_FORMATS:
        raise InputError(f"{p}: unsupported output type; use one of {', '.join(VECTOR_FORMATS)}")
    n = vectors.shape[0]
    id_array = np.array(ids if ids is not None else [str(i) for i in range(n)], dtype=str)
    if len(id_array) != n:
        raise InputError(f"{len(id_array)} ids for {n} vectors")
    if kind == ".npy" and sp.issparse(vectors):
        raise InputError(f"{p}: sparse vectors cannot go to .npy; write .npz or .parquet instead")
    if kind == ".parquet":
        table = _vectors_table(vectors, id_array)
    with atomic_file(p) as tmp:
        with open(tmp, "wb") as fh:
            if kind == ".npy":
                np.save(fh, np.asarray(vectors), allow_pickle=False)
            elif kind == ".npz" and sp.issparse(vectors):
                m = sp.csr_matrix(vectors)
                np.savez_compressed(
                    fh,
                    format=b"csr",
                    shape=np.array(m.shape),
                    data=m.data,
                    indices=m.indices,
                    indptr=m.indptr,
                    ids=id_array,
                )
            elif kind == ".npz":
                np.savez_compressed(fh, vectors=np.asarray(vectors), ids=id_array)
        if kind == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
    return p


def _vectors_table(vectors: Any, ids: np.ndarray) -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise missing_dependency("pyarrow", "parquet", "writing Parquet") from None
    dim = vectors.shape[1]
    if sp.issparse(vectors):
        m = sp.csr_matrix(vectors)
        offsets = pa.array(m.indptr.astype(np.int32))
        indices = pa.ListArray.from_arrays(offsets, pa.array(m.indices.astype(np.int32)))
        values = pa.ListArray.from_arrays(offsets, pa.array(m.data.astype(np.float32)))
        table = pa.table({"id": pa.array(ids.tolist()), "indices": indices, "values": values})
    else:
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
        column = pa.FixedSizeListArray.from_arrays(flat, dim)
        table = pa.table({"id": pa.array(ids.tolist()), "vector": column})
    return table.replace_schema_metadata({"embedcraft.dim": str(dim)})
