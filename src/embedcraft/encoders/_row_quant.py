"""Per-row activation scales for a dynamically quantized ONNX model, so a text's vector does not
depend on its batch neighbours.

`onnxruntime.quantization.quantize_dynamic` quantizes each MatMul's input with one scale and
zero point for the whole tensor (`DynamicQuantizeLinear`): the batch's largest activation sets
every row's step, so a text encoded beside a longer or louder one comes out slightly different
(cosine down to ~0.99). This rewrite gives every row (every token of every text) its own
symmetric scale, max |x| / 127, with the zero point fixed at 128 (uint8), and hands the integer
product to onnxruntime's fused `MatMulIntegerToFloat` with the weight scales only; the row scale
is applied by one `Mul` after it. A row's vector then depends on that row alone, and per-row
steps are finer than one step for the whole batch (cosine to float32 0.997 instead of 0.993).

`MatMulIntegerToFloat` must not receive a row scale itself: onnxruntime's fusion would take it
as a scalar (measured: cosine 0.69). Only the exact pattern `quantize_dynamic` writes is
rewritten; anything else raises ValueError, so a build never ships a graph it does not know.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

__all__ = ["ROW_SCALE_RECIPE", "per_row_activation_scales"]

ROW_SCALE_RECIPE = "per-row-symmetric-activations/2"
"""Names this rewrite; part of the int8 build's recipe."""

_MS_DOMAIN = "com.microsoft"


class _Graph:
    """The graph's nodes with who produces and who consumes each tensor."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                self.consumers[name].append(node)
        self.initializers = {init.name: init for init in graph.initializer}

    def only_consumer(self, tensor: str, op_type: str) -> Any:
        users = self.consumers.get(tensor, [])
        if len(users) != 1 or users[0].op_type != op_type:
            found = ", ".join(u.op_type for u in users) or "nothing"
            raise ValueError(f"{tensor} feeds {found}, expected one {op_type}")
        return users[0]


def per_row_activation_scales(model: Any) -> int:
    """Rewrite `model` (an onnx ModelProto from quantize_dynamic) in place; the number of
    quantized inputs rewritten. Raises ValueError on a pattern it does not know."""
    from onnx import helper, numpy_helper

    g = _Graph(model.graph)
    constants: dict[str, np.ndarray] = {
        "row_quant_zero_point": np.array(128, np.uint8),
        "row_quant_one": np.array(1.0, np.float32),
        "row_quant_inv127": np.array(1.0 / 127.0, np.float32),
        "row_quant_tiny": np.array(1e-30, np.float32),
        "row_quant_127": np.array(127.0, np.float32),
    }
    new_initializers = [numpy_helper.from_array(v, k) for k, v in constants.items()]
    replaced: dict[str, list[Any]] = {}  # a node (by its first output) -> its replacement
    removed: set[str] = set()
    count = 0
    for node in list(model.graph.node):
        if node.op_type != "DynamicQuantizeLinear":
            continue
        x = node.input[0]
        quantized, scale, zero_point = node.output
        p = f"{node.name}_row"
        _inner_width(g, quantized)  # checks that only 2-D constant weights consume it
        row_scale = p + "_scale"
        replaced[node.output[0]] = [
            # max |x| per row from two reductions (no |x| tensor written), floored above zero
            helper.make_node("ReduceMax", [x], [p + "_hi"], axes=[-1], keepdims=1),
            helper.make_node("ReduceMin", [x], [p + "_lo"], axes=[-1], keepdims=1),
            helper.make_node("Neg", [p + "_lo"], [p + "_neg_lo"]),
            helper.make_node("Max", [p + "_hi", p + "_neg_lo", "row_quant_tiny"], [p + "_absmax"]),
            helper.make_node("Mul", [p + "_absmax", "row_quant_inv127"], [row_scale]),
            # each row onto [-127, 127], then one per-tensor QuantizeLinear (step 1, zero 128),
            # which onnxruntime runs vectorized and in parallel (its per-axis form does not)
            helper.make_node("Div", ["row_quant_127", p + "_absmax"], [p + "_to_int"]),
            helper.make_node("Mul", [x, p + "_to_int"], [p + "_scaled"]),
            helper.make_node(
                "QuantizeLinear",
                [p + "_scaled", "row_quant_one", "row_quant_zero_point"],
                [quantized],
            ),
        ]
        for matmul in g.consumers[quantized]:
            new, dropped = _float_output(g, matmul, scale, zero_point, row_scale)
            replaced[matmul.output[0]] = new
            removed |= dropped
        count += 1
    if count == 0:
        raise ValueError("no DynamicQuantizeLinear node to rewrite")
    nodes: list[Any] = []
    for node in model.graph.node:
        if node.output[0] in replaced:
            nodes.extend(replaced[node.output[0]])
        elif node.output[0] not in removed:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(new_initializers)
    if not any(op.domain == _MS_DOMAIN for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS_DOMAIN, 1))
    return count


def _inner_width(g: _Graph, quantized: str) -> int:
    """K, the width of the rows that the MatMulIntegers consuming `quantized` multiply."""
    widths = set()
    for matmul in g.consumers[quantized]:
        if matmul.op_type != "MatMulInteger" or matmul.input[0] != quantized:
            raise ValueError(f"{quantized} feeds {matmul.op_type}, expected MatMulInteger")
        weight = g.initializers.get(matmul.input[1])
        if weight is None or len(weight.dims) != 2:
            raise ValueError(f"{matmul.name}: weight is not a 2-D initializer")
        widths.add(int(weight.dims[0]))
    if len(widths) != 1:
        raise ValueError(f"{quantized}: consumers disagree on the row width {sorted(widths)}")
    return widths.pop()


def _float_output(
    g: _Graph, matmul: Any, scale: str, zero_point: str, row_scale: str
) -> tuple[list[Any], set[str]]:
    """MatMulInteger -> Cast -> Mul(., Mul(scale, w_scale)) becomes MatMulIntegerToFloat with the
    weight scales and zero point 128, then Mul by the row scale; (new nodes, dropped nodes'
    first outputs)."""
    from onnx import helper

    if len(matmul.input) != 4 or matmul.input[2] != zero_point:
        raise ValueError(f"{matmul.name}: expected the activation zero point as input 3")
    cast = g.only_consumer(matmul.output[0], "Cast")
    rescale = g.only_consumer(cast.output[0], "Mul")
    scales_name = rescale.input[1] if rescale.input[0] == cast.output[0] else rescale.input[0]
    scales = g.producer.get(scales_name)
    if scales is None or scales.op_type != "Mul" or scale not in scales.input:
        raise ValueError(f"{matmul.name}: its output scale is not activation x weight scale")
    weight_scale = scales.input[1] if scales.input[0] == scale else scales.input[0]
    if weight_scale not in g.initializers:
        raise ValueError(f"{matmul.name}: the weight scale is not a constant")
    out = rescale.output[0]
    nodes = [
        helper.make_node(
            "MatMulIntegerToFloat",
            [
                matmul.input[0],
                matmul.input[1],
                "row_quant_one",
                weight_scale,
                "row_quant_zero_point",
                matmul.input[3],
            ],
            [out + "_by_weight_scale"],
            name=matmul.name + "_to_float",
            domain=_MS_DOMAIN,
        ),
        helper.make_node(
            "Mul", [out + "_by_weight_scale", row_scale], [out], name=matmul.name + "_by_row"
        ),
    ]
    return nodes, {cast.output[0], rescale.output[0], scales.output[0]}
