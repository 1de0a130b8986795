"""The Core ML format: ML Program packages (.mlpackage) made by coremltools, run by Core ML on a Mac or an iPhone.

Precisions (fp16 is Core ML's own default and the Neural Engine's only float type):
- fp16 / fp32: converted from torch (exporters/torch2coreml.py), compute precision fp16 or fp32;
- int8: the fp16 package with int8 weights, per output channel, symmetric (`linear_quantize_weights`); the
  activations stay fp16;
- w8a8: int8 weights and int8 activations: the inputs of every convolution and linear layer quantized per tensor
  (symmetric) on scales calibrated in torch on the real calibration images, then int8 weights as above.
  coremltools' own activation calibration (`linear_quantize_activations`) predicts with Core ML, which only
  runs on macOS, so the calibration runs in torch and the scales enter as quantize/dequantize ops;
- palette6: the fp16 package with 6-bit k-means palettized weights (`palettize_weights`).

Core ML cannot predict on Linux, so nothing here runs a package. Instead every package is checked from its MIL
program (exporters/coreml_checks.py: ops, compute dtypes, shapes, weights, compressed weights dequantizing back
to the source within their step, the Neural Engine warning list), and ships `reference.npz`: torch's outputs
for `inputs.npz`, which the Mac runner (targets/device/coreml_runner.py) compares its prediction with.
"""
from __future__ import annotations

import copy
import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.formats.base import Format, HostSession, MakeJob

EXTRA = "coreml"
INSTALL_HINT = f"pip install -c constraints.txt -e '.[{EXTRA}]' (coremltools, and scikit-learn for palette6)"
REFERENCE = "reference.npz"  # beside each package: torch's outputs for inputs.npz (the Mac runner compares)
WEIGHT_THRESHOLD = 2048  # weights smaller than this stay fp16 (biases, norms: compressing them saves nothing)
# What the Mac runner holds each precision to, against torch's FP32 outputs (None: measured, not gated):
# `embedding_rel`: max |Δ| over max |reference| of the encoder's outputs; `mask_iou`: decoder masks against torch's
TOLERANCES: dict[str, dict[str, float | None]] = {
    "fp32": {"embedding_rel": 1e-3, "mask_iou": 0.99},
    "fp16": {"embedding_rel": 1e-2, "mask_iou": 0.99},
    "int8": {"embedding_rel": None, "mask_iou": None},
    "w8a8": {"embedding_rel": None, "mask_iou": None},
    "palette6": {"embedding_rel": None, "mask_iou": None},
}
GELU_MODES = ("exact", "tanh")
# Variants whose encoder and decoder converted here at fp16 and int8 with every MIL check passing
# (tools/format_survey.py --format coreml; the table is in the closing notes); `edgekit models` marks the others
SURVEYED = frozenset({"mobilesam", "tinysam", "edgesam", "repvit-sam", "efficientvit-sam-l0", "efficientvit-sam-l1",
                      "efficientvit-sam-l2", "efficientvit-sam-xl0", "efficientvit-sam-xl1", "slimsam-50",
                      "slimsam-77", "sam-vit-b", "sam-vit-l", "sam2.1-hiera-t", "sam2.1-hiera-s", "sam2.1-hiera-b+",
                      "sam2.1-hiera-l", "efficienttam-ti", "efficienttam-s"})
# Variants that do not convert, with why (measured by that survey)
UNSUPPORTED: dict[str, str] = {}


def _gelu_to_tanh(model: nn.Module) -> int:
    """Switch every nn.GELU to the tanh approximation (in place); returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(module, nn.GELU) and module.approximate != "tanh":
            module.approximate = "tanh"
            count += 1
    return count


def _calibrate_w8a8(wrapper: nn.Module, feeds, input_names: tuple[str, ...]) -> nn.Module:
    """A copy of `wrapper` whose Conv2d / Linear inputs are quantize-dequantized to int8 at the largest absolute
    value they took on the calibration feeds (symmetric per tensor: the Neural Engine's int8 activations)."""
    from edgekit.exporters.torch2coreml import QDQ

    amax: dict[str, float] = {}
    hooks = []
    for name, module in wrapper.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            def hook(_m, args, name=name):
                amax[name] = max(amax.get(name, 0.0), float(args[0].detach().abs().max()))
            hooks.append(module.register_forward_pre_hook(hook))
    seen = 0
    try:
        with torch.no_grad():
            for feed in feeds:
                wrapper(*(torch.from_numpy(np.asarray(feed[n])) for n in input_names))
                seen += 1
    finally:
        for h in hooks:
            h.remove()
    if not seen:
        from edgekit.errors import InputError

        raise InputError("w8a8 calibrates activations on real images and got none", hint="pass --calib DIR")
    quantized = copy.deepcopy(wrapper)

    def wrap(parent: nn.Module, prefix: str) -> None:
        for cname, child in list(parent.named_children()):
            full = prefix + cname
            if full in amax:
                setattr(parent, cname, QDQ(child, max(amax[full], 1e-8) / 127.0))
            else:
                wrap(child, full + ".")

    wrap(quantized, "")
    return quantized


class CoreMLFormat(Format):
    name = "coreml"
    suffix = ".mlpackage"
    precisions = ("fp16", "fp32", "int8", "w8a8", "palette6")
    calibrated = frozenset({"w8a8"})
    runtime = "coreml"
    runs_here = False  # Core ML predicts only on macOS

    def derives_from(self, precision: str) -> str | None:
        return "fp16" if precision in ("int8", "palette6") else None

    def config(self, part: str, precision: str, options: dict[str, Any]) -> dict[str, Any]:
        from edgekit.exporters.torch2coreml import DECODER_TARGET, MIN_TARGET, POINT_COUNTS

        gelu = options.get("coreml_gelu") or "exact"
        config: dict[str, Any] = {"deployment_target": DECODER_TARGET if part == "decoder" else MIN_TARGET, "io": "fp32"}
        if precision in ("fp16", "fp32", "w8a8"):
            config["gelu"] = gelu
            if part == "decoder":
                config["point_counts"] = list(POINT_COUNTS)
        if precision in ("int8", "w8a8"):
            config["weights"] = {"dtype": "int8", "mode": "linear_symmetric", "granularity": "per_channel",
                                 "threshold": WEIGHT_THRESHOLD}
        if precision == "w8a8":
            config["activations"] = {"dtype": "int8", "mode": "symmetric_per_tensor", "calibration": "absmax"}
        if precision == "palette6":
            config["weights"] = {"nbits": 6, "mode": "kmeans", "threshold": WEIGHT_THRESHOLD}
        return config

    def available(self) -> str | None:
        missing = [m for m in ("coremltools",) if importlib.util.find_spec(m) is None]
        return None if not missing else f"{', '.join(missing)} not installed: {INSTALL_HINT}"

    def supports(self, spec: Any) -> str | None:
        if getattr(spec, "external_encoder", False):
            return "its encoder is an ONNX file (--encoder-onnx): ONNX only"
        return UNSUPPORTED.get(spec.name)

    def session(self, artifact_path: Path, threads: int = 0) -> HostSession:
        from edgekit.errors import InputError

        raise InputError(f"{artifact_path.name}: Core ML runs only on macOS, not on this machine",
                         hint="deploy it to a Mac: --target mac-apple-silicon --host H")

    def unmeasured_fidelity(self, precision: str) -> str | None:
        return ("Core ML predicts only on macOS: the Mac runner compares each package with torch's reference "
                "outputs shipped beside it (the report's device validation)")

    def make(self, job: MakeJob) -> dict[str, Any]:
        from edgekit.errors import InputError

        problem = self.available()
        if problem:
            raise InputError(f"cannot make Core ML packages here: {problem}", hint=INSTALL_HINT)
        gelu = job.options.get("coreml_gelu") or "exact"
        if gelu not in GELU_MODES:
            raise InputError(f"unknown GELU mode {gelu!r}", hint="--coreml-gelu exact or tanh")
        if job.precision in ("int8", "palette6"):
            return self._compress(job)
        return self._convert(job, gelu)

    # -- from torch ------------------------------------------------------------------------------------------
    def _graph(self, job: MakeJob, model: nn.Module, names: tuple[str, ...]):
        """(wrapper, input names, output names) of one part around `model`."""
        from edgekit.exporters.graphs import DecoderGraph, EncoderGraph, decoder_signature

        spec = job.ctx.spec
        if job.part == "encoder":
            return EncoderGraph(model, names).eval(), ("image",), names
        sig = decoder_signature(spec, names)
        wrapper = DecoderGraph(model, names, spec.extra_outputs, spec.accepts_mask_input).eval()
        return wrapper, tuple(sig.inputs), tuple(sig.outputs)

    def _convert(self, job: MakeJob, gelu: str) -> dict[str, Any]:
        from edgekit.exporters.coreml_checks import ane_warnings, check_dequantized, summarize
        from edgekit.exporters.torch2coreml import POINT_COUNTS, convert, import_coremltools, quiet
        from edgekit.formats.litert_session import pad_prompt
        from edgekit.formats.onnx import _inputs, decoder_cases
        from edgekit.pipeline.artifacts import decoder_feeds, features

        ctx, path = job.ctx, job.folder / job.file
        inputs = _inputs(job)
        x0 = inputs[0][0]
        feats0 = features(ctx, x0)
        model = ctx.model
        gelu_info: dict[str, Any] = {"mode": gelu}
        if gelu == "tanh":
            model = copy.deepcopy(ctx.model).eval()
            gelu_info["modules"] = _gelu_to_tanh(model)
        wrapper, input_names, output_names = self._graph(job, model, tuple(feats0))
        if job.part == "encoder":
            feed = {"image": x0}
            cases = None
        else:
            cases = decoder_cases(job, inputs, feats0)
            # the first case at the smallest compiled prompt length (the one devices time), padded as SAM pads
            first = min(cases, key=lambda c: c[1].shape[1])
            count = next(c for c in POINT_COUNTS if c >= first[1].shape[1])
            feed = decoder_feeds(ctx, feats0, *pad_prompt(first[1], first[2], count))
        example = tuple(torch.from_numpy(np.asarray(feed[n])) for n in input_names)
        if gelu == "tanh":
            gelu_info["fidelity"] = _gelu_cost(job, wrapper, example, input_names, inputs, cases)
        traced_wrapper = wrapper
        if job.precision == "w8a8":
            assert job.calibration is not None
            traced_wrapper = _calibrate_w8a8(wrapper, job.calibration(), input_names)
        compute = "fp32" if job.precision == "fp32" else "fp16"
        metadata = _metadata(job, input_names, output_names, gelu)
        converted = convert(traced_wrapper, example, input_names, output_names, compute,
                            point_inputs=("point_coords", "point_labels") if job.part == "decoder" else (),
                            metadata=metadata)
        mlmodel = converted.model
        mlmodel.short_description = metadata["edgekit.description"]
        check = None
        if job.precision == "w8a8":
            ct = import_coremltools()
            with tempfile.TemporaryDirectory() as tmp, quiet():
                before = Path(tmp) / "activations.mlpackage"
                mlmodel.save(str(before))
                mlmodel = ct.optimize.coreml.linear_quantize_weights(mlmodel, _int8_config(ct))
                mlmodel.save(str(path))
                check = check_dequantized(path, before)
        else:
            with quiet():
                mlmodel.save(str(path))
        converted.layer_map.write(job.folder / "layer_map.json")
        np.savez(job.folder / "inputs.npz", **{k: np.asarray(v) for k, v in feed.items()})
        exact = wrapper if gelu == "exact" else self._graph(job, ctx.model, tuple(feats0))[0]
        _write_reference(job.folder / REFERENCE, exact, example, output_names)  # the exact model is the truth
        summary = summarize(path)
        _require(summary, job, input_names, output_names, check)
        return {"exporter": "coremltools", "coremltools": converted.coremltools, "seconds": round(converted.seconds, 1),
                "deployment_target": _target(job.part), "mil": {k: v for k, v in summary.items() if k != "metadata"},
                "ane_warnings": ane_warnings(summary), "gelu": gelu_info,
                "dequantize_check": None if check is None else check.to_dict(),
                "tolerances": TOLERANCES[job.precision], "nodes": len(converted.layer_map.nodes),
                "nodes_attributed": sum(1 for m in converted.layer_map.nodes.values() if m != "<graph>")}

    # -- from the fp16 package -------------------------------------------------------------------------------
    def _compress(self, job: MakeJob) -> dict[str, Any]:
        from edgekit.exporters.coreml_checks import ane_warnings, check_dequantized, summarize
        from edgekit.exporters.torch2coreml import import_coremltools, quiet

        assert job.source is not None
        ct = import_coremltools()
        path = job.folder / job.file
        with quiet():
            source = ct.models.MLModel(str(job.source.path), skip_model_load=True)
            if job.precision == "int8":
                made = ct.optimize.coreml.linear_quantize_weights(source, _int8_config(ct))
            else:
                config = ct.optimize.coreml.OptimizationConfig(global_config=ct.optimize.coreml.OpPalettizerConfig(
                    mode="kmeans", nbits=6, weight_threshold=WEIGHT_THRESHOLD))
                made = ct.optimize.coreml.palettize_weights(source, config)
            made.save(str(path))
        for side in ("layer_map.json", "inputs.npz", REFERENCE):
            shutil.copyfile(job.source.entry.path(job.source.root, side), job.folder / side)
        check = check_dequantized(path, job.source.path)
        summary = summarize(path)
        names = [f["name"] for f in summary["inputs"]], [f["name"] for f in summary["outputs"]]
        _require(summary, job, tuple(names[0]), tuple(names[1]), check)
        return {"exporter": "coremltools", "coremltools": ct.__version__, "from": job.source.name,
                "deployment_target": _target(job.part), "mil": {k: v for k, v in summary.items() if k != "metadata"},
                "ane_warnings": ane_warnings(summary), "dequantize_check": check.to_dict(),
                "tolerances": TOLERANCES[job.precision]}


def _target(part: str) -> str:
    """The OS a part needs (exporters/torch2coreml.py says why the decoder needs more)."""
    return "iOS 18 / macOS 15" if part == "decoder" else "iOS 17 / macOS 14"


def _int8_config(ct: Any):
    return ct.optimize.coreml.OptimizationConfig(global_config=ct.optimize.coreml.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=WEIGHT_THRESHOLD))


def _metadata(job: MakeJob, input_names, output_names, gelu: str) -> dict[str, Any]:
    """What an app needs beside the package: the preprocessing it must do itself, the names, the provenance."""
    recipe = job.ctx.spec.preprocess
    return {"edgekit.description": f"{job.ctx.spec.name} {job.part} ({job.precision}), made by edgekit",
            "edgekit.model": job.ctx.spec.name, "edgekit.part": job.part, "edgekit.precision": job.precision,
            "edgekit.preprocess": {**recipe.to_dict(), "layout": "NCHW", "pad": "bottom-right",
                                   "outside_model": True},
            "edgekit.inputs": list(input_names), "edgekit.outputs": list(output_names), "edgekit.gelu": gelu}


def _write_reference(path: Path, wrapper: nn.Module, example: tuple, output_names) -> None:
    """torch's outputs (the exact-GELU FP32 model's, whatever the package's GELU) for the package's inputs.npz."""
    with torch.inference_mode():
        out = wrapper(*example)
    out = out if isinstance(out, (tuple, list)) else (out,)
    np.savez(path, **{name: t.float().numpy() for name, t in zip(output_names, out)})


def sqnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - other) ** 2))
    return float("inf") if noise == 0 else 10 * float(np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / noise))


def _gelu_cost(job: MakeJob, tanh_wrapper: nn.Module, example, input_names, inputs, cases) -> dict[str, Any]:
    """What the tanh GELU costs, measured in torch against the exact model: embedding SQNR (encoder) or mask IoU
    of the single-mask output (decoder) on the validation images."""
    from edgekit.exporters.graphs import DecoderGraph, EncoderGraph
    from edgekit.pipeline.artifacts import decoder_feeds

    ctx = job.ctx
    with torch.inference_mode():
        if job.part == "encoder":
            names = tuple(n for n in tanh_wrapper.feature_names)
            exact = EncoderGraph(ctx.model, names).eval()
            values = []
            for x, _, _ in inputs:
                a = exact(torch.from_numpy(x))[0].numpy()
                b = tanh_wrapper(torch.from_numpy(x))[0].numpy()
                values.append(sqnr_db(a, b))
            return {"embedding_sqnr_db": round(float(min(values)), 2), "images": len(values)}
        exact = DecoderGraph(ctx.model, tanh_wrapper.feature_names, ctx.spec.extra_outputs,
                             ctx.spec.accepts_mask_input).eval()
        ious = []
        for feats, coords, labels in cases:
            feed = decoder_feeds(ctx, feats, coords, labels)
            args = tuple(torch.from_numpy(np.asarray(feed[n])) for n in input_names)
            a = exact(*args)[0].numpy() > 0
            b = tanh_wrapper(*args)[0].numpy() > 0
            union = np.logical_or(a, b).sum()
            ious.append(1.0 if union == 0 else float(np.logical_and(a, b).sum() / union))
        return {"mask_iou": round(float(min(ious)), 4), "prompts": len(ious)}


def _require(summary: dict[str, Any], job: MakeJob, input_names, output_names, check) -> None:
    """The MIL checks a package must pass to be stored; one ValidationError naming every failure."""
    from edgekit.errors import ValidationError

    problems = []
    got_in = [f["name"] for f in summary["inputs"]]
    got_out = [f["name"] for f in summary["outputs"]]
    if got_in != list(input_names):
        problems.append(f"inputs {got_in}, expected {list(input_names)}")
    if got_out != list(output_names):
        problems.append(f"outputs {got_out}, expected {list(output_names)}")
    dtypes = summary["compute_dtypes"]
    want = "fp32" if job.precision == "fp32" else "fp16"
    if not dtypes.get(want):
        problems.append(f"no op computes in {want} (compute dtypes {dtypes})")
    if job.precision != "fp32" and dtypes.get("fp32", 0) > 0:
        problems.append(f"{dtypes['fp32']} ops compute in fp32 in a {job.precision} package")
    compressed = summary["compressed_weights"]
    # int8 weights are constexpr_affine_dequantize up to iOS 17, constexpr_blockwise_shift_scale from iOS 18
    if job.precision in ("int8", "w8a8") and not (compressed.get("constexpr_affine_dequantize")
                                                  or compressed.get("constexpr_blockwise_shift_scale")):
        problems.append("no int8 weights (constexpr_affine_dequantize / constexpr_blockwise_shift_scale)")
    if job.precision == "palette6" and not compressed.get("constexpr_lut_to_dense"):
        problems.append("no palettized weights (constexpr_lut_to_dense)")
    if job.precision == "w8a8" and not summary["activation_quantize"]:
        problems.append("no activation quantize ops")
    if job.part == "decoder":
        coords = next((f for f in summary["inputs"] if f["name"] == "point_coords"), None)
        if coords is None or len(coords.get("enumerated_shapes", [])) < 2:
            problems.append("point_coords has no enumerated prompt lengths")
    if check is not None and not check.passed:
        problems.append(f"compressed weights do not dequantize to the source within their step ({check.to_dict()})")
    if problems:
        raise ValidationError(f"{job.ctx.spec.name} {job.part} {job.precision}: the Core ML package fails its MIL "
                              "checks: " + "; ".join(problems),
                              hint="report it with the package; --precision fp16 is the plainest conversion")


FORMAT = CoreMLFormat()
