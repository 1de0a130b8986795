"""torch module -> Core ML ML Program (.mlpackage) with coremltools, and its layer map.

- Traced with torch.jit.trace and converted by coremltools' TorchScript frontend: that frontend records, for each
  MIL op, the chain of module names that produced it (`ScopeSource.TORCHSCRIPT_MODULE_NAME`), which gives the
  layer map (MIL op output name -> module path). The torch.export frontend names ops after FX nodes instead and
  loses a third of them to renaming (measured on MobileSAM: 304 of 432 ops matched), so it is not used.
- Deployment target iOS 17 / macOS 14 for encoders (MIN_TARGET): the first with int8 activation quantization
  (`quantize` / `dequantize`) and per-channel int8 weights as `constexpr_affine_dequantize`, and MLComputePlan
  (the per-op device report) needs macOS 14.4 anyway.
- The decoder's prompt length is an `EnumeratedShapes` dimension of both `point_coords` and `point_labels`
  (POINT_COUNTS, default the smallest): the Neural Engine only runs a RangeDim model at its default shape, while
  each enumerated shape is compiled for it. Two enumerated inputs need iOS 18 / macOS 15 (coremltools refuses
  them below), so decoders target that (DECODER_TARGET).
- Inputs and outputs are float32 (what an app's MLMultiArray and numpy hold); the fp16 casts are inside.
- Image preprocessing stays outside the model (the app resizes, normalizes, pads); it is written into the
  package's user metadata (`edgekit.preprocess`), with the inputs' and outputs' names.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from edgekit.exporters.layer_map import TOP_LEVEL, LayerMap

POINT_COUNTS = (2, 4, 8, 16)  # decoder prompt lengths compiled in: 1 point + pad or a box; up to 16 points
MIN_TARGET = "iOS17"  # also macOS 14: see the module docstring
DECODER_TARGET = "iOS18"  # also macOS 15: two inputs with enumerated prompt lengths


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """coremltools logs a torch-version warning and draws progress bars on stderr for every conversion; the
    pipeline shows its own progress, so both are dropped (errors still raise)."""
    loggers = [logging.getLogger(n) for n in ("coremltools", "coremltools.converters")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def import_coremltools():
    with quiet():
        import coremltools

    return coremltools


@dataclass
class Converted:
    model: Any  # coremltools.models.MLModel
    layer_map: LayerMap
    seconds: float
    coremltools: str


class QDQ(nn.Module):
    """Quantize-dequantize the input of `inner` to int8 (symmetric, per tensor, calibrated scale): traced as
    quantize_per_tensor + dequantize, which coremltools turns into MIL `quantize` / `dequantize` (W8A8)."""

    def __init__(self, inner: nn.Module, scale: float) -> None:
        super().__init__()
        self.inner = inner
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.dequantize(torch.quantize_per_tensor(x, self.scale, 0, torch.qint8)))


def _find(module: nn.Module, name: str, kind: str | None, depth: int = 3) -> list[str] | None:
    """The shortest attribute chain below `module` that ends in a child called `name` of class `kind` (when
    known), breadth first."""
    frontier: list[tuple[list[str], nn.Module]] = [([], module)]
    for _ in range(depth):
        nxt = []
        for chain, m in frontier:
            children = dict(m.named_children())
            if name in children and (kind is None or type(children[name]).__name__ == kind):
                return chain + [name]
            nxt += [(chain + [c], child) for c, child in children.items()]
        frontier = nxt
    return None


def _resolve(root: nn.Module, names: Sequence[str], kinds: Sequence[str] = ()) -> str:
    """TorchScript scope names -> a module path under `root`. TorchScript leaves some modules out of the chain:
    module lists (`image_encoder`, `0`, `0`, `conv1` for image_encoder.layers.0.blocks.0.conv1) and the wrapper's
    `model`, so each name is the shortest descendant of the previous module with that attribute name. The chain
    ends with the traced value's own name, which matches nothing; QDQ wrappers (`inner`) are left out. `kinds`,
    the scopes' class names (one per name), tell apart two children with the same name."""
    path: list[str] = []
    module = root
    kinds = list(kinds) if len(kinds) == len(names) else []
    for i, name in enumerate(names):
        chain = _find(module, name, kinds[i] if i < len(kinds) else None)
        if chain is None:
            break
        for step in chain:
            module = getattr(module, step) if not step.isdigit() else module[int(step)]  # type: ignore[index]
            path.append(step)
    return ".".join(p for p in path if p != "inner")


def layer_map_from_program(program: Any, root: nn.Module, prefix: str = "model.") -> LayerMap:
    """MIL op output names -> module paths, from the TorchScript scopes the converter kept on each op. `root` is
    the traced wrapper (EncoderGraph / DecoderGraph, whose variant is `.model`: that prefix is stripped)."""
    from coremltools.converters.mil.mil.scope import ScopeSource

    nodes: dict[str, str] = {}
    for op in program.functions["main"].operations:
        if op.op_type == "const":
            continue
        names = op.scopes.get(ScopeSource.TORCHSCRIPT_MODULE_NAME) or []
        kinds = op.scopes.get(ScopeSource.TORCHSCRIPT_MODULE_TYPE) or []
        path = _resolve(root, names, kinds)
        path = path[len(prefix):] if path.startswith(prefix) else ("" if path == prefix.rstrip(".") else path)
        for out in op.outputs:
            nodes[out.name] = path or TOP_LEVEL
    return LayerMap(nodes=dict(nodes), tensors=dict(nodes))


def tensor_type(ct: Any, name: str, shape: Sequence[int], point_axis: int | None):
    """A named input; the prompt inputs get an enumerated point axis."""
    if point_axis is None:
        return ct.TensorType(name=name, shape=tuple(shape), dtype=np.float32)
    shapes = []
    for n in POINT_COUNTS:
        s = list(shape)
        s[point_axis] = n
        shapes.append(s)
    default = list(shape)
    default[point_axis] = POINT_COUNTS[0]
    return ct.TensorType(name=name, shape=ct.EnumeratedShapes(shapes=shapes, default=default), dtype=np.float32)


def convert(wrapper: nn.Module, example: Sequence[torch.Tensor], input_names: Sequence[str],
            output_names: Sequence[str], precision: str, point_inputs: Sequence[str] = (),
            metadata: dict[str, Any] | None = None) -> Converted:
    """Trace `wrapper` on `example`, convert to an ML Program at `precision` ("fp16" | "fp32")."""
    ct = import_coremltools()
    from edgekit.exporters.coreml_ops import register

    register()  # converters coremltools lacks (bicubic resize)
    started = time.perf_counter()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about shape arithmetic the enumerated shapes cover
            traced = torch.jit.trace(wrapper, tuple(example), check_trace=False)
    except (TypeError, RuntimeError, ValueError) as exc:  # code TorchScript tracing cannot follow
        from edgekit.errors import ValidationError

        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValidationError(f"torch.jit.trace (what coremltools converts from) fails on this graph: {first}",
                              hint="use --format onnx or litert for this variant") from exc
    inputs = [tensor_type(ct, name, t.shape, 1 if name in point_inputs else None)
              for name, t in zip(input_names, example)]
    compute = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
    try:
        with quiet():
            model = ct.convert(traced, inputs=inputs,
                               outputs=[ct.TensorType(name=n, dtype=np.float32) for n in output_names],
                               convert_to="mlprogram",
                               minimum_deployment_target=getattr(ct.target, DECODER_TARGET if point_inputs else MIN_TARGET),
                               compute_precision=compute)
    except (NotImplementedError, ValueError, RuntimeError, TypeError, AssertionError) as exc:
        # coremltools' own refusal (an op it has no converter for, a shape it cannot handle): one line, named
        from edgekit.errors import ValidationError

        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValidationError(f"coremltools {ct.__version__} cannot convert this graph: {first}",
                              hint="use --format onnx or litert for this variant; `edgekit models` lists what "
                                   "converts where") from exc
    layer_map = layer_map_from_program(model._mil_program, wrapper)
    for key, value in (metadata or {}).items():
        model.user_defined_metadata[key] = value if isinstance(value, str) else json.dumps(value)
    return Converted(model, layer_map, time.perf_counter() - started, ct.__version__)
