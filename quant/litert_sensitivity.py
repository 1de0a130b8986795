"""Per-layer INT8 sensitivity of a LiteRT model made by ai-edge-quantizer: for every op it quantized (the
CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED ops of quant/litert_ops.py whose activation input is int8), the SQNR
of its output against the FP32 .tflite on real inputs,

- alone: the op applied to the FP32 model's exact input quantized with the INT8 model's own input scale, with the
  INT8 model's int8 weights and int32 bias, its output rounded to the INT8 model's output scale: the error the op
  itself adds. LiteRT cannot run one op of a graph, so this is computed in torch from the op's flatbuffer
  options (stride, padding, dilation, fused activation); the same computation on the FP32 weights must reproduce
  the FP32 model's own output on the first input (relative 1e-4), else the op is reported unmeasured rather than
  guessed. float32 is enough: its rounding (~1e-7) is far below an int8 error (SQNR 20-40 dB is 1e-2..1e-4).
- in graph: the INT8 model's own output of that op (every tensor kept), dequantized.

Both models are run with every intermediate tensor kept (as ai-edge-quantizer's calibration runs them). Names are
quant/litert_ops.py's (`CONV_2D:3`), shared by all signatures and by the mixed-precision recipe.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from edgekit.quant.litert_ops import ComputeOp, compute_ops, read
from edgekit.quant.sensitivity import NodeSensitivity, _db, rank

log = logging.getLogger(__name__)
FLOAT_CHECK = 1e-4  # the float twin's largest error, relative to the output's largest magnitude
ACTIVATIONS = {0: lambda y: y, 1: F.relu, 2: lambda y: y.clamp(-1, 1), 3: lambda y: y.clamp(0, 6)}


def _interpreter(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)


def _signature(interpreter, feeds: list[dict[str, np.ndarray]]) -> tuple[str, list[dict[str, np.ndarray]]]:
    """The signature every feed fits: a decoder's smallest prompt count holding all of them (padded), else the
    first whose input shapes are the feeds'."""
    from edgekit.errors import InputError
    from edgekit.formats.litert_session import SIGNATURE, pad_prompt

    names = list(interpreter.get_signature_list())
    counts = {int(m.group(1)): n for n in names if (m := SIGNATURE.match(n))}
    if not counts:
        for name in names:
            details = interpreter.get_signature_runner(name).get_input_details()
            if all(k in f and tuple(f[k].shape) == tuple(d["shape"]) for f in feeds for k, d in details.items()):
                return name, feeds
        raise InputError(f"no signature of this .tflite takes these inputs ({', '.join(names)})",
                         hint="measure with inputs of the shapes the model was converted for")
    need = max(f["point_coords"].shape[1] for f in feeds)
    count = min(c for c in counts if c >= need)
    padded = []
    for f in feeds:
        coords, labels = pad_prompt(f["point_coords"], f["point_labels"], count)
        padded.append({**f, "point_coords": coords, "point_labels": labels})
    return counts[count], padded


def _quantization(tensor) -> tuple[np.ndarray, np.ndarray, int] | None:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    zero = np.zeros(len(q.scale), np.int64) if q.zeroPoint is None else np.asarray(q.zeroPoint, np.int64)
    return np.asarray(q.scale, np.float64), zero, int(q.quantizedDimension)


def _dequantize(values: np.ndarray, params: tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    scale, zero, axis = params
    shape = [1] * values.ndim
    if len(scale) > 1:
        shape[axis] = len(scale)
    return (values.astype(np.float64) - zero.reshape(shape)) * scale.reshape(shape)


def _fake_quantize(values: np.ndarray, params: tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    """Per-tensor int8 rounding and clamping, back in float."""
    scale, zero = float(params[0][0]), int(params[1][0])
    q = np.clip(np.round(values / scale) + zero, -128, 127)
    return (q - zero) * scale


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def apply_op(op: ComputeOp, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
             out_shape: tuple) -> np.ndarray | None:
    """The op in float32 torch on NHWC / (…, in) activations and TFLite's weight layouts; None when its options
    are not ones this twin computes."""
    o = op.options
    act = ACTIVATIONS.get(int(getattr(o, "fusedActivationFunction", 0)))
    if act is None:
        return None
    xt, wt = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(w, np.float32))
    bt = None if b is None else torch.from_numpy(np.asarray(b, np.float32))
    if op.op == "FULLY_CONNECTED":
        y = xt.reshape(-1, wt.shape[1]) @ wt.T
        if bt is not None:
            y = y + bt
        return act(y).reshape(out_shape).numpy()
    xt = xt.permute(0, 3, 1, 2)
    if op.op == "CONV_2D":  # weights (O, kh, kw, I)
        wt = wt.permute(0, 3, 1, 2)
        groups = xt.shape[1] // wt.shape[1]
    else:  # DEPTHWISE_CONV_2D: weights (1, kh, kw, C·multiplier)
        wt = wt.permute(3, 0, 1, 2)
        groups = xt.shape[1]
    stride = (int(o.strideH), int(o.strideW))
    dilation = (int(o.dilationHFactor), int(o.dilationWFactor))
    if int(o.padding) == 0:  # SAME
        top, bottom = _same_pads(xt.shape[2], wt.shape[2], stride[0], dilation[0])
        left, right = _same_pads(xt.shape[3], wt.shape[3], stride[1], dilation[1])
        xt = F.pad(xt, (left, right, top, bottom))
    y = F.conv2d(xt, wt, bt, stride=stride, dilation=dilation, groups=groups)
    return act(y).permute(0, 2, 3, 1).reshape(out_shape).numpy()


def _close(got: np.ndarray | None, ref: np.ndarray) -> bool:
    if got is None or got.shape != ref.shape:
        return False
    worst = float(np.max(np.abs(got.astype(np.float64) - ref)))
    return worst <= FLOAT_CHECK * max(float(np.max(np.abs(ref))), 1e-12)


def measure(fp32_path: Path, int8_path: Path, feeds: Iterable[dict[str, np.ndarray]],
            layer_map=None) -> list[NodeSensitivity]:
    """Sensitivity of every op `int8_path` quantized, most sensitive (lowest alone SQNR) first; `feeds` are the
    models' inputs by signature input name (a decoder's are padded to one signature)."""
    from ai_edge_quantizer.utils.tfl_interpreter_utils import get_signature_main_subgraph_index

    feeds = list(feeds)
    f_model, q_model = read(fp32_path), read(int8_path)
    f_run, q_run = _interpreter(fp32_path), _interpreter(int8_path)
    signature, feeds = _signature(f_run, feeds)
    f_sg = get_signature_main_subgraph_index(f_run, signature)
    q_sg = get_signature_main_subgraph_index(q_run, signature)
    f_ops = {o.output_name: o for o in compute_ops(f_model, f_sg)}
    q_tensors = q_model.subgraphs[q_sg].tensors
    chosen: list[tuple[ComputeOp, ComputeOp]] = []
    for q_op in compute_ops(q_model, q_sg):
        f_op = f_ops.get(q_op.output_name)
        if f_op is not None and _quantization(q_tensors[q_op.inputs[0]]) is not None:
            chosen.append((q_op, f_op))
    sums = {f.key: [0.0, 0.0, 0.0] for _, f in chosen}  # signal, noise alone, noise in graph
    unmeasured: set[str] = set()
    checked: set[str] = set()
    f_runner, q_runner = f_run.get_signature_runner(signature), q_run.get_signature_runner(signature)
    for feed in feeds:
        inputs = {k: np.asarray(feed[k], np.float32) for k in f_runner.get_input_details()}
        f_runner(**inputs)
        q_runner(**inputs)
        for q_op, f_op in chosen:
            ref = f_run.get_tensor(f_op.output, f_sg).astype(np.float64)
            x = f_run.get_tensor(f_op.inputs[0], f_sg)
            if f_op.key not in checked:
                checked.add(f_op.key)
                has_bias = len(f_op.inputs) > 2 and f_op.inputs[2] >= 0
                f_bias = f_run.get_tensor(f_op.inputs[2], f_sg) if has_bias else None
                if not _close(apply_op(f_op, x, f_run.get_tensor(f_op.inputs[1], f_sg), f_bias, ref.shape), ref):
                    unmeasured.add(f_op.key)
            q_out = _quantization(q_tensors[q_op.output])
            got = q_run.get_tensor(q_op.output, q_sg)
            got = _dequantize(got, q_out) if q_out is not None else got.astype(np.float64)
            s = sums[f_op.key]
            s[0] += float(np.sum(ref ** 2))
            s[2] += float(np.sum((ref - got) ** 2))
            if f_op.key in unmeasured:
                continue
            w = _dequantize(q_run.get_tensor(q_op.inputs[1], q_sg), _quantization(q_tensors[q_op.inputs[1]]))
            b = None
            if len(q_op.inputs) > 2 and q_op.inputs[2] >= 0:
                raw = q_run.get_tensor(q_op.inputs[2], q_sg)
                params = _quantization(q_tensors[q_op.inputs[2]])
                b = _dequantize(raw, params) if params is not None else raw.astype(np.float64)
            xq = _fake_quantize(x.astype(np.float64), _quantization(q_tensors[q_op.inputs[0]]))
            alone = apply_op(q_op, xq, w, b, ref.shape)
            if q_out is not None:
                alone = _fake_quantize(alone, q_out)
            s[1] += float(np.sum((ref - alone) ** 2))
    if unmeasured:
        log.warning("%d LiteRT op(s) could not be measured alone (their float twin did not reproduce the FP32 model: "
                    "%s); they rank last", len(unmeasured), ", ".join(sorted(unmeasured)))
    result = []
    for q_op, f_op in chosen:
        signal, alone, in_graph = sums[f_op.key]
        module = None if layer_map is None else layer_map.tensors.get(q_op.output_name)
        result.append(NodeSensitivity(f_op.key, f_op.op, None if f_op.key in unmeasured else _db(signal, alone),
                                      _db(signal, in_graph), module))
    return rank(result)
