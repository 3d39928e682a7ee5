"""Fuse the exported erf-GELU, and the bias added before it, into onnxruntime's `BiasGelu`.

BERT exports write GELU as five element-wise nodes, `x * (0.5 * (erf(x / sqrt 2) + 1))`, after
the feed-forward layer's bias `Add`; onnxruntime does not fuse that form (its pattern wants the
0.5 applied last), so each layer reads and writes its widest activations six times. `BiasGelu`
computes the same function (onnxruntime's erf) in one pass. Only this exact pattern is touched.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

__all__ = ["fuse_bias_gelu"]

_MS_DOMAIN = "com.microsoft"


def fuse_bias_gelu(model: Any) -> int:
    """Rewrite `model` (an onnx ModelProto) in place; the number of GELUs fused."""
    from onnx import helper, numpy_helper

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}

    def scalar(name: str) -> float | None:
        value = constants.get(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def only(tensor: str, op_type: str) -> Any:
        users = consumers.get(tensor, [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    replaced: dict[str, Any] = {}  # first output of the pattern's last node -> BiasGelu
    removed: set[str] = set()
    for erf in [n for n in graph.node if n.op_type == "Erf"]:
        div = producer.get(erf.input[0])
        if div is None or div.op_type != "Div" or not _close(scalar(div.input[1]), math.sqrt(2)):
            continue
        x = div.input[0]
        plus_one = only(erf.output[0], "Add")
        half = plus_one and only(plus_one.output[0], "Mul")
        times_x = half and only(half.output[0], "Mul")
        if not (plus_one and half and times_x):
            continue
        other = [i for i in plus_one.input if i != erf.output[0]]
        halves = [i for i in half.input if i != plus_one.output[0]]
        if not (_close(scalar(other[0]), 1.0) and _close(scalar(halves[0]), 0.5)):
            continue
        if set(times_x.input) != {x, half.output[0]}:
            continue
        if {n.output[0] for n in consumers[x]} != {div.output[0], times_x.output[0]}:
            continue
        inputs = [x]
        bias_add = producer.get(x)
        if bias_add is not None and bias_add.op_type == "Add":
            bias = [i for i in bias_add.input if i in constants and constants[i].ndim == 1]
            if len(bias) == 1:
                data = next(i for i in bias_add.input if i != bias[0])
                inputs = [data, bias[0]]
                removed.add(bias_add.output[0])
        op = "BiasGelu" if len(inputs) == 2 else "Gelu"
        replaced[times_x.output[0]] = helper.make_node(
            op, inputs, [times_x.output[0]], name=f"{times_x.name}_fused", domain=_MS_DOMAIN
        )
        removed |= {div.output[0], erf.output[0], plus_one.output[0], half.output[0]}
    nodes = []
    for node in graph.node:
        if node.output[0] in replaced:
            nodes.append(replaced[node.output[0]])
        elif node.output[0] not in removed:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    if replaced and not any(op.domain == _MS_DOMAIN for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS_DOMAIN, 1))
    return len(replaced)


def _close(value: float | None, expected: float) -> bool:
    return value is not None and abs(value - expected) <= 1e-6 * max(1.0, abs(expected))
