"""What can be checked of a Core ML package on a machine that cannot run it (Linux): its MIL program.

Core ML predicts only on macOS, so on Linux a package is checked by reading it back (the saved package, not the
converter's in-memory program): the ops and their count, the dtypes ops compute in, the inputs' and outputs'
shapes (enumerated shapes included), the weights by dtype with their size, and for compressed weights that they
dequantize back to the source package's values within their quantization step. The op list is also compared with
the ops the Neural Engine is known to run, which gives the report's warning list; the Mac's MLComputePlan (the
mac target) is what says where each op really ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# MIL ops the Neural Engine is known to run (fp16), from Apple's published guidance (coremltools' op and
# optimization guides, "Deploying Transformers on the Apple Neural Engine") and public MLComputePlan dumps. An op
# not listed is not known to fail there: it is named so the user looks at the Mac's compute plan for it.
ANE_OPS = frozenset({
    "conv", "conv_transpose", "linear", "matmul", "einsum", "add", "sub", "mul", "real_div", "maximum", "minimum",
    "relu", "relu6", "leaky_relu", "sigmoid", "sigmoid_hard", "tanh", "silu", "gelu", "softmax", "softplus",
    "layer_norm", "batch_norm", "instance_norm", "l2_norm", "reshape", "transpose", "concat", "split",
    "slice_by_index", "slice_by_size", "pad", "avg_pool", "max_pool", "upsample_nearest_neighbor",
    "upsample_bilinear", "resize_bilinear", "reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "clip",
    "expand_dims", "squeeze", "tile", "sqrt", "rsqrt", "inverse", "pow", "exp", "square", "abs", "cast",
    "quantize", "dequantize", "pixel_shuffle", "space_to_depth", "depth_to_space", "identity",
})
# Ops that are weights or compile-time decompression, not computation
WEIGHT_OPS = frozenset({"const", "constexpr_affine_dequantize", "constexpr_lut_to_dense",
                        "constexpr_blockwise_shift_scale", "constexpr_sparse_to_dense", "constexpr_cast"})


def load_program(path: Path):
    """The MIL program of a saved .mlpackage (no prediction: works on Linux); returns (MLModel, program)."""
    from edgekit.exporters.torch2coreml import import_coremltools, quiet

    ct = import_coremltools()
    from coremltools.converters.mil.frontend.milproto import load as milproto

    with quiet():
        model = ct.models.MLModel(str(path), skip_model_load=True)
        spec = model.get_spec()
        program = milproto.load(spec, spec.specificationVersion, model.weights_dir)
    return model, program


def _feature(desc: Any) -> dict[str, Any]:
    array = desc.type.multiArrayType
    from coremltools.proto import FeatureTypes_pb2 as ft

    dtype = ft.ArrayFeatureType.ArrayDataType.Name(array.dataType).lower()
    out: dict[str, Any] = {"name": desc.name, "shape": [int(d) for d in array.shape], "dtype": dtype}
    enumerated = [[int(d) for d in s.shape] for s in array.enumeratedShapes.shapes]
    if enumerated:
        out["enumerated_shapes"] = enumerated
    return out


def _dtype_name(var: Any) -> str:
    from coremltools.converters.mil.mil import types

    dtype = var.dtype if hasattr(var, "dtype") else None
    try:
        return types.builtin_to_string(dtype) if dtype is not None else "?"
    except Exception:  # noqa: BLE001 - a non-tensor output (a tuple type): not a compute dtype
        return "?"


def _value(op: Any) -> np.ndarray | None:
    """A weight op's dense value: a const's own, a constexpr's decompressed (what Core ML expands at load)."""
    try:
        if op.op_type == "const":
            return None if op.outputs[0].val is None else np.asarray(op.outputs[0].val)
        return np.asarray(op.materialized_val_inference())
    except Exception:  # noqa: BLE001 - a constexpr this coremltools cannot expand: counted as unmatched
        return None


def summarize(path: Path) -> dict[str, Any]:
    """The package's MIL facts: ops, compute dtypes, inputs/outputs, weights by dtype, compression, GELU modes."""
    model, program = load_program(path)
    spec = model.get_spec()
    ops: dict[str, int] = {}
    compute: dict[str, int] = {}
    weights: dict[str, dict[str, int]] = {}
    compressed: dict[str, int] = {}
    gelu: dict[str, int] = {}
    activation_quant = 0
    for op in program.functions["main"].operations:
        if op.op_type in WEIGHT_OPS:
            if op.op_type != "const":
                compressed[op.op_type] = compressed.get(op.op_type, 0) + 1
            for dtype, size in _stored(op):
                if size < 2 or dtype in ("bool", "int32", "int64"):
                    continue  # scalars, masks, shapes: op parameters, not weights
                w = weights.setdefault(dtype, {"tensors": 0, "bytes": 0})
                w["tensors"] += 1
                w["bytes"] += (size * _bits(dtype) + 7) // 8
            continue
        ops[op.op_type] = ops.get(op.op_type, 0) + 1
        if op.op_type == "cast":
            continue  # the fp32 <-> fp16 casts at the inputs and outputs: conversions, not compute
        for out in op.outputs:
            name = _dtype_name(out)
            compute[name] = compute.get(name, 0) + 1
        if op.op_type == "gelu":
            mode = str(op.mode.val) if op.mode is not None else "EXACT"
            gelu[mode] = gelu.get(mode, 0) + 1
        if op.op_type == "quantize":
            activation_quant += 1
    package_bytes = sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
    return {"ops": dict(sorted(ops.items())), "compute_dtypes": compute, "weights": weights,
            "compressed_weights": compressed, "activation_quantize": activation_quant, "gelu_modes": gelu,
            "inputs": [_feature(d) for d in spec.description.input],
            "outputs": [_feature(d) for d in spec.description.output],
            "specification_version": int(spec.specificationVersion), "package_bytes": package_bytes,
            "metadata": dict(model.user_defined_metadata)}


def _stored(op: Any) -> list[tuple[str, int]]:
    """(MIL dtype, element count) of what a weight op stores in the package (quantized data, scales, palettes),
    not what it expands to. MIL dtypes keep sub-byte widths (uint6 palette indices) that numpy shows as uint8."""
    if op.op_type == "const":
        values = [op.outputs[0]]
    else:  # inline values only: an input made by a const op (iOS 18's form) is counted as that const
        values = [v for v in op.inputs.values()
                  if getattr(v, "val", None) is not None and getattr(v, "op", None) is None]
    out = []
    for var in values:
        if var.val is None:
            continue
        out.append((_dtype_name(var), int(np.asarray(var.val).size)))
    return out


def _bits(dtype: str) -> int:
    digits = "".join(ch for ch in dtype if ch.isdigit())
    return int(digits) if digits else 8


def ane_warnings(summary: dict[str, Any]) -> list[str]:
    """What in the program the Neural Engine is not known to run (one line each)."""
    warnings = []
    for op, count in summary["ops"].items():
        if op not in ANE_OPS:
            warnings.append(f"{op} x{count}: not among the ops the Neural Engine is known to run (CPU/GPU fallback "
                            "likely; the Mac's compute plan says)")
    exact = summary["gelu_modes"].get("EXACT", 0)
    if exact:
        warnings.append(f"gelu x{exact} in EXACT (erf) mode: the Neural Engine has no erf; export with "
                        "--coreml-gelu tanh to use the tanh approximation (its cost in fidelity is in info.json)")
    fp32 = summary["compute_dtypes"].get("fp32", 0)
    if fp32:
        warnings.append(f"{fp32} op outputs in fp32: the Neural Engine computes in fp16 only, so fp32 ops run on "
                        "the GPU or CPU (use --precision fp16 or a weight-compressed precision for the ANE)")
    return warnings


def _by_consumer(program: Any) -> dict[tuple[str, str], Any]:
    found = {}
    for op in program.functions["main"].operations:
        if op.op_type in WEIGHT_OPS or not op.outputs:
            continue
        for param, var in op.inputs.items():
            if hasattr(var, "op") and var.op is not None and var.op.op_type in WEIGHT_OPS:
                found[(op.outputs[0].name, param)] = var.op
    return found


def _allowed(op: Any, ref: np.ndarray) -> np.ndarray | float:
    """How far each expanded weight may be from the source: half a step for affine int8 (per channel along the
    op's axis), the distance to the nearest palette entry for a LUT."""
    if op.op_type == "constexpr_affine_dequantize":
        scale = np.asarray(op.scale.val, np.float64)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * ref.ndim
            shape[int(op.axis.val)] = scale.size
            return scale.reshape(shape) / 2
        return float(scale.max()) / 2
    if op.op_type == "constexpr_lut_to_dense":
        lut = np.sort(np.asarray(op.lut.val, np.float64).ravel())
        idx = np.clip(np.searchsorted(lut, ref), 1, len(lut) - 1)
        nearest = np.minimum(np.abs(ref - lut[idx - 1]), np.abs(ref - lut[idx]))
        return nearest
    if op.op_type == "constexpr_blockwise_shift_scale":  # iOS 18's form: one scale per block of each axis
        scale = np.abs(np.asarray(op.scale.val, np.float64))
        if scale.ndim == ref.ndim:
            for axis, (n, k) in enumerate(zip(ref.shape, scale.shape)):
                scale = np.repeat(scale, n // k, axis=axis)
            return scale / 2
        return float(scale.max()) / 2
    return 0.0


@dataclass
class DequantCheck:
    checked: int  # compressed weights compared
    unmatched: int  # compressed weights whose source weight was not found
    worst_steps: float  # the largest |dense - source| over what is allowed (half a step / nearest palette entry)
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "unmatched": self.unmatched, "worst_ratio": round(self.worst_steps, 4),
                "passed": self.passed}


def check_dequantized(compressed: Path, source: Path) -> DequantCheck:
    """Every compressed weight of `compressed` expands to the weight of `source` (the fp16/fp32 package it was
    made from) within half its quantization step, matched by the op that consumes it."""
    _, prog_q = load_program(compressed)
    _, prog_s = load_program(source)
    source_weights = _by_consumer(prog_s)
    checked = unmatched = 0
    worst = 0.0
    for key, op in _by_consumer(prog_q).items():
        if not op.op_type.startswith("constexpr"):
            continue
        dense = _value(op)
        ref_op = source_weights.get(key)
        ref = None if ref_op is None else _value(ref_op)
        if dense is None or ref is None or ref.shape != dense.shape:
            unmatched += 1
            continue
        ref64, dense64 = ref.astype(np.float64), dense.astype(np.float64)
        err = np.abs(dense64 - ref64)
        # the source is fp16 (1/2048 relative rounding) and so is the dense value, both allowed: a palette entry is
        # chosen against the float centroids before they are stored as fp16, so where two entries are nearly equally
        # near, the stored one may be farther by up to its own rounding
        allowed = _allowed(op, ref64) + (np.abs(ref64) + np.abs(dense64)) * 2.0 ** -10 + 1e-7
        worst = max(worst, float(np.max(err / allowed)))
        checked += 1
    return DequantCheck(checked, unmatched, worst, checked > 0 and unmatched == 0 and worst <= 1.0)
