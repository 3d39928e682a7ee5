"""`embedcraft export PATH -o DIR`: turn a local sentence-transformers / Hugging Face model
folder into a model folder embedcraft runs without torch (ONNX + tokenizer.json + settings)."""

from __future__ import annotations

import argparse
from typing import Any

from ..encoders.hf_export import write_model_folder
from ..encoders.hf_folder import SUPPORTED_TYPES, read_hf_folder
from ._common import add_command, print_json

__all__ = ["register"]


def cmd_export(args: argparse.Namespace) -> int:
    model = read_hf_folder(args.path, pooling=args.pooling)
    report = write_model_folder(model, args.output, int8=args.int8)
    if args.json:
        print_json(report)
        return 0
    how = "exported to ONNX in" if report["exported_now"] else "ONNX export cached (made in"
    done = f"{report['export_s']:.1f} s" + ("" if report["exported_now"] else ")")
    print(f"{report['source']}: {report['architecture']}, {how} {done}")
    prompts = ", ".join(f"{k}={v!r}" for k, v in report["prompts"].items()) or "none"
    print(
        f"wrote {report['output']}: model.onnx {report['bytes'] / 1e6:.1f} MB"
        f"{' (int8-compute build)' if report['int8'] else ''}, tokenizer.json, "
        f"embedcraft-model.json (pooling {report['pooling']}, normalize {report['normalize']}, "
        f"max length {report['max_length']}, prompts {prompts})"
    )
    print(f"load it with: embedcraft encode ... -e {report['output']}")
    return 0


def register(sub: Any) -> None:
    """Add `export` to the top-level sub-parsers."""
    p = add_command(
        sub,
        "export",
        "export a local sentence-transformers / Hugging Face model folder to ONNX (one time)",
        cmd_export,
    )
    p.description = (
        "Export a local model folder (sentence-transformers layout: modules.json, config.json, "
        "model.safetensors or pytorch_model.bin, tokenizer.json, 1_Pooling/config.json; or a "
        "plain Hugging Face encoder folder) to a model folder that embedcraft runs on "
        "onnxruntime without torch: model.onnx, tokenizer.json and embedcraft-model.json (the "
        "folder's pooling, normalization, max length and prompts). Needs torch and "
        "transformers (pip install 'embedcraft[export]'); nothing is downloaded. Families: "
        f"{', '.join(SUPPORTED_TYPES.values())}. Giving the model folder itself to -e/"
        "load_encoder does the same export on first use, cached."
    )
    p.add_argument("path", metavar="PATH", help="the local model folder")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="the folder to write")
    p.add_argument(
        "--int8",
        action="store_true",
        help="write the int8-compute build (about 2x faster on CPU, cosine ~0.99 to float32)",
    )
    p.add_argument(
        "--pooling",
        choices=("mean", "cls", "max", "last"),
        help="pooling of the sentence vector (default: the folder's own; mean for a plain "
        "Hugging Face folder)",
    )
