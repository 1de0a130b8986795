"""What INT8 costs in accuracy: the INT8 pipeline against the FP32 one on held-out images.

Measured on the exported artifacts themselves (each run on this machine by its own format's runtime: ONNX Runtime,
LiteRT, ...), for the prompts users give:
points (the best of the multimask candidates, as an app would pick) and boxes (the single mask).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from edgekit.accuracy.miou import mask_iou
from edgekit.errors import ValidationError
from edgekit.formats import get_format
from edgekit.pipeline.artifacts import Artifact, decoder_feeds
from edgekit.pipeline.context import ModelContext
from edgekit.preprocess import binarize, upsample_logits
from edgekit.quant.calibration import CalibImage, image_seed, load_inputs, sample_prompts


def _db(signal: float, noise: float) -> float | None:
    # Identical outputs have no finite SQNR; the report stores null rather than Infinity.
    return None if noise == 0 else float(10 * np.log10(max(signal, 1e-30) / noise))


def measure_fidelity(ctx: ModelContext, encoders: tuple[Artifact, Artifact], decoders: tuple[Artifact, Artifact],
                     held_out: Sequence[CalibImage], target: float | None = None) -> dict:
    """encoders / decoders: (fp32, quantized). Returns the report's `fidelity` block."""
    enc32, enc8 = (get_format(a.format).session(a.path) for a in encoders)
    dec32, dec8 = (get_format(a.format).session(a.path) for a in decoders)
    emb = [0.0, 0.0]  # signal, noise over all images (pooled, so big images do not dominate less than small ones)
    logits = [0.0, 0.0]
    ious: dict[str, list[float]] = {"point": [], "box": []}
    recipe = ctx.spec.preprocess
    for image in held_out:
        x, geo, _ = load_inputs(recipe, image)
        f32 = enc32.run({"image": x})
        f8 = enc8.run({"image": x})
        ref, got = f32["image_embeddings"].astype(np.float64), f8["image_embeddings"].astype(np.float64)
        emb[0] += float(np.sum(ref ** 2))
        emb[1] += float(np.sum((ref - got) ** 2))
        for prompt in sample_prompts(recipe, geo, seed=image_seed(image)):
            coords, labels = prompt.decoder_inputs(ctx.model)
            out32 = dec32.run(decoder_feeds(ctx, f32, coords, labels))
            m32, iou32 = out32["low_res_masks"], out32["iou_predictions"]
            m8 = dec8.run(decoder_feeds(ctx, f8, coords, labels))["low_res_masks"]
            logits[0] += float(np.sum(m32.astype(np.float64) ** 2))
            logits[1] += float(np.sum((m32.astype(np.float64) - m8) ** 2))
            # index 0 is the single-mask answer; 1.. the multimask candidates (pick FP32's best, as apps do)
            k = 0 if prompt.kind == "box" else 1 + int(np.argmax(iou32[0, 1:]))
            a = binarize(recipe, upsample_logits(recipe, geo, m32[:, k:k + 1]))
            b = binarize(recipe, upsample_logits(recipe, geo, m8[:, k:k + 1]))
            ious["box" if prompt.kind == "box" else "point"].append(mask_iou(a, b))
    point = float(np.mean(ious["point"])) if ious["point"] else None
    box = float(np.mean(ious["box"])) if ious["box"] else None
    overall = float(np.mean(ious["point"] + ious["box"])) if ious["point"] or ious["box"] else None
    passed = None if target is None or overall is None else overall >= target
    return {"reference": "fp32", "precision": encoders[1].precision, "format": encoders[1].format, "images": len(held_out), "embedding_sqnr_db": _db(*emb), "logits_sqnr_db": _db(*logits),
            "mask_iou": overall, "mask_iou_point": point, "mask_iou_box": box, "target": target, "passed": passed}


def cached_fidelity(ctx: ModelContext, encoders: tuple[Artifact, Artifact], decoders: tuple[Artifact, Artifact],
                    held_out: Sequence[CalibImage], target: float | None = None) -> tuple[dict, bool]:
    """measure_fidelity through the artifact store (it depends only on the four artifacts and the images);
    returns (fidelity, reused). The pass/fail against `target` is decided fresh each time."""
    import json
    import time

    from edgekit.store import step_id

    config = {"held_out": [im.sha256 for im in held_out]}
    parent = step_id(None, "pair", {"artifacts": [a.entry.id for a in (*encoders, *decoders)]})
    entry_id = step_id(parent, "fidelity", config)
    entry = ctx.store.lookup(entry_id)
    if entry is None:
        started = time.perf_counter()
        measured = measure_fidelity(ctx, encoders, decoders, held_out, None)
        with ctx.store.build(entry_id, "fidelity", parent, config) as folder:
            (folder / "fidelity.json").write_text(json.dumps(measured))
        ctx.log.add("fidelity", time.perf_counter() - started, False)
        entry = ctx.store.get(entry_id)
        reused = False
    else:
        ctx.log.add("fidelity", 0.0, True)
        reused = True
    fidelity = json.loads(entry.path(ctx.store.root, "fidelity.json").read_text())
    fidelity["target"] = target
    fidelity["passed"] = None if target is None or fidelity["mask_iou"] is None else fidelity["mask_iou"] >= target
    return fidelity, reused


def check_target(fidelity: dict, mixed: dict | None = None, fmt=None) -> None:
    """Exit 7 when the quantized pair misses --fidelity-target / --sqnr-target (and mixed precision, when it was
    searched, could not meet them either)."""
    if fidelity.get("passed") is not False:
        return
    sqnr = fidelity["embedding_sqnr_db"]
    sqnr_text = "n/a" if sqnr is None else f"{sqnr:.1f} dB"
    wanted = []
    if fidelity.get("target") is not None:
        wanted.append(f"mask IoU {fidelity['target']:.4f}")
    if fidelity.get("sqnr_target") is not None:
        wanted.append(f"embedding SQNR {fidelity['sqnr_target']:.1f} dB")
    message = (f"{fidelity.get('precision', 'int8').upper()} misses the target ({', '.join(wanted)}): mask IoU "
               f"{fidelity['mask_iou']:.4f} against FP32 (points {fidelity['mask_iou_point']:.4f}, boxes "
               f"{fidelity['mask_iou_box']:.4f}), embedding SQNR {sqnr_text}")
    if mixed is not None:
        message += (f"; with all {len(mixed['float_nodes'])} quantized layers searched, mixed precision reached "
                    f"mask IoU {mixed['fidelity']['mask_iou']:.4f}")
        hint = "lower the target, try --calib-method percentile or entropy, or deploy --precision fp32"
    elif fmt is not None and not getattr(fmt, "mixed_precision", False):
        hint = (f"--format {fmt.name} cannot keep layers in float yet: deploy --format onnx to have the most sensitive "
                "layers fall back automatically, try --calib-method percentile, or --precision fp32")
    elif fmt is not None:
        hint = ("deploy without --no-sensitivity to keep the most sensitive layers in float automatically, try "
                "--calib-method percentile or entropy, or deploy --precision fp32")
    else:
        hint = "try --calib-method percentile or entropy, more calibration images, or deploy --precision fp32"
    raise ValidationError(message, hint=hint)
