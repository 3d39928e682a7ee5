"""Batch encoding beyond one machine: a corpus encoded on Ray into resumable Parquet shards.

``encode_dataset("corpus/", "minilm-l6", "vectors/")`` streams txt/CSV/TSV/JSONL/Parquet rows (a
local folder or any pyarrow filesystem URI) in fixed shards to a pool of Ray actors, each holding
one encoder, and writes one Parquet shard per slice (id, vector, the encoder spec in the
metadata). A rerun skips the shards already written. Needs the extra: pip install
'embedcraft[distributed]'.
"""

from __future__ import annotations

from ._encode import EncodeResult, encode_dataset
from ._ray import RayOptions
from ._shards import read_shards

__all__ = ["EncodeResult", "RayOptions", "encode_dataset", "read_shards"]
