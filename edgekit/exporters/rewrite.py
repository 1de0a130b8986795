"""Exact graph rewrites after export, so runtimes find the fused kernels they have.

GELU: torch's dynamo exporter writes erf-GELU as `x * ((erf(x / sqrt2) + 1) * 0.5)`; ONNX Runtime's GeluFusion
(and TensorRT's) recognise `(x * (erf(x / sqrt2) + 1)) * 0.5`. Re-associating the multiplication by 0.5 is
exact in floating point (a power of two only changes the exponent), so the rewritten graph computes the same
function bit for bit, and runtimes replace its five element-wise passes over the activations with one fused
kernel (in MobileSAM's encoder those passes were a quarter of ONNX Runtime's CPU time).
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper


def _scalar(model: onnx.ModelProto, name: str, consts: dict[str, np.ndarray]) -> float | None:
    value = consts.get(name)
    return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None


def canonical_gelu(model: onnx.ModelProto) -> int:
    """Rewrite every dynamo-order erf-GELU in place; returns how many were rewritten."""
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    rewritten = 0
    for half_mul in list(graph.node):
        if half_mul.op_type != "Mul" or len(half_mul.input) != 2:
            continue
        add_name, half_name = half_mul.input
        if _scalar(model, half_name, consts) != 0.5:
            add_name, half_name = half_name, add_name
            if _scalar(model, half_name, consts) != 0.5:
                continue
        add = producer.get(add_name)
        if add is None or add.op_type != "Add":
            continue
        erf_out = next((i for i in add.input if producer.get(i) is not None and producer[i].op_type == "Erf"), None)
        one = next((i for i in add.input if i != erf_out), None)
        if erf_out is None or _scalar(model, one, consts) != 1.0:
            continue
        div = producer.get(producer[erf_out].input[0])
        if div is None or div.op_type != "Div" or not math.isclose(_scalar(model, div.input[1], consts) or 0, math.sqrt(2), rel_tol=1e-6):
            continue
        x = div.input[0]
        users = consumers.get(half_mul.output[0], [])
        if len(users) != 1 or half_mul.output[0] in graph_outputs:
            continue
        x_mul = users[0]
        if x_mul.op_type != "Mul" or set(x_mul.input) != {x, half_mul.output[0]} or len(consumers.get(add_name, [])) != 1:
            continue
        # (a * 0.5) then x * that  ->  x * a then * 0.5. Node names stay (the layer map still applies) and the
        # order stays topological: the first Mul already came after x and a, the second after the first.
        half_mul.input[:] = [x, add_name]
        x_mul.input[:] = [half_mul.output[0], half_name]
        rewritten += 1
    return rewritten


def fuse_gelu_contrib(model: onnx.ModelProto) -> int:
    """Replace each canonical erf-GELU (see `canonical_gelu`) with ONNX Runtime's `com.microsoft.Gelu` node.

    For INT8 models meant for ONNX Runtime only: its quantizer puts a DequantizeLinear before the GELU whose
    two consumers (Div, Mul) ONNX Runtime then splits into two copies, which breaks its own GELU fusion and
    leaves five float passes per GELU in the INT8 graph. Fusing first keeps one kernel. The node keeps the
    last Mul's name, so the layer map still attributes it. Not for TensorRT-bound graphs (standard ops only).
    """
    canonical_gelu(model)
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    users: dict[str, int] = {}
    for node in graph.node:
        for i in node.input:
            users[i] = users.get(i, 0) + 1
    outputs = {o.name for o in graph.output}
    doomed: set[int] = set()
    replacements: dict[int, onnx.NodeProto] = {}
    for node in graph.node:  # the final `* 0.5`
        if node.op_type != "Mul" or len(node.input) != 2 or _scalar(model, node.input[1], consts) != 0.5:
            continue
        x_mul = producer.get(node.input[0])
        if x_mul is None or x_mul.op_type != "Mul" or len(x_mul.input) != 2:
            continue
        x, add_out = x_mul.input
        add = producer.get(add_out)
        if add is None or add.op_type != "Add":
            continue
        erf = producer.get(add.input[0])
        div = producer.get(erf.input[0]) if erf is not None and erf.op_type == "Erf" else None
        chain = [div, erf, add, x_mul]
        if div is None or div.op_type != "Div" or div.input[0] != x:
            continue
        if any(users.get(n.output[0], 0) != 1 or n.output[0] in outputs for n in chain):
            continue  # an intermediate is used elsewhere: fusing would drop it
        doomed.update(id(n) for n in chain)
        replacements[id(node)] = onnx.helper.make_node("Gelu", [x], [node.output[0]], name=node.name,
                                                        domain="com.microsoft")
    if not replacements:
        return 0
    kept = [replacements.get(id(n), n) for n in graph.node if id(n) not in doomed]
    graph.ClearField("node")
    graph.node.extend(kept)
    used = {i for n in graph.node for i in n.input}
    unused = [t for t in graph.initializer if t.name not in used]  # the fused constants (sqrt 2, 1, 0.5)
    for t in unused:
        graph.initializer.remove(t)
    if not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    return len(replacements)
