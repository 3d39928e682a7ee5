"""The first layer of the tree (inputs -> encoders -> vectors -> store/search/... -> cli/server):
the files users have, read as a stream of records, the same way by every command.

``read_records("news.tsv", column="title,description")`` yields `RecordBatch`es of ids, texts
and the other columns; `embedcraft.io.read_texts` collects them into one table, training corpora
and the Ray engine stream them.
"""

from __future__ import annotations

from .images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageInput,
    as_images,
    fit_to_size,
    is_image_file,
    list_image_files,
    load_image,
)
from .records import (
    ID_COLUMNS,
    READ_ROWS,
    TEXT_COLUMNS,
    TEXT_FORMATS,
    RecordBatch,
    csv_dict_reader,
    file_format,
    parquet_rows,
    read_records,
    read_text_file,
    split_columns,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ID_COLUMNS",
    "IMAGE_SUFFIXES",
    "READ_ROWS",
    "TEXT_COLUMNS",
    "TEXT_FORMATS",
    "ImageInput",
    "RecordBatch",
    "as_images",
    "csv_dict_reader",
    "file_format",
    "fit_to_size",
    "is_image_file",
    "list_image_files",
    "load_image",
    "parquet_rows",
    "read_records",
    "read_text_file",
    "split_columns",
]
