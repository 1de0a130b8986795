"""Tiny real .tflite models for the LiteRT tests, written with the flatbuffer object API that the ai-edge-litert
wheel ships (ai_edge_litert/schema_py_generated.py), each with a numpy reference of what it computes.

Test tooling, not product: the graphs are small enough to check by hand, and built from known weights so a test
can compare the runtime's outputs with numpy numerically (not just "it ran").

- `write_fp32_model`: image (1,4,4,3) -> CONV_2D (2 filters, 3x3, VALID) -> ADD offset (1,2,2,2) -> SOFTMAX, two
  named float32 inputs (so inputs.npz is matched by name, not order).
- `write_int8_model`: static-INT8 FULLY_CONNECTED with int8 input and output (the I/O of a fully quantized model),
  per-tensor scales and zero points, an int32 bias.
- `write_mixed_model`: image -> CONV_2D -> CUMSUM (last axis) -> SOFTMAX: XNNPACK has no CUMSUM, so the graph
  runs as two delegated partitions around one builtin kernel (the partly delegated case of the op profiler).
- `write_torch_model`: a small torch module (conv, LayerNorm, multi-head attention, linear) converted with
  litert-torch, about 5-10 ms per run on one x86 core: real converter output with module paths in its tensor names.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Known weights, fixed here (not random) so a failure is reproducible by reading this file.
CONV_W = (np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) % 7 - 3.0) / 10.0  # OHWI
CONV_B = np.array([0.25, -0.5], dtype=np.float32)

FC_IN = (0.05, -3)  # (scale, zero point) of the int8 input
FC_W_SCALE = 0.02
FC_W = ((np.arange(4 * 8).reshape(4, 8) * 37) % 41 - 20).astype(np.int8)  # (out, in), symmetric: zero point 0
FC_B = np.array([100, -250, 0, 731], dtype=np.int32)  # in units of in_scale * w_scale
FC_OUT = (0.1, 5)


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:  # the callers skip on this; the message says which extra brings it
        raise ImportError("ai_edge_litert is not installed: pip install -c constraints.txt -e '.[litert]'") from exc
    return schema


class _Graph:
    """One subgraph being assembled: tensors, constant buffers (buffer 0 is the empty sentinel) and operators."""

    def __init__(self, schema) -> None:
        self.s = schema
        self.tensors: list = []
        self.buffers = [schema.BufferT()]
        self.operators: list = []
        self.codes: list[tuple[int, int]] = []  # (builtin code, op version)

    def tensor(self, name: str, shape: tuple[int, ...], ttype: int, data: np.ndarray | None = None,
               quant: tuple[list[float], list[int]] | None = None) -> int:
        t = self.s.TensorT()
        t.name, t.shape, t.type = name, list(shape), ttype
        if data is not None:
            buf = self.s.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if quant is not None:
            q = self.s.QuantizationParametersT()
            q.scale, q.zeroPoint = list(quant[0]), list(quant[1])
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code: int, version: int, inputs: list[int], outputs: list[int], options_type: int, options) -> None:
        if (code, version) not in self.codes:
            self.codes.append((code, version))
        o = self.s.OperatorT()
        o.opcodeIndex = self.codes.index((code, version))
        o.inputs, o.outputs = inputs, outputs
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.operators.append(o)

    def write(self, path: Path, inputs: list[int], outputs: list[int]) -> Path:
        import flatbuffers

        s = self.s
        sub = s.SubGraphT()
        sub.tensors, sub.operators, sub.inputs, sub.outputs, sub.name = self.tensors, self.operators, inputs, outputs, "main"
        model = s.ModelT()
        model.version, model.description, model.subgraphs, model.buffers = 3, "edgekit test model", [sub], self.buffers
        model.operatorCodes = []
        for code, version in self.codes:
            oc = s.OperatorCodeT()
            # Codes below 127 also go in the deprecated int8 field, which older runtimes read.
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), version
            model.operatorCodes.append(oc)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        path.write_bytes(bytes(builder.Output()))
        return path


def write_fp32_model(path: Path) -> Path:
    s = _schema()
    g = _Graph(s)
    op, opt, f32 = s.BuiltinOperator, s.BuiltinOptions, s.TensorType.FLOAT32
    image = g.tensor("image", (1, 4, 4, 3), f32)
    offset = g.tensor("offset", (1, 2, 2, 2), f32)
    weights = g.tensor("conv/w", CONV_W.shape, f32, CONV_W)
    bias = g.tensor("conv/b", CONV_B.shape, f32, CONV_B)
    conv = g.tensor("conv", (1, 2, 2, 2), f32)
    added = g.tensor("add", (1, 2, 2, 2), f32)
    probs = g.tensor("probs", (1, 2, 2, 2), f32)
    conv_opt = s.Conv2DOptionsT()
    conv_opt.padding, conv_opt.strideH, conv_opt.strideW = s.Padding.VALID, 1, 1
    conv_opt.dilationHFactor = conv_opt.dilationWFactor = 1
    g.op(op.CONV_2D, 1, [image, weights, bias], [conv], opt.Conv2DOptions, conv_opt)
    g.op(op.ADD, 1, [conv, offset], [added], opt.AddOptions, s.AddOptionsT())
    softmax = s.SoftmaxOptionsT()
    softmax.beta = 1.0
    g.op(op.SOFTMAX, 1, [added], [probs], opt.SoftmaxOptions, softmax)
    return g.write(path, [image, offset], [probs])


def fp32_reference(image: np.ndarray, offset: np.ndarray, softmax: bool = True) -> np.ndarray:
    """What write_fp32_model's graph computes, in float64 numpy (softmax=False: the sum before the softmax)."""
    x = image.astype(np.float64)
    conv = np.zeros((1, 2, 2, 2))
    for i in range(2):
        for j in range(2):
            patch = x[0, i:i + 3, j:j + 3, :]
            conv[0, i, j] = np.tensordot(CONV_W.astype(np.float64), patch, axes=([1, 2, 3], [0, 1, 2])) + CONV_B
    z = conv + offset
    if not softmax:
        return z
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def write_int8_model(path: Path) -> Path:
    s = _schema()
    g = _Graph(s)
    op, opt, i8, i32 = s.BuiltinOperator, s.BuiltinOptions, s.TensorType.INT8, s.TensorType.INT32
    x = g.tensor("x", (1, 8), i8, quant=([FC_IN[0]], [FC_IN[1]]))
    w = g.tensor("fc/w", FC_W.shape, i8, FC_W, quant=([FC_W_SCALE], [0]))
    b = g.tensor("fc/b", FC_B.shape, i32, FC_B, quant=([FC_IN[0] * FC_W_SCALE], [0]))
    y = g.tensor("y", (1, 4), i8, quant=([FC_OUT[0]], [FC_OUT[1]]))
    # FULLY_CONNECTED version 4 is the int8 kernel (version 1 is float only).
    g.op(op.FULLY_CONNECTED, 4, [x, w, b], [y], opt.FullyConnectedOptions, s.FullyConnectedOptionsT())
    return g.write(path, [x], [y])


def write_mixed_model(path: Path) -> Path:
    s = _schema()
    g = _Graph(s)
    op, opt, f32 = s.BuiltinOperator, s.BuiltinOptions, s.TensorType.FLOAT32
    image = g.tensor("image", (1, 4, 4, 3), f32)
    weights = g.tensor("conv/w", CONV_W.shape, f32, CONV_W)
    bias = g.tensor("conv/b", CONV_B.shape, f32, CONV_B)
    axis = g.tensor("cumsum/axis", (), s.TensorType.INT32, np.array(3, dtype=np.int32))
    conv = g.tensor("conv", (1, 2, 2, 2), f32)
    summed = g.tensor("cumsum", (1, 2, 2, 2), f32)
    probs = g.tensor("probs", (1, 2, 2, 2), f32)
    conv_opt = s.Conv2DOptionsT()
    conv_opt.padding, conv_opt.strideH, conv_opt.strideW = s.Padding.VALID, 1, 1
    conv_opt.dilationHFactor = conv_opt.dilationWFactor = 1
    g.op(op.CONV_2D, 1, [image, weights, bias], [conv], opt.Conv2DOptions, conv_opt)
    g.op(op.CUMSUM, 1, [conv, axis], [summed], opt.CumsumOptions, s.CumsumOptionsT())
    softmax = s.SoftmaxOptionsT()
    softmax.beta = 1.0
    g.op(op.SOFTMAX, 1, [summed], [probs], opt.SoftmaxOptions, softmax)
    return g.write(path, [image], [probs])


def mixed_reference(image: np.ndarray) -> np.ndarray:
    """What write_mixed_model's graph computes, in float64 numpy."""
    z = np.cumsum(fp32_reference(image, np.zeros((1, 2, 2, 2)), softmax=False), axis=-1)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def torch_module(channels: int = 64):
    """The small torch module of write_torch_model (seeded weights), in eval mode."""
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, channels, 3, stride=2, padding=1)  # padding: a PAD node XNNPACK fuses
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
            self.norm = nn.LayerNorm(channels)
            self.attn = nn.MultiheadAttention(channels, 4, batch_first=True)
            self.head = nn.Linear(channels, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
            tokens = x.flatten(2).transpose(1, 2)
            normed = self.norm(tokens)
            attended, _ = self.attn(normed, normed, normed, need_weights=False)
            return self.head((tokens + attended).mean(dim=1))

    torch.manual_seed(0)
    return Tiny().eval()


def write_torch_model(path: Path, size: int = 56, channels: int = 64) -> tuple[Path, np.ndarray, np.ndarray]:
    """(path, input, torch's output) for torch_module() converted by litert-torch; ImportError when litert_torch
    is not installed. size=56: 784 tokens, ~7 ms per run on one x86 core."""
    import litert_torch
    import torch

    module = torch_module(channels)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))  # conv1 has stride 2: (size/2)^2 tokens
    litert_torch.convert(module, (x,)).export(str(path))
    with torch.no_grad():
        y = module(x).numpy()
    return path, x.numpy(), y


def write_torch_int8_model(path: Path, size: int = 32, channels: int = 32) -> tuple[Path, np.ndarray]:
    """(path, float input) for torch_module() statically quantized to INT8 (PT2E, per-channel symmetric weights)
    and converted by litert-torch: int8 I/O, QUANTIZE/DEQUANTIZE around the ops left in float."""
    import litert_torch
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    module = torch_module(channels)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    prepared = prepare_pt2e(torch.export.export(module, (x,)).module(), quantizer)
    with torch.no_grad():
        for seed in range(4):  # calibration
            prepared(torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed + 2)))
    converted = convert_pt2e(prepared, fold_quantize=False)
    litert_torch.convert(converted, (x,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))
    return path, x.numpy()


def int8_reference(x: np.ndarray) -> np.ndarray:
    """write_int8_model's output for int8 input `x`, requantized with round-half-away (TFLite rounds so; its
    fixed-point multiplier may still land one step off on exact ties, so tests allow one step)."""
    acc = (x.astype(np.int64) - FC_IN[1]) @ FC_W.astype(np.int64).T + FC_B
    real = acc * (FC_IN[0] * FC_W_SCALE) / FC_OUT[0]
    q = np.sign(real) * np.floor(np.abs(real) + 0.5) + FC_OUT[1]
    return np.clip(q, -128, 127).astype(np.int8)
