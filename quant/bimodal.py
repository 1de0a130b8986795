"""PTQ4SAM's bimodal integration for ONNX INT8: make attention keys one-sided before their ranges are measured.

PTQ4SAM (Lv et al., CVPR 2024) observes that in SAM's mask decoder the activations after the key projection are
bimodal: some channels sit around a positive value, others around a negative one, so one per-tensor int8 range
must span both peaks and the gap between them. Since q·kᵀ sums q_c·k_c over channels, flipping the sign of channel
c in both the query and the key projection (weights and bias) leaves every attention score exactly as it was while
moving that key channel to the other side: with each flipped channel's sign chosen so its mean is positive, the
keys gather into one mode and the int8 range that covers them shrinks.

Here that is a rewrite of the float graph the quantizer works on (quant/ort_static.prepare_float): for every
MatMul of two computed operands whose operands come (through Reshape / Transpose) from a query and a key
projection of the same width (MatMul + bias Add, or Gemm, with constant weights), the signs are the key channels'
mean over the calibration inputs, kept beside the calibration ranges (the float twin of sensitivity analysis and
mixed precision apply the same signs). Attention that does not have this shape (a fused qkv projection) is left as
it is.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

SIGNS = "bimodal_signs.json"  # beside the INT8 artifact's calibration cache
PASS_THROUGH = ("Reshape", "Transpose")


@dataclass(frozen=True)
class Projection:
    weight: str  # initializer name
    bias: str | None
    out_axis: int  # the weight's axis that indexes output channels
    output: str  # the projection's output tensor (channels last)


@dataclass(frozen=True)
class Pair:
    scores: str  # the q·kᵀ MatMul node
    query: Projection
    key: Projection


def _projection(tensor: str, producer: dict, inits: dict, uses: dict) -> Projection | None:
    """The linear layer `tensor` is a reshaped / transposed view of, if it is one with constant weights and
    nothing else reads its output on the way (a flipped channel must reach the score product only)."""
    while tensor in producer and producer[tensor].op_type in PASS_THROUGH:
        if uses.get(tensor, 0) != 1:
            return None
        tensor = producer[tensor].input[0]
    if uses.get(tensor, 0) != 1:
        return None
    node = producer.get(tensor)
    if node is None:
        return None
    if node.op_type == "Gemm" and node.input[1] in inits:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        bias = node.input[2] if len(node.input) > 2 and node.input[2] in inits else None
        return Projection(node.input[1], bias, 0 if trans_b else 1, node.output[0])
    if node.op_type == "Add":
        bias = next((i for i in node.input if i in inits and len(inits[i].dims) == 1), None)
        other = next((i for i in node.input if i != bias), None)
        matmul = producer.get(other) if bias is not None else None
        if matmul is not None and matmul.op_type == "MatMul" and matmul.input[1] in inits \
                and len(inits[matmul.input[1]].dims) == 2:
            return Projection(matmul.input[1], bias, 1, node.output[0])
    return None


def _width(p: Projection, inits: dict) -> int:
    return int(inits[p.weight].dims[p.out_axis])


def query_key_pairs(model) -> list[Pair]:
    """Every attention score product of the graph fed by a query and a key projection of the same width."""
    inits = {t.name: t for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    for out in model.graph.output:
        uses[out.name] = uses.get(out.name, 0) + 1
    pairs = []
    for node in model.graph.node:
        if node.op_type != "MatMul" or any(i in inits for i in node.input[:2]):
            continue
        query, key = (_projection(i, producer, inits, uses) for i in node.input[:2])
        if query is None or key is None or query.weight == key.weight:
            continue
        params = [query.weight, key.weight] + [b for b in (query.bias, key.bias) if b is not None]
        if _width(query, inits) == _width(key, inits) and all(uses[n] == 1 for n in params):
            pairs.append(Pair(node.name, query, key))
    return pairs


def channel_signs(model, feeds: Iterable[dict[str, np.ndarray]]) -> dict[str, list[int]]:
    """{key projection output: per-channel sign of its mean over `feeds`} for every pair of `model`."""
    import onnx
    import onnxruntime as ort

    pairs = query_key_pairs(model)
    if not pairs:
        return {}
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    keys = sorted({p.key.output for p in pairs})
    for name in keys:
        copy.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(copy.SerializeToString(), options, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    sums: dict[str, np.ndarray] = {}
    for feed in feeds:
        values = session.run(keys, {k: feed[k] for k in inputs})
        for name, value in zip(keys, values):
            flat = value.reshape(-1, value.shape[-1]).astype(np.float64)
            sums[name] = sums.get(name, 0.0) + flat.sum(0)
    return {name: [(-1 if v < 0 else 1) for v in total] for name, total in sums.items()}


def apply_signs(model, signs: dict[str, list[int]]) -> int:
    """Flip, in place, the query and key channels whose key mean is negative; returns how many channels moved."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    flipped = 0
    for pair in query_key_pairs(model):  # each weight is read by one node only: no channel flips twice
        s = signs.get(pair.key.output)
        if s is None:
            continue
        sign = np.asarray(s, np.float32)
        flipped += int((sign < 0).sum())
        for proj in (pair.query, pair.key):
            w = numpy_helper.to_array(inits[proj.weight])
            shape = [1, 1]
            shape[proj.out_axis] = -1
            inits[proj.weight].CopyFrom(numpy_helper.from_array((w * sign.reshape(shape)).astype(w.dtype), proj.weight))
            if proj.bias is not None:
                b = numpy_helper.to_array(inits[proj.bias])
                inits[proj.bias].CopyFrom(numpy_helper.from_array((b * sign).astype(b.dtype), proj.bias))
    return flipped


def save_signs(signs: dict[str, list[int]], path: Path) -> None:
    path.write_text(json.dumps(signs))


def load_signs(path: Path) -> dict[str, list[int]]:
    return json.loads(path.read_text())
