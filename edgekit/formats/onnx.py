"""The ONNX format: torch's dynamo exporter (legacy fallback), validated against torch; static INT8 as QDQ with
onnxruntime.quantization; ONNX Runtime on devices and here.

The layer map is built from the node metadata the exporter writes (exporters/layer_map.py). The FP32 encoder of
a variant with an external encoder (NanoSAM's ONNX release, `--encoder-onnx`) is imported, not exported.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.formats.base import Format, HostSession, MakeJob


class OrtSession:
    """An ONNX file under ONNX Runtime's CPU provider, as a HostSession."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        from edgekit.exporters.validate import ort_session

        self._session = ort_session(path, threads)
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        self.output_names = tuple(o.name for o in self._session.get_outputs())

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        given = {k: v for k, v in feeds.items() if k in self.input_names}
        return dict(zip(self.output_names, self._session.run(None, given)))


def _inputs(job: MakeJob) -> list[tuple[np.ndarray, Any, np.ndarray]]:
    """(x, geometry, rgb) of every validation image."""
    from edgekit.preprocess import preprocess_image
    from edgekit.quant.calibration import CalibImage, load_inputs

    recipe = job.ctx.spec.preprocess
    return [load_inputs(recipe, im) if isinstance(im, CalibImage) else (*preprocess_image(recipe, im), im)
            for im in job.validation]


def decoder_cases(job: MakeJob, inputs: list, feats0: dict[str, np.ndarray]) -> list[tuple]:
    """(features, coords, labels) for the prompts sampled on every validation image (torch's features)."""
    from edgekit.pipeline.artifacts import features
    from edgekit.quant.calibration import CalibImage, sample_prompts

    cases = []
    for (x, geo, _), image in zip(inputs, job.validation):
        feats = feats0 if x is inputs[0][0] else features(job.ctx, x)
        seed = int(image.sha256[:8], 16) if isinstance(image, CalibImage) else 7
        for prompt in sample_prompts(job.ctx.spec.preprocess, geo, seed=seed):
            cases.append((feats, *prompt.decoder_inputs(job.ctx.model)))
    return cases


CALIBRATION_CACHE = "calibration.json"  # beside an INT8 artifact: its activation ranges (onnxruntime's format)


class OnnxFormat(Format):
    name = "onnx"
    suffix = ".onnx"
    precisions = ("fp32", "int8")
    calibrated = frozenset({"int8"})
    runtime = "onnxruntime"
    mixed_precision = True  # layers can be kept in float on the INT8 ranges (pipeline/mixed.py)

    def config(self, part: str, precision: str, options: dict[str, Any]) -> dict[str, Any]:
        from edgekit.exporters.torch2onnx import EXPORT_REVISION

        if precision == "fp32":
            return {"exporter": options.get("exporter", "dynamo"), "export_revision": EXPORT_REVISION}
        return {"calibration_cache": 1}  # INT8 keeps its activation ranges (mixed precision re-quantizes on them)

    def session(self, artifact_path: Path, threads: int = 0) -> HostSession:
        return OrtSession(artifact_path, threads)

    def make(self, job: MakeJob) -> dict[str, Any]:
        if job.precision == "fp32":
            if job.part == "encoder" and job.ctx.encoder_onnx is not None:
                from edgekit.pipeline.import_encoder import import_encoder

                return import_encoder(job.ctx, job.validation, job.folder, job.file)
            return self._export(job)
        return self._quantize(job)

    def _export(self, job: MakeJob) -> dict[str, Any]:
        from edgekit.exporters.graphs import DecoderGraph, EncoderGraph, decoder_example, decoder_signature, encoder_signature
        from edgekit.exporters.torch2onnx import export_onnx
        from edgekit.exporters.validate import validate_decoder, validate_encoder
        from edgekit.pipeline.artifacts import decoder_feeds, features

        ctx, path = job.ctx, job.folder / job.file
        prefer = job.options.get("exporter", "dynamo")
        inputs = _inputs(job)
        x0 = inputs[0][0]
        feats0 = features(ctx, x0)
        names = tuple(feats0)
        if job.part == "encoder":
            result = export_onnx(EncoderGraph(ctx.model, names), (torch.from_numpy(x0),), encoder_signature(names),
                                 path, prefer=prefer)
            check = validate_encoder(path, ctx.model, ctx.spec, [x for x, _, _ in inputs])
            np.savez(job.folder / "inputs.npz", image=x0)
        else:
            args = decoder_example(ctx.spec, {k: torch.from_numpy(v) for k, v in feats0.items()})
            graph = DecoderGraph(ctx.model, names, ctx.spec.extra_outputs, ctx.spec.accepts_mask_input)
            result = export_onnx(graph, args, decoder_signature(ctx.spec, names), path, prefer=prefer)
            cases = decoder_cases(job, inputs, feats0)
            check = validate_decoder(path, ctx.model, ctx.spec, cases)
            np.savez(job.folder / "inputs.npz", **decoder_feeds(ctx, feats0, *cases[0][1:]))
        result.layer_map.write(job.folder / "layer_map.json")
        return {"exporter": result.exporter, "opset": result.opset, "dynamo_error": result.dynamo_error,
                "validation": check.to_dict(), "nodes": len(result.layer_map.nodes)}

    def _quantize(self, job: MakeJob) -> dict[str, Any]:
        import onnx

        from edgekit.exporters.layer_map import build_layer_map
        from edgekit.quant.ort_static import quantize_static_onnx

        assert job.source is not None and job.calibration is not None and job.preset is not None
        path = job.folder / job.file
        samples = quantize_static_onnx(job.source.path, path, job.calibration(), job.preset, job.method,
                                       calibration_cache=job.folder / CALIBRATION_CACHE)
        int8_map = build_layer_map(onnx.load(str(path), load_external_data=False), known=job.source.layer_map)
        int8_map.write(job.folder / "layer_map.json")
        (job.folder / "inputs.npz").write_bytes(job.source.inputs.read_bytes())
        return {"samples": samples, "preset": job.preset.name, "method": job.method, "reasons": job.preset.reasons}

    def make_mixed(self, job: MakeJob, int8, float_nodes) -> dict[str, Any]:
        import onnx

        from edgekit.exporters.layer_map import build_layer_map
        from edgekit.quant.ort_static import quantize_static_onnx

        assert job.source is not None and job.preset is not None
        cache = int8.entry.path(int8.root, CALIBRATION_CACHE)
        path = job.folder / job.file
        quantize_static_onnx(job.source.path, path, iter(()), job.preset, job.method, calibration_cache=cache,
                             float_nodes=float_nodes)
        build_layer_map(onnx.load(str(path), load_external_data=False), known=job.source.layer_map).write(
            job.folder / "layer_map.json")
        (job.folder / "inputs.npz").write_bytes(job.source.inputs.read_bytes())
        return {"preset": job.preset.name, "method": job.method, "float_nodes": sorted(float_nodes),
                "ranges_from": int8.entry.id}

    def layer_sensitivity(self, fp32, int8, preset, feeds, folder: Path) -> list:
        from edgekit.quant.bimodal import SIGNS, load_signs
        from edgekit.quant.ort_static import prepare_float
        from edgekit.quant.sensitivity import measure

        # the graph the quantizer started from (its key signs too): the same tensor names as the QDQ graph
        signs = load_signs(int8.entry.path(int8.root, SIGNS)) if preset.bimodal else None
        return measure(prepare_float(fp32.path, folder, preset, signs), int8.path, feeds, int8.layer_map)


FORMAT = OnnxFormat()
