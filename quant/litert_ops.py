"""The ops of a .tflite that static INT8 quantizes, named so that every signature and every precision agrees.

ai-edge-quantizer's static recipe (quant/litert_quant.py) quantizes CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED.
A decoder has one signature per prompt count, each its own subgraph whose tensor names differ (litert-torch numbers
fused locations per subgraph), so an op is named by its kind and its place among these ops in graph order:
`FULLY_CONNECTED:12`. The k-th such op of every signature shares its weight buffer with the others (checked here,
never assumed), and the quantizer keeps the ops' order and output names, so one name means one layer in the FP32
model, its INT8 model and all their signatures. The quantizer's recipe selects ops by a regex on their scope (the
output tensor names joined by ';'), which `float_scopes` builds from these names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from edgekit.errors import ValidationError

QUANTIZED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@dataclass
class ComputeOp:
    key: str  # "<OP>:<k>": the k-th quantizable op of its subgraph
    op: str
    index: int  # operator index in the subgraph
    inputs: list[int]  # tensor indices (-1: absent, e.g. no bias)
    output: int
    output_name: str
    scope: str  # what the quantizer's recipe regexes are matched against
    weight_buffer: int
    options: Any  # the flatbuffer's builtin options (stride, padding, fused activation)


def read(path: Path):
    """The flatbuffer model (ai-edge-quantizer's reader: the object API of LiteRT's schema)."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils

    return tfl_flatbuffer_utils.read_model(str(path))


def compute_ops(model, subgraph: int) -> list[ComputeOp]:
    """The quantizable ops of one subgraph in graph order."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fu

    codes = [fu.TFL_OP_CODE_TO_NAME.get(c.builtinCode) for c in model.operatorCodes]
    graph = model.subgraphs[subgraph]
    out: list[ComputeOp] = []
    for index, op in enumerate(graph.operators):
        kind = codes[op.opcodeIndex]
        name = getattr(kind, "value", None)
        if name not in QUANTIZED_OPS:
            continue
        inputs = [int(i) for i in op.inputs]
        output = int(op.outputs[0])
        out.append(ComputeOp(key=f"{name}:{len(out)}", op=name, index=index, inputs=inputs, output=output,
                             output_name=fu.get_tensor_name(graph.tensors[output]),
                             scope=fu.get_op_scope(op, graph.tensors),
                             weight_buffer=int(graph.tensors[inputs[1]].buffer), options=op.builtinOptions))
    return out


def aligned_ops(model) -> list[list[ComputeOp]]:
    """compute_ops of every subgraph, checked to be the same layers in the same order (shared weight buffers)."""
    per_graph = [compute_ops(model, s) for s in range(len(model.subgraphs))]
    first = per_graph[0]
    for s, ops in enumerate(per_graph[1:], 1):
        if [(o.op, o.weight_buffer) for o in ops] != [(o.op, o.weight_buffer) for o in first]:
            raise ValidationError(f"the signatures of this .tflite do not hold the same quantizable layers (subgraph "
                                  f"{s} differs from subgraph 0), so a layer cannot be kept in float in all of them",
                                  hint="re-export the FP32 artifact with this edgekit (litert-torch shares weights)")
    return per_graph


def float_scopes(model, keys: Sequence[str]) -> list[str]:
    """Anchored regexes of the scopes of the ops named `keys`, in every subgraph."""
    wanted = set(keys)
    per_graph = aligned_ops(model)
    known = {o.key for o in per_graph[0]}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValidationError(f"no quantizable op {', '.join(unknown)} in this .tflite",
                              hint="the layer names come from this model's sensitivity ranking: measure it again")
    return [f"^{re.escape(o.scope)}$" for ops in per_graph for o in ops if o.key in wanted]


def float_keys(model) -> list[set[str]]:
    """Per subgraph, the quantizable ops that compute in float (their activation input is not an integer type)."""
    from ai_edge_litert import schema_py_generated as schema

    out = []
    for s, ops in enumerate(aligned_ops(model)):
        tensors = model.subgraphs[s].tensors
        out.append({o.key for o in ops if tensors[o.inputs[0]].type == schema.TensorType.FLOAT32})
    return out
