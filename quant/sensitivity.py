"""Per-layer INT8 sensitivity of an ONNX QDQ model: for every quantized node, the SQNR of its output against the
float model on real inputs,

- alone: only that node quantized (its inputs are the float model's exact values, passed through its own
  Quantize/Dequantize pairs and its int8 weights): the error the node itself adds;
- in graph: in the fully quantized model, where the error of everything before it has accumulated.

The float model is the graph the quantizer started from (quant/ort_static.prepare_float, rebuilt from the FP32
artifact), so tensors have the same names in both; a node whose tensors are not there is skipped, not guessed.
A layer with a low *alone* SQNR is where INT8 loses accuracy; mixed precision keeps those in float first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

COMPUTE_OPS = ("Conv", "MatMul", "Gemm")


@dataclass
class NodeSensitivity:
    node: str
    op: str
    alone_db: float | None  # None: identical outputs (no error), or not measurable
    in_graph_db: float | None
    module: str | None = None

    def to_dict(self) -> dict:
        return {"node": self.node, "op": self.op, "module": self.module,
                "alone_sqnr_db": _round(self.alone_db), "in_graph_sqnr_db": _round(self.in_graph_db)}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def _db(signal: float, noise: float) -> float | None:
    if noise <= 0:
        return None
    return 10 * math.log10(max(signal, 1e-30) / noise)


def quantized_nodes(model) -> list:
    """Compute nodes (Conv, MatMul, Gemm) with an activation input that goes through QuantizeLinear ->
    DequantizeLinear: what static INT8 actually quantized."""
    producer = {o: n for n in model.graph.node for o in n.output}
    out = []
    for node in model.graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        for name in node.input:
            dq = producer.get(name)
            if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in producer \
                    and producer[dq.input[0]].op_type == "QuantizeLinear":
                out.append(node)
                break
    return out


def _with_outputs(model, names: Iterable[str]):
    """A copy of `model` that also outputs the named tensors (type only: ONNX Runtime infers shapes)."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    have = {o.name for o in copy.graph.output}
    for name in names:
        if name not in have:
            copy.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
            have.add(name)
    return copy


def _session(model):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # the float twin must compute what the quantizer saw: no fusions that rename or drop the tensors asked for
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _isolated(qdq, node):
    """A model of `node` alone with its Quantize/Dequantize inputs and int8 weights; its graph inputs are the
    float tensors the node's activations were quantized from."""
    import onnx

    producer = {o: n for n in qdq.graph.node for o in n.output}
    inits = {i.name: i for i in qdq.graph.initializer}
    nodes, initializers, inputs = [], {}, []

    def need(name: str) -> None:
        if name in inits:
            initializers[name] = inits[name]
        elif name and name not in [i.name for i in inputs]:
            inputs.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))

    for name in node.input:
        dq = producer.get(name)
        if dq is not None and dq.op_type == "DequantizeLinear":
            q = producer.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                nodes.append(q)
                for n in q.input:
                    need(n)
            nodes.append(dq)
            for n in dq.input[1:]:
                need(n)
            if q is None:
                need(dq.input[0])
        elif name:
            need(name)
    nodes.append(node)
    graph = onnx.helper.make_graph(nodes, "isolated", inputs,
                                   [onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)],
                                   list(initializers.values()))
    model = onnx.helper.make_model(graph, opset_imports=qdq.opset_import)
    model.ir_version = qdq.ir_version
    return model, [i.name for i in inputs]


def _float_name(qdq, tensor: str, float_names: set[str]) -> str | None:
    """The float model's name of a node output of the QDQ model. Where the quantizer put a Quantize/Dequantize
    pair on a graph output, the node writes a new tensor and the pair restores the original name after it."""
    if tensor in float_names:
        return tensor
    consumers = [n for n in qdq.graph.node if tensor in n.input]
    if len(consumers) == 1 and consumers[0].op_type == "QuantizeLinear":
        dq = [n for n in qdq.graph.node if consumers[0].output[0] in n.input]
        if len(dq) == 1 and dq[0].op_type == "DequantizeLinear" and dq[0].output[0] in float_names:
            return dq[0].output[0]
    return None


def measure(float_model_path: Path, qdq_model_path: Path, feeds: Iterable[dict[str, np.ndarray]],
            layer_map=None) -> list[NodeSensitivity]:
    """Sensitivity of every quantized node of `qdq_model_path` on `feeds`, most sensitive (lowest alone SQNR)
    first. Both models are loaded with their weights; feeds are float model inputs by name."""
    import onnx

    float_model = onnx.load(str(float_model_path))
    qdq = onnx.load(str(qdq_model_path))
    targets = quantized_nodes(qdq)
    float_names = {o for n in float_model.graph.node for o in n.output} | {i.name for i in float_model.graph.input}
    isolated, ref_name = {}, {}
    for node in targets:
        model, inputs = _isolated(qdq, node)
        name = _float_name(qdq, node.output[0], float_names)
        if name is not None and all(n in float_names for n in inputs):
            isolated[node.name] = (node, model, inputs)
            ref_name[node.name] = name
    wanted = sorted({n for _, _, ins in isolated.values() for n in ins} | set(ref_name.values()))
    float_session = _session(_with_outputs(float_model, wanted))
    qdq_session = _session(_with_outputs(qdq, [nd.output[0] for nd, _, _ in isolated.values()]))
    node_sessions = {name: (_session(model), inputs) for name, (_, model, inputs) in isolated.items()}
    sums = {name: [0.0, 0.0, 0.0] for name in isolated}  # signal, noise alone, noise in graph
    float_inputs = [i.name for i in float_model.graph.input]
    qdq_inputs = [i.name for i in qdq.graph.input]
    for feed in feeds:
        ref = dict(zip([o.name for o in float_session.get_outputs()],
                       float_session.run(None, {k: feed[k] for k in float_inputs})))
        got = dict(zip([o.name for o in qdq_session.get_outputs()],
                       qdq_session.run(None, {k: feed[k] for k in qdq_inputs})))
        for name, (node, _, _) in isolated.items():
            session, inputs = node_sessions[name]
            alone = session.run(None, {n: ref[n] for n in inputs})[0]
            r = ref[ref_name[name]].astype(np.float64)
            sums[name][0] += float(np.sum(r ** 2))
            sums[name][1] += float(np.sum((r - alone) ** 2))
            sums[name][2] += float(np.sum((r - got[node.output[0]]) ** 2))
        del ref, got
    result = []
    for name, (node, _, _) in isolated.items():
        s, alone, in_graph = sums[name]
        module = None
        if layer_map is not None:
            module = layer_map.nodes.get(name) or layer_map.tensors.get(node.output[0])
        result.append(NodeSensitivity(name, node.op_type, _db(s, alone), _db(s, in_graph), module))
    return rank(result)


def rank(nodes: list[NodeSensitivity]) -> list[NodeSensitivity]:
    """Most sensitive first: lowest alone SQNR (an error-free node, None, last), ties by in-graph SQNR."""
    return sorted(nodes, key=lambda n: (math.inf if n.alone_db is None else n.alone_db,
                                        math.inf if n.in_graph_db is None else n.in_graph_db))
