"""Artifacts of any format, through the content-addressed store: each is made once and reused after.

`ensure_artifact(ctx, fmt, part, precision, settings)` is the one step every format goes through: it makes the
artifact the precision derives from first (FP32 for INT8, ...), looks the artifact up in the store by its
identity (parent, part, precision, the format's own config, the images), and only when it is missing hands the
format an empty folder to write it into (formats/base.py). Nothing here knows what ONNX or LiteRT is.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from edgekit.formats.base import PARTS, Artifact, Feeds, Format, MakeJob
from edgekit.pipeline.context import ModelContext
from edgekit.quant.calibration import CalibImage, image_seed, load_inputs, sample_prompts
from edgekit.quant.presets import QuantPreset
from edgekit.store import Entry, step_id

__all__ = ["PARTS", "Artifact", "BuildSettings", "ensure_artifact", "ensure_export", "ensure_int8", "artifact_name"]


@dataclass
class BuildSettings:
    """What every artifact of one deploy / export / quantize is made with."""

    validation: Sequence[CalibImage] | Sequence[np.ndarray] = ()  # images the exports are validated on
    calib: Sequence[CalibImage] = ()  # calibration images (precisions in Format.calibrated)
    preset: QuantPreset | None = None
    method: str = "minmax"
    options: dict[str, Any] = field(default_factory=dict)  # format options (ONNX: exporter)


def artifact_name(model: str, part: str, precision: str, suffix: str = ".onnx") -> str:
    return f"{model}.{part}.{precision}{suffix}"


def _cached(ctx: ModelContext, entry_id: str, label: str) -> Entry | None:
    started = time.perf_counter()
    entry = ctx.store.lookup(entry_id)
    if entry is not None:
        ctx.log.add(label, time.perf_counter() - started, True)
    return entry


def features(ctx: ModelContext, x: np.ndarray) -> dict[str, np.ndarray]:
    """The torch encoder's features of one preprocessed image."""
    with torch.inference_mode():
        return {k: v.numpy().copy() for k, v in ctx.model.encode(torch.from_numpy(x)).items()}


def decoder_feeds(ctx: ModelContext, feats: dict[str, np.ndarray], coords: np.ndarray, labels: np.ndarray,
                  mask: np.ndarray | None = None) -> Feeds:
    """The decoder's inputs by name (mask input zero and flagged off unless `mask` is given)."""
    feeds = {**feats, "point_coords": coords, "point_labels": labels}
    if ctx.spec.accepts_mask_input:
        low = ctx.spec.low_res_size
        feeds["mask_input"] = mask if mask is not None else np.zeros((1, 1, low, low), np.float32)
        feeds["has_mask_input"] = np.array([0.0 if mask is None else 1.0], np.float32)
    return feeds


_decoder_feeds = decoder_feeds  # the name fidelity.py and older callers use


def encoder_calibration(ctx: ModelContext, images: Sequence[CalibImage]) -> Iterator[Feeds]:
    for image in images:
        x, _, _ = load_inputs(ctx.spec.preprocess, image)
        yield {"image": x}


def decoder_calibration(ctx: ModelContext, fmt: Format, encoder_fp32: Artifact | None,
                        images: Sequence[CalibImage]) -> Iterator[Feeds]:
    """Decoder inputs on the calibration images: the format's FP32 encoder features, sampled prompts, and the mask
    path (the point prompt's own low-res output fed back) so every branch gets ranges."""
    session = fmt.session(encoder_fp32.path) if fmt.runs_here else None  # else torch's features
    for image in images:
        x, geo, _ = load_inputs(ctx.spec.preprocess, image)
        feats = session.run({"image": x}) if session is not None else features(ctx, x)
        prompts = sample_prompts(ctx.spec.preprocess, geo, seed=image_seed(image))
        for prompt in prompts:
            yield decoder_feeds(ctx, feats, *prompt.decoder_inputs(ctx.model))
        if ctx.spec.accepts_mask_input:
            coords, labels = prompts[0].decoder_inputs(ctx.model)
            with torch.inference_mode():
                out = ctx.model.decode_all({k: torch.from_numpy(v) for k, v in feats.items()},
                                           torch.from_numpy(coords), torch.from_numpy(labels), None, None)
            yield decoder_feeds(ctx, feats, coords, labels, out.low_res_masks[:, :1].numpy())


def _image_ids(images: Sequence[CalibImage] | Sequence[np.ndarray]) -> list[str]:
    return [im.sha256 if isinstance(im, CalibImage) else "testcard" for im in images]


def _label(fmt: Format, part: str, precision: str) -> str:
    """The step's name in the report and the progress line: "export encoder", "quantize decoder"."""
    return f"{'export' if fmt.derives_from(precision) is None else 'quantize'} {part}"


def ensure_artifact(ctx: ModelContext, fmt: Format, part: str, precision: str, settings: BuildSettings,
                    source: Artifact | None = None, encoder_fp32: Artifact | None = None) -> Artifact:
    """The `precision` artifact of one part in format `fmt`, made (with what it derives from) unless the store
    holds it. `source` (the artifact it derives from) and `encoder_fp32` (the FP32 encoder, whose features
    calibrate the decoder) are made here when the caller does not already have them."""
    fmt.check_precision(precision)
    source_precision = fmt.derives_from(precision)
    if source is None and source_precision is not None:
        source = ensure_artifact(ctx, fmt, part, source_precision, settings)
    calibrated = precision in fmt.calibrated
    preset = settings.preset
    if calibrated and fmt.int8_preset is not None:  # the runtime needs its own (TensorRT: symmetric QDQ)
        from edgekit.quant.presets import PRESETS

        preset = PRESETS[fmt.int8_preset]
    if calibrated and part == "decoder" and encoder_fp32 is None and fmt.runs_here:
        encoder_fp32 = ensure_artifact(ctx, fmt, "encoder", "fp32", settings)
    name = fmt.artifact_name(ctx.spec.name, part, precision)
    config: dict[str, Any] = {"file": name, "part": part, "format": fmt.name, "precision": precision,
                              "revision": fmt.revision, **fmt.config(part, precision, settings.options)}
    if source is None:
        config["validation"] = _image_ids(settings.validation)
    if calibrated:
        if preset is None or not settings.calib:
            from edgekit.errors import InputError

            raise InputError(f"{fmt.name} {precision} is calibrated on real images", hint="pass --calib DIR")
        config.update(preset=preset.config(), method=settings.method,
                      calibration=[im.sha256 for im in settings.calib])
    parent = ctx.root_id() if source is None else source.entry.id
    step = f"{fmt.name}-{precision}-{part}"
    entry_id = step_id(parent, step, config)
    label = _label(fmt, part, precision)
    entry = _cached(ctx, entry_id, label)
    if entry is None:
        started = time.perf_counter()
        calibration = None
        if calibrated:
            calib = list(settings.calib)
            calibration = ((lambda: encoder_calibration(ctx, calib)) if part == "encoder" else
                           (lambda: decoder_calibration(ctx, fmt, encoder_fp32, calib)))
        with ctx.store.build(entry_id, step, parent, config) as folder:
            job = MakeJob(ctx=ctx, part=part, precision=precision, folder=folder, file=name,
                          validation=settings.validation, source=source, encoder_fp32=encoder_fp32,
                          calibration=calibration, preset=preset, method=settings.method,
                          options=dict(settings.options))
            info = fmt.make(job)
            (folder / "info.json").write_text(json.dumps(info, indent=1))
        ctx.log.add(label, time.perf_counter() - started, False)
        entry = ctx.store.get(entry_id)
        entry.reused = False  # made just now (Store.get marks what it finds as reused)
    return Artifact(part, precision, entry, ctx.store.root, format=fmt.name)


# The ONNX steps under their older names (benchmarks and tests call them).
def ensure_export(ctx: ModelContext, part: str, images: Sequence[CalibImage] | Sequence[np.ndarray],
                  prefer: str = "dynamo") -> Artifact:
    from edgekit.formats import get_format

    return ensure_artifact(ctx, get_format("onnx"), part, "fp32",
                           BuildSettings(validation=images, options={"exporter": prefer}))


def ensure_int8(ctx: ModelContext, fp32: Artifact, encoder_fp32: Artifact, calib: Sequence[CalibImage],
                preset: QuantPreset, method: str) -> Artifact:
    """The static INT8 of an FP32 artifact."""
    from edgekit.formats import get_format

    settings = BuildSettings(calib=calib, preset=preset, method=method)
    return ensure_artifact(ctx, get_format(fp32.format), fp32.part, "int8", settings, source=fp32,
                           encoder_fp32=encoder_fp32)
