"""`edgekit bundle`: what an app needs to run a variant, in one folder: the two models for the platform's runtime,
manifest.json (schema edgekit.bundle/1: the exact preprocessing, the prompt encoding, every input and output with
its shape, dtype and quantization, the post-processing steps, the variant, weights and licence), the reference
consumer (consume.py) and sample code.

Platforms: `android` (LiteRT .tflite, one signature per prompt length), `ios` (Core ML .mlpackage, enumerated
prompt lengths), `onnx` (ONNX Runtime Mobile's .ort, converted from the validated ONNX by onnxruntime's own tool).
The bundle is written into `<out>.part` and renamed when complete: a failure leaves nothing half-written.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgekit.errors import InputError, ValidationError
from edgekit.formats.base import PARTS

SCHEMA = "edgekit.bundle/1"
# platform -> (format, the model files' suffix in the bundle)
PLATFORMS: dict[str, tuple[str, str]] = {"android": ("litert", ".tflite"), "ios": ("coreml", ".mlpackage"),
                                         "onnx": ("onnx", ".ort")}
HERE = Path(__file__).resolve().parent
SAMPLES = {"android": ["SamBundle.kt"], "ios": ["SamBundle.swift"], "onnx": ["SamBundle.kt", "SamBundle.swift"]}


def _sha256(path: Path) -> str:
    from edgekit.store import sha256_path

    return sha256_path(path)


def _onnx_io(path: Path) -> tuple[list[dict], list[dict]]:
    import onnx

    names = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32",
             onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT8: "int8"}
    graph = onnx.load(str(path), load_external_data=False).graph

    def one(v) -> dict:
        t = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in t.shape.dim]
        return {"name": v.name, "shape": shape, "dtype": names.get(t.elem_type, str(t.elem_type)), "quantization": None}

    return [one(v) for v in graph.input], [one(v) for v in graph.output]


def _litert_io(path: Path) -> tuple[list[dict], list[dict], dict[str, str]]:
    """The first signature's inputs/outputs (the smallest prompt length) and every signature by prompt length."""
    from edgekit.formats.litert_session import LiteRTSession

    session = LiteRTSession(path)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    first = next(iter(interpreter.get_signature_list()))
    runner = interpreter.get_signature_runner(first)

    def one(name: str, d: dict) -> dict:
        scale, zero = d.get("quantization", (0.0, 0))
        quant = {"scale": float(scale), "zero_point": int(zero)} if scale else None
        return {"name": name, "shape": [int(v) for v in d["shape"]], "dtype": str(d["dtype"].__name__
                if hasattr(d["dtype"], "__name__") else d["dtype"]), "quantization": quant}

    inputs = [one(n, d) for n, d in runner.get_input_details().items()]
    outputs = [one(n, d) for n, d in runner.get_output_details().items()]
    return inputs, outputs, {str(k): v for k, v in session.point_counts.items()}


def _coreml_io(info: dict) -> tuple[list[dict], list[dict]]:
    def one(f: dict) -> dict:
        return {"name": f["name"], "shape": f["shape"], "dtype": f["dtype"], "quantization": None,
                **({"enumerated_shapes": f["enumerated_shapes"]} if f.get("enumerated_shapes") else {})}

    return [one(f) for f in info["mil"]["inputs"]], [one(f) for f in info["mil"]["outputs"]]


def to_ort(onnx_path: Path, folder: Path, name: str) -> Path:
    """ONNX -> ONNX Runtime Mobile's .ort with onnxruntime's converter (run as its module, argv list)."""
    with tempfile.TemporaryDirectory(prefix="edgekit-ort-") as tmp:
        src = Path(tmp) / (Path(name).stem + ".onnx")
        os.symlink(onnx_path, src)
        data = onnx_path.with_name(onnx_path.name + ".data")
        if data.exists():  # external weights are found by the name the graph records
            os.symlink(data, Path(tmp) / data.name)
        argv = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(src), "--output_dir",
                str(Path(tmp) / "out")]
        proc = subprocess.run(argv, capture_output=True, text=True)
        made = sorted((Path(tmp) / "out").glob("*.ort"))
        if proc.returncode != 0 or not made:
            raise ValidationError(f"onnxruntime could not convert {onnx_path.name} to .ort: "
                                  f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['no output']}",
                                  hint="--platform android (LiteRT) ships the same model without this step")
        shutil.copyfile(made[0], folder / name)
    return folder / name


def manifest(ctx: Any, platform: str, precision: str, models: dict[str, dict], prompt_counts: list[int] | None) -> dict:
    spec = ctx.spec
    recipe = spec.preprocess
    if recipe.resize != "longest_side_pil":
        raise InputError(f"{spec.name} resizes its input by stretching ({recipe.resize}): bundles describe SAM's "
                         "longest-side resize only so far", hint="bundle a SAM-style variant (mobilesam, ...)")
    return {
        "schema": SCHEMA, "platform": platform, "precision": precision,
        "variant": {"name": spec.name, "family": spec.family},
        "weights": {"kind": "synthetic" if ctx.synthetic else "checkpoint",
                    "file": None if ctx.checkpoint is None else Path(ctx.checkpoint).name,
                    "sha256": None if ctx.synthetic else ctx.checkpoint_sha256},
        "license": spec.checkpoint.license,
        "preprocess": {"resize_longest": recipe.input_size, "interpolation": "bilinear (PIL, antialiased)",
                       "scale": recipe.normalize_scale, "mean": list(recipe.mean), "std": list(recipe.std),
                       "pad": "bottom-right", "pad_value": 0.0, "layout": "NCHW", "dtype": "float32",
                       "input_size": recipe.input_size, "channels": "RGB"},
        "models": models,
        "prompt": {"coordinate_space": "input", "frame": recipe.prompt_frame,
                   "max_points": None if prompt_counts is None else prompt_counts[-1], "point_counts": prompt_counts,
                   "positive_label": 1, "negative_label": 0, "pad_label": -1, "pad_point": [0.0, 0.0],
                   "box_labels": [2, 3],
                   "note": "coordinates in pixels of the resized image (x * resized_w / W); a point prompt ends with "
                           "the pad point, a box is two corner points labelled 2 and 3"},
        "postprocess": {"mask_threshold": recipe.mask_threshold, "low_res_size": spec.low_res_size,
                        "single_mask_channel": 0, "multimask_channels": [1, 2, 3],
                        "steps": [f"bilinear resize of the low-res logits to {recipe.input_size}x{recipe.input_size} "
                                  "(half-pixel centres)",
                                  "crop the resized image's area (top-left: resized h x w)",
                                  "bilinear resize to the original H x W",
                                  f"mask = logits > {recipe.mask_threshold}"]},
    }


def make_bundle(ctx: Any, platform: str, precision: str, settings: Any, out: Path) -> dict:
    """Make (or reuse) both artifacts and write the bundle into `out`; returns the manifest."""
    from edgekit.formats import get_format
    from edgekit.pipeline.artifacts import ensure_artifact

    if platform not in PLATFORMS:
        raise InputError(f"unknown platform {platform!r}", hint="--platform android, ios or onnx")
    fmt = get_format(PLATFORMS[platform][0])
    fmt.check_precision(precision)
    problem = fmt.available()
    if problem:
        raise InputError(f"--platform {platform} needs {fmt.name} artifacts, which cannot be made here: {problem}")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} exists and is not empty", hint="give a new --out folder")
    artifacts = {part: ensure_artifact(ctx, fmt, part, precision, settings) for part in PARTS}
    staging = out.with_name(out.name + ".part")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        models: dict[str, dict] = {}
        counts = None
        for part, artifact in artifacts.items():
            name = f"{ctx.spec.name}.{part}.{precision}{PLATFORMS[platform][1]}"
            entry: dict[str, Any] = {"file": name}
            if platform == "onnx":
                inputs, outputs = _onnx_io(artifact.path)
                to_ort(artifact.path, staging, name)
            elif platform == "android":
                inputs, outputs, signatures = _litert_io(artifact.path)
                shutil.copyfile(artifact.path, staging / name)
                if signatures:
                    entry["signatures"] = signatures
                    counts = sorted(int(k) for k in signatures)
            else:
                from edgekit.exporters.torch2coreml import POINT_COUNTS

                inputs, outputs = _coreml_io(artifact.info)
                shutil.copytree(artifact.path, staging / name)
                if part == "decoder":
                    counts = list(POINT_COUNTS)
            entry.update(sha256=_sha256(staging / name), inputs=inputs, outputs=outputs)
            models[part] = entry
        data = manifest(ctx, platform, precision, models, counts)
        (staging / "manifest.json").write_text(json.dumps(data, indent=1) + "\n")
        shutil.copyfile(HERE / "consumer.py", staging / "consume.py")
        for sample in SAMPLES[platform]:
            (staging / "samples").mkdir(exist_ok=True)
            shutil.copyfile(HERE / "samples" / sample, staging / "samples" / sample)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return data
