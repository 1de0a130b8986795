"""mIoU of point and box prompts against ground-truth masks, as SAM's own evaluation prompts:

- point: the annotation's first point, positive, multimask output; the candidate with the highest predicted IoU
  is the answer;
- box: the annotation's bbox, single-mask output.

Masks are compared at the image's original resolution after the variant's own upsampling and threshold (what
`edgekit predict` returns). mIoU is the mean over annotations (every mask weighs the same).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from edgekit.accuracy.dataset import EvalImage
from edgekit.accuracy.runners import PairRunner
from edgekit.errors import InputError
from edgekit.io import read_rgb
from edgekit.preprocess import binarize, preprocess_image, transform_coords, upsample_logits
from edgekit.quant.calibration import PromptSample


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def evaluate(runner: PairRunner, spec, model, data: Sequence[EvalImage],
             on_image: Callable[[int, int], None] | None = None) -> dict:
    """{images, masks, point_miou, box_miou} of `runner` on `data`; `model` supplies the family's prompt rule
    (its `prepare_prompts`), `on_image(done, total)` reports progress."""
    recipe = spec.preprocess
    point_ious: list[float] = []
    box_ious: list[float] = []
    for n, item in enumerate(data):
        rgb = read_rgb(item.image)
        x, geo = preprocess_image(recipe, rgb)
        features = runner.encode(x)

        def answer(prompt: PromptSample) -> np.ndarray:
            coords, labels = prompt.decoder_inputs(model)
            low, iou = runner.decode(features, coords, labels)
            k = 0 if prompt.kind == "box" else 1 + int(np.argmax(iou[0, 1:]))
            return binarize(recipe, upsample_logits(recipe, geo, low[:, k:k + 1]))[0, 0]

        for ann in item.annotations:
            gt = ann.mask()
            if gt.shape != rgb.shape[:2]:
                raise InputError(f"{item.image.name}: a mask is {gt.shape[1]}x{gt.shape[0]} but the image is "
                                 f"{rgb.shape[1]}x{rgb.shape[0]}", hint="the RLE size must be the image's [height, width]")
            point = transform_coords(recipe, geo, np.array([ann.point])).astype(np.float32)
            point_ious.append(mask_iou(answer(PromptSample("point", point, np.array([1.0], np.float32), None)), gt))
            box = transform_coords(recipe, geo, ann.box_xyxy.reshape(2, 2)).astype(np.float32)
            box_ious.append(mask_iou(answer(PromptSample("box", None, None, box)), gt))
        if on_image is not None:
            on_image(n + 1, len(data))
    return {"images": len(data), "masks": len(point_ious), "point_miou": float(np.mean(point_ious)),
            "box_miou": float(np.mean(box_ious))}
