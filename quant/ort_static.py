"""Static post-training INT8 with onnxruntime.quantization: QDQ, per-channel weights, calibrated ranges."""
from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from edgekit.errors import InputError
from edgekit.quant.presets import CALIBRATION_METHODS, QuantPreset

log = logging.getLogger(__name__)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over an iterable of feed dicts (consumed once)."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._it, None)
        if item is not None:
            self.count += 1
        return item

    def rewind(self) -> None:  # not needed: each calibration method reads the data once
        pass


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    if name not in CALIBRATION_METHODS:
        raise InputError(f"unknown calibration method {name!r}", hint="use one of: " + ", ".join(CALIBRATION_METHODS))
    return {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[name]


@contextlib.contextmanager
def _calibration_in_node_order() -> Iterator[None]:
    """Run onnxruntime's calibration session in the graph's node order.

    The MinMax calibrator adds a ReduceMin/ReduceMax output for every tensor, inserted next to it in the node
    list; but the session's DEFAULT order (reverse DFS from the outputs) runs the whole network first and the
    reductions last, so every intermediate tensor is alive at once (SlimSAM-77's encoder: killed at 18.7 GB,
    against 2.8 GB for a plain run). PRIORITY_BASED follows the node list: the same ranges, the network's own
    memory. onnxruntime offers no option for the calibrator's session, hence this scoped override."""
    import onnxruntime
    from onnxruntime.quantization.calibrate import CalibraterBase

    original = CalibraterBase.create_inference_session

    def create_inference_session(self: CalibraterBase) -> None:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL  # as upstream
        options.execution_order = onnxruntime.ExecutionOrder.PRIORITY_BASED
        self.infer_session = onnxruntime.InferenceSession(self.augmented_model_path, sess_options=options,
                                                          providers=self.execution_providers)

    CalibraterBase.create_inference_session = create_inference_session
    try:
        yield
    finally:
        CalibraterBase.create_inference_session = original


def _batched_constant_matmuls(path: Path) -> list[str]:
    """MatMul nodes whose constant operand is not a 2-D weight, to keep in float.

    SAM ViT's decomposed relative positions multiply by a constant (h, k, c) table (a gathered parameter,
    folded at export); per-channel quantization gives it an axis-1 zero point that onnxruntime's fused
    MatMulIntegerToFloat rejects at run time ("b zero point is not valid": SlimSAM / SAM INT8 encoders did not
    run). These products are a sliver of the encoder's work, so they stay float."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    rank = {t.name: len(t.dims) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            rank[node.output[0]] = len(node.attribute[0].t.dims)
    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and any(rank[i] != 2 for i in n.input if i in rank)]


def attention_matmuls(path: Path) -> list[str]:
    """MatMul nodes whose two operands are both computed (no weight): attention's q·kᵀ and attn·v."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    constant = {t.name for t in model.graph.initializer}
    constant |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    producer = {o: n for n in model.graph.node for o in n.output}

    def computed(name: str) -> bool:
        # a weight reached through a Transpose / Reshape of a constant is still a weight
        seen = name
        while seen in producer and producer[seen].op_type in ("Transpose", "Reshape", "Cast") and producer[seen].input:
            seen = producer[seen].input[0]
        return seen not in constant

    return [n.name for n in model.graph.node if n.op_type == "MatMul" and all(computed(i) for i in n.input[:2])]


def is_large(path: Path) -> bool:
    import onnx

    return any(t.data_location == onnx.TensorProto.EXTERNAL
               for t in onnx.load(str(path), load_external_data=False).graph.initializer)


def prepare_float(fp32: Path, folder: Path, preset: QuantPreset, signs: dict[str, list[int]] | None = None) -> Path:
    """The float graph the quantizer works on, written into `folder`: the preset's GELU fusion, then shape
    inference + ONNX Runtime's own clean-up, as onnxruntime.quantization recommends (it lets the quantizer see
    tensor shapes and the fused patterns that must stay float), then `signs` (quant/bimodal.py) when given.
    Deterministic: sensitivity analysis rebuilds it to compare the INT8 graph's tensors with their float originals
    under the same names."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    large = is_large(fp32)
    pre = folder / "pre.onnx"
    if preset.ort_gelu:
        from edgekit.exporters.rewrite import fuse_gelu_contrib
        from edgekit.exporters.torch2onnx import save_model

        model = onnx.load(str(fp32))
        if fuse_gelu_contrib(model):
            fp32 = folder / "gelu.onnx"
            save_model(model, fp32)
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True, save_as_external_data=large,
                      all_tensors_to_one_file=True)
    if signs:
        _rewrite_signs(pre, signs)
    return pre


def _rewrite_signs(pre: Path, signs: dict[str, list[int]]) -> int:
    import onnx

    from edgekit.exporters.torch2onnx import save_model
    from edgekit.quant.bimodal import apply_signs

    model = onnx.load(str(pre))
    flipped = apply_signs(model, signs)
    save_model(model, pre)
    return flipped


def _bimodal_signs(pre: Path, feeds: list, calibration_cache: Path | None, cached: bool) -> dict[str, list[int]]:
    """The key channels' signs for --preset *-ptq4sam: measured on the calibration feeds and kept beside the
    ranges, or read back from there when the ranges are (mixed precision)."""
    import onnx

    from edgekit.errors import ValidationError
    from edgekit.quant.bimodal import SIGNS, channel_signs, load_signs, save_signs

    kept = calibration_cache.with_name(SIGNS) if calibration_cache is not None else None
    if cached:
        if kept is None or not kept.is_file():
            raise ValidationError("the INT8 artifact's calibration ranges have no bimodal signs beside them",
                                  hint=f"delete its store folder ({calibration_cache.parent}) so INT8 is made again")
        return load_signs(kept)
    signs = channel_signs(onnx.load(str(pre)), feeds)
    if kept is not None:
        save_signs(signs, kept)
    return signs


def quantize_static_onnx(fp32: Path, out: Path, feeds: Iterable[dict[str, np.ndarray]], preset: QuantPreset,
                         method: str = "minmax", calibration_cache: Path | None = None,
                         float_nodes: Iterable[str] = ()) -> int:
    """Write the INT8 QDQ model of `fp32` to `out`; returns how many calibration samples were read.

    `calibration_cache`: where the activation ranges are kept (JSON). When it exists, its ranges are used and
    `feeds` is not read (mixed precision re-quantizes with other nodes in float, on the same ranges, in seconds);
    otherwise the calibration writes it. `float_nodes`: node names left in float, with their float weights."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    large = is_large(fp32)
    cached = calibration_cache is not None and calibration_cache.is_file()
    with tempfile.TemporaryDirectory(prefix="edgekit-quant-") as tmp:
        pre = prepare_float(fp32, Path(tmp), preset)
        if preset.bimodal:
            feeds = [] if cached else list(feeds)  # read twice: the key signs, then the ranges
            flipped = _rewrite_signs(pre, _bimodal_signs(pre, feeds, calibration_cache, cached))
            log.info("bimodal integration: %d key channel(s) flipped with their queries", flipped)
        reader = _Reader(feeds)
        extra = {
            "ActivationSymmetric": preset.activation_symmetric,
            "WeightSymmetric": preset.weight_symmetric,
            "OpTypesToExcludeOutputQuantization": list(preset.float_outputs),
            # No CalibMaxIntermediateOutputs: onnxruntime 1.31 discards (never merges) the batch it caps at. MinMax
            # keeps only per-tensor ReduceMin/ReduceMax scalars anyway.
        }
        if method == "percentile":
            extra["CalibPercentile"] = 99.999
        with _calibration_in_node_order():
            quantize_static(
                str(pre), str(out), None if cached else reader, quant_format=QuantFormat.QDQ,
                per_channel=preset.per_channel,
                reduce_range=preset.reduce_range, activation_type=getattr(QuantType, preset.activation_type),
                weight_type=getattr(QuantType, preset.weight_type), calibrate_method=_method(method),
                op_types_to_quantize=list(preset.op_types), use_external_data_format=large, extra_options=extra,
                nodes_to_exclude=sorted(set(_batched_constant_matmuls(pre)) | set(float_nodes)
                                        | set(attention_matmuls(pre) if preset.float_attention else ())),
                calibration_cache_path=calibration_cache,
            )
    if not cached and reader.count == 0:
        raise InputError("no calibration samples were read", hint="check the --calib folder")
    return reader.count
