"""The LiteRT format: .tflite made by litert-torch, run by LiteRT (XNNPACK) on devices and here.

FP32 is converted from torch and validated against it on real images with the ONNX tolerances (1e-4 on
embeddings, 1e-3 on logits, with the same FP64 noise floor: exporters/validate.py). The other precisions are
made from the FP32 .tflite by ai-edge-quantizer (quant/litert_quant.py says why each recipe is what it is). INT8
keeps its calibration ranges, so mixed precision (pipeline/mixed.py) re-quantizes on them with the most sensitive
ops in float; their sensitivity is measured op by op (quant/litert_sensitivity.py).
The layer map comes from the module locations litert-torch writes into tensor names
(exporters/litert_layer_map.py). Decoders have one signature per prompt count (exporters/torch2litert.py).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.formats.base import Format, HostSession, MakeJob

EXTRA = "litert-export"
INSTALL_HINT = f"pip install -c constraints.txt -e '.[{EXTRA}]' (litert-torch and ai-edge-quantizer)"
# Variants litert-torch cannot convert yet, with the op it fails on (measured by tests/test_litert_export.py,
# which also proves the refusal is what a user sees).
UNSUPPORTED: dict[str, str] = {}
# Variants whose encoder and decoder have been converted at every precision here, FP32 validated against torch
# on a real photograph (tests/test_litert_export.py; tools/format_survey.py, its table in the closing notes); the
# others are expected to convert but not yet surveyed, and `edgekit models` marks them so. Surveyed and not
# verified: edgesam (its encoder misses the FP32 tolerance with synthetic weights: 4.7e-3 against 1.65e-3 allowed)
# and efficientsam-ti (killed for memory on 24 GB before calibration checked its memory first).
VERIFIED = frozenset({"mobilesam", "tinysam", "efficientvit-sam-l0", "efficientvit-sam-l1", "efficientvit-sam-l2",
                      "efficienttam-ti"})


def _wrapper(ctx: Any, part: str, names: tuple[str, ...]) -> torch.nn.Module:
    from edgekit.exporters.graphs import DecoderGraph, EncoderGraph, decoder_signature
    from edgekit.exporters.torch2litert import LiteRTDecoder, LiteRTEncoder

    if part == "encoder":
        return LiteRTEncoder(EncoderGraph(ctx.model, names)).eval()
    graph = DecoderGraph(ctx.model, names, ctx.spec.extra_outputs, ctx.spec.accepts_mask_input)
    return LiteRTDecoder(graph, decoder_signature(ctx.spec, names).inputs).eval()


def _signature_inputs(path: Path) -> dict[str, str]:
    """The first signature's input names -> tensor names (devices feed inputs.npz by tensor name)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    first = next(iter(interpreter.get_signature_list()))
    details = interpreter.get_signature_runner(first).get_input_details()
    return {name: d["name"] for name, d in details.items()}


def _pad_case(case: tuple, count: int) -> tuple:
    from edgekit.formats.litert_session import pad_prompt

    feats, coords, labels = case
    return (feats, *pad_prompt(coords, labels, count))


def _fit(case: tuple) -> tuple:
    """A case padded to the decoder signature that will run it, so torch sees the very same inputs."""
    from edgekit.exporters.torch2litert import POINT_COUNTS

    n = case[1].shape[1]
    return _pad_case(case, next(c for c in POINT_COUNTS if c >= n))


class LiteRTFormat(Format):
    name = "litert"
    suffix = ".tflite"
    precisions = ("fp32", "fp16", "int8-dynamic", "int8")
    calibrated = frozenset({"int8"})
    runtime = "litert"
    mixed_precision = True

    def config(self, part: str, precision: str, options: dict[str, Any]) -> dict[str, Any]:
        from edgekit.exporters.torch2litert import POINT_COUNTS
        from edgekit.quant.litert_quant import RECIPES

        if precision == "fp32":
            return {"point_counts": list(POINT_COUNTS)} if part == "decoder" else {}
        if precision == "int8":  # keeps its ranges (calibration_ranges.json) for mixed precision
            return {"recipe": RECIPES[precision], "ranges": 1}
        return {"recipe": RECIPES[precision]}

    def available(self) -> str | None:
        missing = [m for m in ("litert_torch", "ai_edge_quantizer", "ai_edge_litert") if importlib.util.find_spec(m) is None]
        return None if not missing else f"{', '.join(missing)} not installed: {INSTALL_HINT}"

    def supports(self, spec: Any) -> str | None:
        if getattr(spec, "external_encoder", False):
            return "its encoder is an ONNX file (--encoder-onnx): ONNX only"
        return UNSUPPORTED.get(spec.name)

    def session(self, artifact_path: Path, threads: int = 0) -> HostSession:
        from edgekit.formats.litert_session import LiteRTSession

        return LiteRTSession(artifact_path, threads)

    def make(self, job: MakeJob) -> dict[str, Any]:
        from edgekit.errors import InputError, ValidationError

        problem = self.available()
        if problem:
            raise InputError(f"cannot make LiteRT artifacts here: {problem}", hint=INSTALL_HINT)
        refusal = self.supports(job.ctx.spec)
        if refusal:
            raise ValidationError(f"{job.ctx.spec.name} does not convert to LiteRT yet: {refusal}",
                                  hint="use --format onnx for this variant")
        if job.precision == "fp32":
            return self._convert(job)
        return self._quantize(job)

    def _convert(self, job: MakeJob) -> dict[str, Any]:
        from edgekit.exporters.graphs import decoder_example, decoder_signature
        from edgekit.exporters.litert_layer_map import build_litert_layer_map
        from edgekit.exporters.torch2litert import POINT_COUNTS, convert
        from edgekit.exporters.validate import validate_decoder, validate_encoder
        from edgekit.formats.onnx import _inputs, decoder_cases
        from edgekit.pipeline.artifacts import decoder_feeds, features

        ctx, path = job.ctx, job.folder / job.file
        inputs = _inputs(job)
        x0 = inputs[0][0]
        feats0 = features(ctx, x0)
        names = tuple(feats0)
        wrapper = _wrapper(ctx, job.part, names)
        what = f"{ctx.spec.name} {job.part}"
        if job.part == "encoder":
            result = convert([("encoder", wrapper, {"image": torch.from_numpy(x0)})], path, what)
            session = self.session(path)
            check = validate_encoder(path, ctx.model, ctx.spec, [x for x, _, _ in inputs], session=session,
                                     runtime="LiteRT")
            primary = {"image": x0}
        else:
            sig = decoder_signature(ctx.spec, names)
            t_feats = {k: torch.from_numpy(v) for k, v in feats0.items()}
            signatures = []
            for count in POINT_COUNTS:
                args = decoder_example(ctx.spec, t_feats, num_points=min(count, 3))
                kwargs = dict(zip(sig.inputs, args))
                kwargs["point_coords"], kwargs["point_labels"] = (torch.from_numpy(a) for a in _pad_tensors(
                    kwargs["point_coords"], kwargs["point_labels"], count))
                signatures.append((f"points_{count}", wrapper, kwargs))
            result = convert(signatures, path, what)
            cases = [_fit(c) for c in decoder_cases(job, inputs, feats0)]
            cases += [_pad_case(cases[0], count) for count in POINT_COUNTS if all(c[1].shape[1] != count for c in cases)]
            check = validate_decoder(path, ctx.model, ctx.spec, cases, session=self.session(path), runtime="LiteRT")
            primary = decoder_feeds(ctx, *_pad_case(cases[0], POINT_COUNTS[0]))
        layer_map = build_litert_layer_map(path, wrapper)
        layer_map.write(job.folder / "layer_map.json")
        tensor_names = _signature_inputs(path)
        np.savez(job.folder / "inputs.npz", **{tensor_names[k]: v for k, v in primary.items() if k in tensor_names})
        attributed = sum(1 for m in layer_map.nodes.values() if m != "<graph>")
        return {"exporter": "litert-torch", "litert_torch": result.litert_torch, "signatures": list(result.signatures),
                "seconds": round(result.seconds, 1), "validation": check.to_dict(), "nodes": len(layer_map.nodes),
                "nodes_attributed": attributed, "inputs": tensor_names}

    def _quantize(self, job: MakeJob) -> dict[str, Any]:
        from edgekit.quant.litert_quant import RANGES, quantize_tflite, save_ranges

        assert job.source is not None
        path = job.folder / job.file
        calibration = None
        if job.calibration is not None:
            calibration = _signature_feeds(job.source.path, job.calibration())
        made = quantize_tflite(job.source.path, path, job.precision, calibration)
        ranges = made.pop("ranges")
        if ranges:
            save_ranges(ranges, job.folder / RANGES)
        self._finish(job, path)
        return {"exporter": "ai-edge-quantizer", **made, "method": "minmax" if job.calibration else None}

    def _finish(self, job: MakeJob, path: Path) -> None:
        from edgekit.exporters.litert_layer_map import build_litert_layer_map

        assert job.source is not None
        _check_runs(self.session(path), job.source)
        wrapper = _wrapper(job.ctx, job.part, ())  # the module tree is all the layer map needs
        build_litert_layer_map(path, wrapper).write(job.folder / "layer_map.json")
        (job.folder / "inputs.npz").write_bytes(job.source.inputs.read_bytes())

    def make_mixed(self, job: MakeJob, int8, float_nodes) -> dict[str, Any]:
        from edgekit.errors import ValidationError
        from edgekit.quant.litert_quant import RANGES, load_ranges, quantize_tflite

        assert job.source is not None
        saved = int8.entry.path(int8.root, RANGES)
        if not saved.exists():
            raise ValidationError(f"the LiteRT INT8 artifact {int8.name} kept no calibration ranges",
                                  hint=f"delete its store folder ({saved.parent}) so INT8 is made again with them")
        path = job.folder / job.file
        made = quantize_tflite(job.source.path, path, "int8", ranges=load_ranges(saved), float_ops=list(float_nodes))
        made.pop("ranges")
        self._finish(job, path)
        return {"exporter": "ai-edge-quantizer", "recipe": made["recipe"], "float_nodes": sorted(float_nodes),
                "ranges_from": int8.entry.id}

    def layer_sensitivity(self, fp32, int8, preset, feeds, folder: Path) -> list:
        from edgekit.quant.litert_sensitivity import measure

        return measure(fp32.path, int8.path, feeds, int8.layer_map)


def _pad_tensors(coords: torch.Tensor, labels: torch.Tensor, count: int) -> tuple[np.ndarray, np.ndarray]:
    from edgekit.formats.litert_session import pad_prompt

    return pad_prompt(coords.numpy(), labels.numpy(), count)


def _signature_feeds(fp32: Path, feeds) -> dict[str, list[dict[str, np.ndarray]]]:
    """Calibration feeds for every signature: the encoder's one, or each decoder prompt padded to every count
    that holds it (the quantizer calibrates each signature's subgraph on its own inputs)."""
    from edgekit.formats.litert_session import LiteRTSession, pad_prompt

    session = LiteRTSession(fp32)
    out: dict[str, list] = {name: [] for name in session.signatures}
    for feed in feeds:
        if not session.point_counts:
            out[next(iter(session.signatures))].append(feed)
            continue
        n = feed["point_coords"].shape[1]
        for count, name in session.point_counts.items():
            if count >= n:
                coords, labels = pad_prompt(feed["point_coords"], feed["point_labels"], count)
                out[name].append({**feed, "point_coords": coords, "point_labels": labels})
    return out


def _check_runs(session: HostSession, source: Any) -> None:
    """A quantized model must run on the stored inputs and give finite outputs (accuracy is fidelity's job)."""
    from edgekit.errors import ValidationError
    from edgekit.formats.litert_session import LiteRTSession

    with np.load(source.inputs) as data:
        given = {k: data[k] for k in data.files}
    assert isinstance(session, LiteRTSession)
    by_tensor = source.info.get("inputs", {})
    feeds = {name: given[tensor] for name, tensor in by_tensor.items() if tensor in given}
    out = session.run(feeds)
    bad = [k for k, v in out.items() if not np.all(np.isfinite(v))]
    if bad:
        raise ValidationError(f"the quantized LiteRT model gives NaN/Inf in {', '.join(bad)}",
                              hint="try another precision, or --calib with more images")


FORMAT = LiteRTFormat()
