"""Run each exported self-attention block as one onnxruntime `MultiHeadAttention` op.

PyTorch's export of scaled-dot-product attention splits the projected queries, keys and values
into heads with Reshape/Transpose pairs (five transposes a layer), scales both sides, adds the
padding mask, runs Softmax with a NaN guard and joins the heads back. In the int8 build those
copies took ~15% of the time. `MultiHeadAttention` takes the three projections (batch, tokens,
width) and a key-padding mask and returns the joined heads in one pass, with the same
arithmetic: every key that is padding gets no weight, so a text's vector still does not depend
on its batch. A block that does not match the pattern exactly (another mask form, a position
bias added to the scores) is left as it is; the build's check against the source model guards
the rest.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

__all__ = ["fuse_attention"]

_MS_DOMAIN = "com.microsoft"
_MASK = "attention_mask"
_MASK_INT32 = "fused_attention_key_padding_mask"


class _Graph:
    """Producers, consumers and scalar constants of an onnx graph."""

    def __init__(self, graph: Any) -> None:
        from onnx import numpy_helper

        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                self.consumers[name].append(node)
        self.constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}

    def scalar(self, name: str) -> float | None:
        value = self.constants.get(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def heads_of(self, tensor: str) -> tuple[str, float, list[int]] | None:
        """Follow one side of the attention back through Reshape/Transpose/scalar-Mul to the
        projected (batch, tokens, width) tensor: (its name, the product of the scales, the
        constant tail of each Reshape's target shape), or None where another op intervenes."""
        scale, shapes = 1.0, []
        while True:
            node = self.producer.get(tensor)
            if node is None:
                return None
            if node.op_type == "Transpose":
                tensor = node.input[0]
            elif node.op_type == "Reshape":
                shapes.append(self._shape_tail(node.input[1]))
                tensor = node.input[0]
            elif node.op_type == "Mul" and self.scalar(node.input[1]) is not None:
                scale *= self.scalar(node.input[1])  # type: ignore[operator]
                tensor = node.input[0]
            elif node.op_type == "Add" and not shapes:
                return None  # a sum straight into the scores: not a projection
            else:
                return (tensor, scale, shapes[-1]) if shapes else None

    def width_of(self, tensor: str) -> int | None:
        """The last dimension of a projection `x @ W (+ b)` with constant W, else None."""
        node = self.producer.get(tensor)
        if node is not None and node.op_type == "Add":
            node = next((self.producer[i] for i in node.input if i in self.producer), None)
        if node is None or node.op_type != "MatMul":
            return None
        weight = self.constants.get(node.input[1])
        return int(weight.shape[-1]) if weight is not None and weight.ndim == 2 else None

    def _shape_tail(self, shape: str) -> list[int]:
        """The last two entries of a Reshape target when they are constants (else [])."""
        value = self.constants.get(shape)
        if value is not None:
            return [int(v) for v in value.reshape(-1)[-2:]]
        node = self.producer.get(shape)
        if node is None or node.op_type != "Concat" or len(node.input) < 2:
            return []
        tail = [self.constants.get(name) for name in node.input[-2:]]
        if any(t is None or t.size != 1 for t in tail):
            return []
        return [int(t.reshape(-1)[0]) for t in tail]  # type: ignore[union-attr]


def fuse_attention(model: Any) -> int:
    """Rewrite `model` (an onnx ModelProto, float32, before quantization) in place; the number
    of attention blocks now run by `MultiHeadAttention`."""
    from onnx import TensorProto, helper

    graph = model.graph
    if _MASK not in {i.name for i in graph.input}:
        return 0
    g = _Graph(graph)
    replacement: dict[str, Any] = {}  # output of a block's last Reshape -> the fused node
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        fused = _fused_block(g, softmax)
        if fused is not None:
            query, key, value, heads, scale, output = fused
            replacement[output] = helper.make_node(
                "MultiHeadAttention",
                [query, key, value, "", _MASK_INT32],
                [output],
                name=f"{softmax.name}_fused_attention",
                domain=_MS_DOMAIN,
                num_heads=heads,
                scale=scale,
            )
    if not replacement:
        return 0
    nodes = [replacement.get(node.output[0], node) for node in graph.node]
    cast = helper.make_node("Cast", [_MASK], [_MASK_INT32], to=TensorProto.INT32)
    _keep_reachable(graph, [cast, *nodes])
    if not any(o.domain == _MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS_DOMAIN, 1))
    return len(replacement)


def _fused_block(g: _Graph, softmax: Any) -> tuple[str, str, str, int, float, str] | None:
    """(query, key, value, heads, scale, output) of the attention around `softmax`, or None."""
    masked = g.producer.get(softmax.input[0])
    if masked is None or masked.op_type != "Add":
        return None
    scores = g.producer.get(masked.input[0])
    if scores is None or scores.op_type != "MatMul" or not _from_mask(g, masked.input[1]):
        return None
    query, key = g.heads_of(scores.input[0]), g.heads_of(scores.input[1])
    probs = softmax.output[0]
    while True:  # past the NaN guard (IsNaN -> Where) to the product with the values
        users = [n for n in g.consumers[probs] if n.op_type != "IsNaN"]
        if len(users) != 1 or users[0].op_type not in ("Where", "MatMul"):
            return None
        if users[0].op_type == "MatMul":
            context = users[0]
            break
        probs = users[0].output[0]
    value = g.heads_of(context.input[1])
    joined = g.consumers[context.output[0]]
    if len(joined) != 1 or joined[0].op_type != "Transpose":
        return None
    if list(joined[0].attribute[0].ints) != [0, 2, 1, 3]:
        return None
    merged = g.consumers[joined[0].output[0]]
    if len(merged) != 1 or merged[0].op_type != "Reshape":
        return None
    if query is None or key is None or value is None or value[1] != 1.0:
        return None
    if len(query[2]) != 2 or query[2] != value[2] or context.input[0] != probs:
        return None
    heads, head_width = query[2]
    width = g.width_of(query[0])
    if heads <= 0 and width is not None and head_width > 0 and width % head_width == 0:
        heads = width // head_width  # the export writes (batch, tokens, -1, head width)
    if heads <= 0 or width is None or heads * head_width != width:
        return None
    return query[0], key[0], value[0], heads, query[1] * key[1], merged[0].output[0]


def _from_mask(g: _Graph, tensor: str) -> bool:
    """Whether `tensor` is computed from the attention mask alone (and constants)."""
    seen, todo = set(), [tensor]
    reaches_mask = False
    while todo:
        name = todo.pop()
        if name in seen or name in g.constants:
            continue
        seen.add(name)
        if name == _MASK:
            reaches_mask = True
            continue
        node = g.producer.get(name)
        if node is None:
            if name in ("input_ids", "token_type_ids"):
                continue  # used for shapes only
            return False
        if node.op_type in ("MatMul", "Softmax", "LayerNormalization", "Gemm"):
            return False  # model activations, not a mask
        todo.extend(i for i in node.input if i)
    return reaches_mask


def _keep_reachable(graph: Any, nodes: list[Any]) -> None:
    """Replace the graph's nodes by those of `nodes` that the outputs still need."""
    needed = {out.name for out in graph.output}
    kept = []
    for node in reversed(nodes):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
