"""The TensorRT format: TensorRT-ready ONNX made here, built into an engine on the device by `trtexec`.

- fp32 / fp16: the ONNX export (validated against torch like the onnx format's), checked for what TensorRT's ONNX
  parser is known to reject in SAM decoders; TensorRT chooses layer precisions itself, fp16 only allows it to use
  half precision (`--fp16`). The fp16 artifact is the fp32 file under its own name: the precision is a build flag.
- int8: explicit quantization, QDQ with the `tensorrt` preset (symmetric, per-channel; quant/presets.py says why),
  built with `--stronglyTyped` so that TensorRT follows the Q/DQ nodes (never `--int8` / `--best` with QDQ).

Beside each artifact the format writes `<file>.trt.json`, the build spec the device needs: the precision, the
trtexec flags it implies, and for a decoder the min/opt/max shapes of its prompt (1 / 4 / 16 points, SAM's pad
point included in the count). The TensorRT backend (targets/tensorrt/backend.py) reads nothing else.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from edgekit.formats.base import MakeJob
from edgekit.formats.onnx import OnnxFormat

# Prompt point counts the decoder engine is built for: min / opt / max (TensorRT optimisation profile)
POINT_PROFILE = {"min": 1, "opt": 4, "max": 16}
# What each precision asks of trtexec at build time
BUILD_FLAGS = {"fp32": [], "fp16": ["--fp16"], "int8": ["--stronglyTyped"]}
# Ops whose input (at the index) is a shape tensor: TensorRT must know it at build time, so it cannot be computed by
# a OneHot (nanosam#16/#40, efficientvit#70: "OneHot ... shape tensor" failures of SAM decoders)
SHAPE_INPUTS = {"Reshape": 1, "Expand": 1, "Tile": 1, "ConstantOfShape": 0, "Range": 1, "Slice": 1, "Resize": 3,
                "Pad": 1, "TopK": 1}


def spec_path(artifact: Path) -> Path:
    """The build spec written beside an artifact."""
    return artifact.with_name(artifact.name + ".trt.json")


def onehot_shape_problems(path: Path) -> list[str]:
    """OneHot nodes whose output reaches a shape input of a later node (TensorRT's parser rejects those)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))
    problems = []
    for node in graph.node:
        if node.op_type != "OneHot":
            continue
        frontier, seen = list(node.output), set()
        while frontier:
            tensor = frontier.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            for consumer, index in consumers.get(tensor, []):
                if SHAPE_INPUTS.get(consumer.op_type) == index:
                    problems.append(f"OneHot {node.name!r} feeds the shape input of {consumer.op_type} {consumer.name!r}")
                else:
                    frontier.extend(consumer.output)
    return problems


def decoder_shapes(path: Path) -> dict[str, dict[str, list[int]]]:
    """min/opt/max shapes of the decoder's dynamic inputs: the prompt point axis at POINT_PROFILE's counts."""
    import onnx

    shapes: dict[str, dict[str, list[int]]] = {k: {} for k in POINT_PROFILE}
    for value in onnx.load(str(path), load_external_data=False).graph.input:
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            continue
        for level, count in POINT_PROFILE.items():
            shapes[level][value.name] = [d.dim_value if d.HasField("dim_value") else count for d in dims]
    return shapes if shapes["min"] else {}


def _copy_graph(src: Path, dst: Path) -> None:
    """The ONNX graph under another name; external weights (`<file>.data`, named inside the graph) are saved again
    under the new name."""
    data = src.with_name(src.name + ".data")
    if not data.exists():
        shutil.copyfile(src, dst)
        return
    import onnx

    model = onnx.load(str(src))  # with its external data
    onnx.save(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True, location=dst.name + ".data")


class TensorRTFormat(OnnxFormat):
    name = "tensorrt"
    suffix = ".onnx"
    precisions = ("fp32", "fp16", "int8")
    calibrated = frozenset({"int8"})
    runtime = "tensorrt"
    int8_preset = "tensorrt"

    def config(self, part: str, precision: str, options: dict[str, Any]) -> dict[str, Any]:
        return {**super().config(part, precision, options), "build_flags": BUILD_FLAGS[precision],
                "points": POINT_PROFILE if part == "decoder" else None}

    def unmeasured_fidelity(self, precision: str) -> str | None:
        if precision == "fp16":
            return ("TensorRT picks half-precision layers when it builds the engine on the device: the fp16 artifact "
                    "is the fp32 graph, so its accuracy cost cannot be measured here")
        return None

    def make(self, job: MakeJob) -> dict[str, Any]:
        from edgekit.errors import ValidationError

        path = job.folder / job.file
        if job.precision == "fp32":
            info = super().make(job)
            problems = onehot_shape_problems(path)
            if problems:
                raise ValidationError(f"{job.ctx.spec.name} {job.part}: TensorRT's ONNX parser rejects this graph: "
                                      + "; ".join(problems[:3]),
                                      hint="the decoder must export without OneHot (use masked arithmetic on the "
                                           "labels); --format onnx runs it under ONNX Runtime meanwhile")
        elif job.precision == "fp16":
            assert job.source is not None
            _copy_graph(job.source.path, path)
            for side in ("layer_map.json", "inputs.npz"):
                shutil.copyfile(job.source.entry.path(job.source.root, side), job.folder / side)
            info = {"from": job.source.name, "note": "the fp32 graph; --fp16 lets TensorRT run layers in half precision"}
        else:
            info = super().make(job)
        spec = {"precision": job.precision, "build_flags": BUILD_FLAGS[job.precision],
                "shapes": decoder_shapes(path) if job.part == "decoder" else {}}
        spec_path(path).write_text(json.dumps(spec, indent=1))
        return {**info, "tensorrt": spec}

    def make_mixed(self, job: MakeJob, int8, float_nodes) -> dict[str, Any]:
        """As ONNX's, plus the engine build spec: INT8's flags (TensorRT runs the layers without Q/DQ in float)."""
        info = super().make_mixed(job, int8, float_nodes)
        path = job.folder / job.file
        spec = {"precision": "int8", "build_flags": BUILD_FLAGS["int8"],
                "shapes": decoder_shapes(path) if job.part == "decoder" else {}}
        spec_path(path).write_text(json.dumps(spec, indent=1))
        return {**info, "tensorrt": spec}


FORMAT = TensorRTFormat()
