"""Export and INT8 steps, through the content-addressed store: each is built once and reused after."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from edgekit.exporters.graphs import DecoderGraph, EncoderGraph, decoder_example, decoder_signature, encoder_signature
from edgekit.exporters.layer_map import LayerMap, build_layer_map
from edgekit.pipeline.context import ModelContext
from edgekit.quant.calibration import CalibImage, image_seed, load_inputs, sample_prompts
from edgekit.quant.presets import QuantPreset
from edgekit.store import Entry, step_id

PARTS = ("encoder", "decoder")


@dataclass
class Artifact:
    part: str
    precision: str
    entry: Entry
    root: Path

    @property
    def name(self) -> str:
        return self.entry.config["file"]

    @property
    def path(self) -> Path:
        return self.entry.path(self.root, self.name)

    @property
    def layer_map(self) -> LayerMap:
        return LayerMap.read(self.entry.path(self.root, "layer_map.json"))

    @property
    def inputs(self) -> Path:
        return self.entry.path(self.root, "inputs.npz")

    @property
    def info(self) -> dict:
        return json.loads(self.entry.path(self.root, "info.json").read_text())

    @property
    def reused(self) -> bool:
        return self.entry.reused

    def files(self) -> list[Path]:
        """The model and, when it has one, its external-data file."""
        data = self.path.with_name(self.name + ".data")
        return [self.path] + ([data] if data.exists() else [])


def artifact_name(model: str, part: str, precision: str) -> str:
    return f"{model}.{part}.{precision}.onnx"


def _cached(ctx: ModelContext, entry_id: str, label: str) -> Entry | None:
    started = time.perf_counter()
    entry = ctx.store.lookup(entry_id)
    if entry is not None:
        ctx.log.add(label, time.perf_counter() - started, True)
    return entry


def _features(ctx: ModelContext, x: np.ndarray) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        return {k: v.numpy().copy() for k, v in ctx.model.encode(torch.from_numpy(x)).items()}


def _decoder_feeds(ctx: ModelContext, features: dict[str, np.ndarray], coords: np.ndarray, labels: np.ndarray,
                   mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    feeds = {**features, "point_coords": coords, "point_labels": labels}
    if ctx.spec.accepts_mask_input:
        low = ctx.spec.low_res_size
        feeds["mask_input"] = mask if mask is not None else np.zeros((1, 1, low, low), np.float32)
        feeds["has_mask_input"] = np.array([0.0 if mask is None else 1.0], np.float32)
    return feeds


def ensure_export(ctx: ModelContext, part: str, images: Sequence[CalibImage] | Sequence[np.ndarray],
                  prefer: str = "dynamo") -> Artifact:
    """The FP32 ONNX of one part, validated against torch on `images` (files, or RGB arrays)."""
    from edgekit.exporters.torch2onnx import EXPORT_REVISION, export_onnx
    from edgekit.exporters.validate import validate_decoder, validate_encoder

    name = artifact_name(ctx.spec.name, part, "fp32")
    if part == "encoder" and ctx.encoder_onnx is not None:  # the user's ONNX file is the FP32 encoder
        from edgekit.pipeline.import_encoder import import_encoder

        return import_encoder(ctx, images, name)
    image_ids = [im.sha256 if isinstance(im, CalibImage) else "testcard" for im in images]
    config = {"file": name, "part": part, "format": "onnx", "exporter": prefer, "validation": image_ids,
              "revision": EXPORT_REVISION}
    entry_id = step_id(ctx.root_id(), f"export-{part}", config)
    entry = _cached(ctx, entry_id, f"export {part}")
    if entry is None:
        started = time.perf_counter()
        from edgekit.preprocess import preprocess_image

        inputs = [load_inputs(ctx.spec.preprocess, im) if isinstance(im, CalibImage)
                  else (*preprocess_image(ctx.spec.preprocess, im), im) for im in images]
        model = ctx.model
        with ctx.store.build(entry_id, f"export-{part}", ctx.root_id(), config) as folder:
            x0 = inputs[0][0]
            features0 = _features(ctx, x0)
            names = tuple(features0)
            if part == "encoder":
                result = export_onnx(EncoderGraph(model, names), (torch.from_numpy(x0),), encoder_signature(names),
                                     folder / name, prefer=prefer)
                check = validate_encoder(folder / name, model, ctx.spec, [x for x, _, _ in inputs])
                np.savez(folder / "inputs.npz", image=x0)
            else:
                args = decoder_example(ctx.spec, {k: torch.from_numpy(v) for k, v in features0.items()})
                graph = DecoderGraph(model, names, ctx.spec.extra_outputs, ctx.spec.accepts_mask_input)
                result = export_onnx(graph, args, decoder_signature(ctx.spec, names), folder / name, prefer=prefer)
                cases = []
                for (x, geo, _), im_id in zip(inputs, image_ids):
                    feats = features0 if x is x0 else _features(ctx, x)
                    for prompt in sample_prompts(ctx.spec.preprocess, geo, seed=int(im_id[:8], 16) if im_id != "testcard" else 7):
                        cases.append((feats, *prompt.decoder_inputs(model)))
                check = validate_decoder(folder / name, model, ctx.spec, cases)
                np.savez(folder / "inputs.npz", **_decoder_feeds(ctx, features0, *cases[0][1:]))
            result.layer_map.write(folder / "layer_map.json")
            info = {"exporter": result.exporter, "opset": result.opset, "dynamo_error": result.dynamo_error,
                    "validation": check.to_dict(), "nodes": len(result.layer_map.nodes)}
            (folder / "info.json").write_text(json.dumps(info, indent=1))
        ctx.log.add(f"export {part}", time.perf_counter() - started, False)
        entry = ctx.store.get(entry_id)
    return Artifact(part, "fp32", entry, ctx.store.root)


def _encoder_feeds(ctx: ModelContext, images: Sequence[CalibImage]) -> Iterator[dict[str, np.ndarray]]:
    for image in images:
        x, _, _ = load_inputs(ctx.spec.preprocess, image)
        yield {"image": x}


def decoder_calibration(ctx: ModelContext, encoder_fp32: Artifact, images: Sequence[CalibImage]) -> Iterator[dict[str, np.ndarray]]:
    """Decoder inputs on the calibration images: FP32 encoder features, sampled prompts, and the mask path
    (the point prompt's own low-res output fed back) so every branch gets ranges."""
    from edgekit.exporters.validate import ort_session

    session = ort_session(encoder_fp32.path)
    names = [o.name for o in session.get_outputs()]
    for image in images:
        x, geo, _ = load_inputs(ctx.spec.preprocess, image)
        features = dict(zip(names, session.run(None, {"image": x})))
        prompts = sample_prompts(ctx.spec.preprocess, geo, seed=image_seed(image))
        for prompt in prompts:
            yield _decoder_feeds(ctx, features, *prompt.decoder_inputs(ctx.model))
        if ctx.spec.accepts_mask_input:
            coords, labels = prompts[0].decoder_inputs(ctx.model)
            with torch.inference_mode():
                out = ctx.model.decode_all({k: torch.from_numpy(v) for k, v in features.items()},
                                           torch.from_numpy(coords), torch.from_numpy(labels), None, None)
            yield _decoder_feeds(ctx, features, coords, labels, out.low_res_masks[:, :1].numpy())


def ensure_int8(ctx: ModelContext, fp32: Artifact, encoder_fp32: Artifact, calib: Sequence[CalibImage],
                preset: QuantPreset, method: str) -> Artifact:
    """The static INT8 (QDQ) model of an FP32 artifact, calibrated on `calib`."""
    import onnx

    from edgekit.quant.ort_static import quantize_static_onnx

    name = artifact_name(ctx.spec.name, fp32.part, "int8")
    config = {"file": name, "part": fp32.part, "preset": preset.config(), "method": method,
              "calibration": [im.sha256 for im in calib]}
    entry_id = step_id(fp32.entry.id, f"quantize-{fp32.part}", config)
    entry = _cached(ctx, entry_id, f"quantize {fp32.part}")
    if entry is None:
        started = time.perf_counter()
        feeds = (_encoder_feeds(ctx, calib) if fp32.part == "encoder" else decoder_calibration(ctx, encoder_fp32, calib))
        with ctx.store.build(entry_id, f"quantize-{fp32.part}", fp32.entry.id, config) as folder:
            samples = quantize_static_onnx(fp32.path, folder / name, feeds, preset, method)
            int8_map = build_layer_map(onnx.load(str(folder / name), load_external_data=False), known=fp32.layer_map)
            int8_map.write(folder / "layer_map.json")
            (folder / "inputs.npz").write_bytes(fp32.inputs.read_bytes())
            (folder / "info.json").write_text(json.dumps({"samples": samples, "preset": preset.name, "method": method,
                                                          "reasons": preset.reasons}, indent=1))
        ctx.log.add(f"quantize {fp32.part}", time.perf_counter() - started, False)
        entry = ctx.store.get(entry_id)
    return Artifact(fp32.part, "int8", entry, ctx.store.root)
