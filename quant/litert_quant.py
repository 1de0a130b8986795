"""LiteRT precisions made from the FP32 .tflite with ai-edge-quantizer, each with the reason for its recipe.

- fp16: weights stored as float16 (`float_casting`), computed in float32 by XNNPACK: half the file, same speed.
- int8-dynamic: int8 per-channel weights of the weighted ops; activations quantized on the fly by the kernels
  (no calibration).
- int8: static int8 of the weighted ops (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED): int8 weights per channel
  and int8 activations with ranges calibrated on real images. Only those ops: `static_wi8_ai8` ("every supported
  op") also quantizes GELU, softmax, the element-wise ops and BATCH_MATMUL between activations, several of which
  XNNPACK has no int8 kernel for, so they fall out of the delegate into slow builtin kernels (measured: 1.7x
  SLOWER than FP32 on the MobileSAM encoder). With the weighted ops only, every op stays delegated and the
  rest of the graph runs in float between QUANTIZE/DEQUANTIZE pairs.
- int8-mixed: the int8 recipe with chosen ops (quant/litert_ops.py names) left in float by a NO_QUANTIZE rule on
  their scopes, quantized on the int8 artifact's own calibration ranges (saved beside it: no second calibration).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from edgekit.errors import ValidationError

STATIC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
DYNAMIC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
RECIPES = {
    "fp16": {"algorithm": "float_casting", "ops": "all weights", "bits": 16},
    "int8-dynamic": {"algorithm": "min_max_uniform_quantize", "ops": list(DYNAMIC_OPS), "weights": 8,
                     "activations": "float, quantized on the fly"},
    "int8": {"algorithm": "min_max_uniform_quantize", "ops": list(STATIC_OPS), "weights": 8, "activations": 8,
             "granularity": "channelwise weights, per-tensor activations"},
}
RANGES = "calibration_ranges.json"  # beside an int8 artifact: what its mixed-precision variants are quantized on
CALIBRATION_THREADS = 2  # the quantizer's default is 16 threads; more than the cores only costs memory


def _quantizer(source: Path):
    from ai_edge_quantizer import quantizer

    return quantizer.Quantizer(str(source))


def save_ranges(ranges: dict[str, dict[str, Any]], path: Path) -> None:
    """The quantizer's calibration result ({tensor: {"min": array, "max": array}}) as JSON."""
    data = {name: {k: np.asarray(v).tolist() for k, v in qsv.items()} for name, qsv in ranges.items()}
    path.write_text(json.dumps(data))


def load_ranges(path: Path) -> dict[str, dict[str, np.ndarray]]:
    data = json.loads(path.read_text())
    return {name: {k: np.asarray(v, np.float32) for k, v in qsv.items()} for name, qsv in data.items()}


def quantize_tflite(source: Path, target: Path, precision: str,
                    calibration: dict[str, Iterable[dict[str, np.ndarray]]] | None = None,
                    ranges: dict[str, dict[str, np.ndarray]] | None = None,
                    float_ops: Sequence[str] = ()) -> dict:
    """Write the `precision` model of the FP32 `source` to `target`; `calibration` maps each signature name to
    its feeds (static int8 only), or `ranges` are an earlier calibration's result; `float_ops` (int8 only) are
    left in float. Returns what went into it (recipe, calibration sample count, and "ranges": the calibration
    result, for save_ranges)."""
    from ai_edge_quantizer import qtyping
    from ai_edge_quantizer.recipe import AlgorithmName

    from edgekit.quant.litert_ops import float_scopes, read

    ops = qtyping.TFLOperationName
    qz = _quantizer(source)
    if precision == "fp16":
        qz.add_weight_only_config(".*", ops.ALL_SUPPORTED, 16, algorithm_key=AlgorithmName.FLOAT_CASTING)
    elif precision == "int8-dynamic":
        for op in DYNAMIC_OPS:
            qz.add_dynamic_config(".*", ops(op), 8)
    elif precision == "int8":
        for op in STATIC_OPS:
            qz.add_static_config(".*", ops(op), 8, 8)
        # the last rule matching an op's scope wins (ai-edge-quantizer's recipe manager)
        for regex in float_scopes(read(source), float_ops) if float_ops else ():
            for op in STATIC_OPS:
                qz.update_quantization_recipe(regex, ops(op), algorithm_key=AlgorithmName.NO_QUANTIZE)
    else:
        raise ValueError(precision)
    if float_ops and precision != "int8":
        raise ValueError("only static int8 keeps chosen ops in float")
    samples = 0
    result = ranges
    if qz.need_calibration and result is None:
        if not calibration:
            raise ValidationError(f"LiteRT {precision} needs calibration feeds", hint="pass --calib DIR")
        from edgekit.quant.litert_memory import calibration_threads

        threads = calibration_threads(source, CALIBRATION_THREADS)  # refused here, not OOM-killed midway
        data = {name: list(feeds) for name, feeds in calibration.items()}
        samples = sum(len(v) for v in data.values())
        result = qz.calibrate(data, num_threads=threads)
    staged = target.with_name(f".{target.name}.part")
    quantized = qz.quantize(result, enable_progress_report=False) if result is not None else qz.quantize(enable_progress_report=False)
    quantized.export_model(str(staged), overwrite=True)
    if float_ops:
        _check_float(read(staged), set(float_ops), staged)
    staged.replace(target)
    return {"recipe": RECIPES[precision], "samples": samples, "ranges": result}


def _check_float(model, wanted: set[str], staged: Path) -> None:
    """Every signature of the mixed model computes exactly `wanted` in float: a rule that matched more or less
    than those ops would make a model other than the one the search measured."""
    from edgekit.quant.litert_ops import float_keys

    for subgraph, got in enumerate(float_keys(model)):
        if got != wanted:
            staged.unlink(missing_ok=True)
            extra, missing = sorted(got - wanted), sorted(wanted - got)
            raise ValidationError(f"the mixed-precision LiteRT model keeps other ops in float than asked in signature "
                                  f"{subgraph} (also float: {extra or 'none'}; quantized anyway: {missing or 'none'})",
                                  hint="report this with the model: ai-edge-quantizer did not follow the recipe")
