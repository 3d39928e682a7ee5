"""One way to open an ONNX model for inference on the CPU, shared by the text and image runtimes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["UNUSED_FUSIONS", "cpu_session"]

UNUSED_FUSIONS = ("SkipLayerNormFusion",)
"""onnxruntime graph rewrites left off: its fused SkipLayerNormalization ran 4x slower per value
than the Add + LayerNormalization it replaces (onnxruntime 1.32, 2 cores; without it
`bench/encode.py` measured minilm-l6 8% and minilm-l6-int8 15% faster, same accuracy)."""


def cpu_session(
    ort: Any, onnx: str | Path, threads: int | None, *, varying_shapes: bool, quiet: bool
) -> Any:
    """An onnxruntime session on the CPU with `threads` intra-op threads (0: all cores).

    Idle threads sleep instead of spinning, so a server's event loop and other work on the
    machine get the cores between runs. `varying_shapes` turns off cached memory patterns
    (every batch has another shape, so they only pile up); `quiet` hides onnxruntime's
    warnings. A file onnxruntime cannot load is one InputError naming it. Every session, the
    checks of built models included, runs the same rewrites (all but `UNUSED_FUSIONS`).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if varying_shapes:
        options.enable_mem_pattern = False
    if quiet:
        options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(
            str(onnx),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(UNUSED_FUSIONS),
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise InputError(f"{onnx}: not a loadable ONNX model ({exc})") from None
