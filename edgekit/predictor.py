"""The SamPredictor-style API over any registered variant: set_image once, predict per prompt."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from edgekit.errors import InputError
from edgekit.preprocess import ImageGeometry, binarize, preprocess_image, transform_coords, upsample_logits
from edgekit.variants.base import SamModel, VariantSpec


@dataclass
class Prediction:
    """What `predict` returns: attributes, or dict-style access (`out["masks"]`), shapes as SamPredictor's:
    masks (K, H, W) bool, iou_predictions (K,), low_res_masks (K, h, w) logits."""

    masks: np.ndarray
    iou_predictions: np.ndarray
    low_res_masks: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. SAM 2's object_score_logits

    def _as_dict(self) -> dict[str, np.ndarray]:
        return {"masks": self.masks, "iou_predictions": self.iou_predictions, "low_res_masks": self.low_res_masks,
                **self.extras}

    def __getitem__(self, key: str) -> np.ndarray:
        return self._as_dict()[key]

    def __getattr__(self, key: str) -> np.ndarray:  # extras as attributes (object_score_logits)
        extras = self.__dict__.get("extras", {})
        if key in extras:
            return extras[key]
        raise AttributeError(key)

    def keys(self) -> list[str]:
        return list(self._as_dict())

    def __iter__(self) -> Iterator[np.ndarray]:  # masks, scores, logits = predictor.predict(...)
        return iter((self.masks, self.iou_predictions, self.low_res_masks))


def _as_points(point_coords: Any, point_labels: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    if point_coords is None and point_labels is None:
        return None, None
    if point_coords is None or point_labels is None:
        raise InputError("points need both coordinates and labels", hint="give point_labels with point_coords (1 = foreground, 0 = background)")
    coords = np.asarray(point_coords, dtype=np.float64)
    labels = np.asarray(point_labels, dtype=np.float64)
    if coords.ndim == 1 and coords.shape == (2,):
        coords = coords[None]
    if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] == 0:
        raise InputError(f"point_coords must be (N, 2) x, y pixels; got shape {coords.shape}", hint="e.g. [[500, 375]]")
    labels = labels.reshape(-1)
    if labels.shape[0] != coords.shape[0]:
        raise InputError(f"{coords.shape[0]} points but {labels.shape[0]} labels", hint="give one label per point")
    if not np.all(np.isin(labels, (0, 1))):
        raise InputError(f"point labels must be 0 (background) or 1 (foreground); got {sorted(set(labels.tolist()))}",
                         hint="use a box for labels 2/3")
    return coords, labels


class Predictor:
    """set_image(rgb) then predict(...) any number of times, as with segment-anything's SamPredictor."""

    def __init__(self, spec: VariantSpec, model: SamModel) -> None:
        self.spec = spec
        self.model = model.eval()
        self.recipe = spec.preprocess
        self._features: dict[str, torch.Tensor] | None = None
        self._geometry: ImageGeometry | None = None
        self.input_image: np.ndarray | None = None  # the exact encoder input of the last set_image
        # Inputs follow the model's dtype: a model made float64 (`model.double()`) runs every step in float64,
        # which is how the parity tests measure what float32 rounding alone does to a variant's outputs.
        self.dtype = next(self.model.parameters()).dtype

    # -- image -------------------------------------------------------------------------------------------
    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        if image_format not in ("RGB", "BGR"):
            raise InputError(f"image_format must be RGB or BGR, not {image_format!r}")
        image = np.asarray(image)
        if image_format == "BGR" and image.ndim == 3:
            image = image[..., ::-1]
        try:
            x, geo = preprocess_image(self.recipe, image)
        except ValueError as exc:
            raise InputError(str(exc), hint="pass an HxWx3 uint8 RGB array (e.g. np.asarray(PIL.Image.open(p).convert('RGB')))") from None
        with torch.inference_mode():
            self._features = {k: v.clone() for k, v in self.model.encode(torch.from_numpy(x).to(self.dtype)).items()}
        self._geometry = geo
        self.input_image = x

    @property
    def is_image_set(self) -> bool:
        return self._features is not None

    def get_image_embedding(self) -> np.ndarray:
        return self._require_image()["image_embeddings"].float().numpy()

    def get_features(self) -> dict[str, np.ndarray]:
        return {k: v.float().numpy() for k, v in self._require_image().items()}

    def _require_image(self) -> dict[str, torch.Tensor]:
        if self._features is None:
            raise InputError("no image set", hint="call set_image(image) before predict()")
        return self._features

    # -- prompts -----------------------------------------------------------------------------------------
    def predict(self, point_coords: Any = None, point_labels: Any = None, box: Any = None, mask_input: Any = None,
                multimask_output: bool = True, return_logits: bool = False) -> Prediction:
        features = self._require_image()
        geo = self._geometry
        assert geo is not None
        coords, labels = _as_points(point_coords, point_labels)
        box_arr = None if box is None else np.asarray(box, dtype=np.float64).reshape(-1)
        if box_arr is not None:
            if box_arr.shape != (4,):
                raise InputError(f"box must be x0, y0, x1, y1; got {box_arr.size} numbers", hint="e.g. box=[10, 20, 300, 400]")
            if box_arr[2] < box_arr[0] or box_arr[3] < box_arr[1]:
                raise InputError(f"box {box_arr.tolist()} has x1 < x0 or y1 < y0", hint="give the top-left corner first")
        if coords is None and box_arr is None:
            raise InputError("no prompt given", hint="give at least one point or a box")
        check_prompts_inside(coords, box_arr, geo.original_hw)
        t_coords = None if coords is None else torch.from_numpy(transform_coords(self.recipe, geo, coords)).to(self.dtype)[None]
        t_labels = None if labels is None else torch.from_numpy(labels).to(self.dtype)[None]
        t_box = None if box_arr is None else torch.from_numpy(transform_coords(self.recipe, geo, box_arr.reshape(2, 2))).to(self.dtype)
        mask_t = None
        if mask_input is not None:
            m = np.asarray(mask_input, dtype=np.float32)
            size = self.spec.low_res_size
            if m.size != size * size:
                raise InputError(f"mask_input must be 1x{size}x{size} low-res logits; got shape {m.shape}",
                                 hint="pass low_res_masks[i:i+1] from an earlier predict()")
            mask_t = torch.from_numpy(m.reshape(1, 1, size, size)).to(self.dtype)
        with torch.inference_mode():
            pc, pl = self.model.prepare_prompts(t_coords, t_labels, t_box)
            out = self.model.decode(features, pc, pl, mask_t, multimask_output)
        low_res = out.low_res_masks.float().numpy()
        extras = dict(out.extras)
        # SAM 2 returns low-res logits clamped to [-32, 32] but upsamples the unclamped ones into the masks
        unclamped = extras.pop("unclamped_low_res_masks", None)
        logits = upsample_logits(self.recipe, geo, low_res if unclamped is None else unclamped.float().numpy())
        masks = logits if return_logits else binarize(self.recipe, logits)
        return Prediction(masks=masks[0], iou_predictions=out.iou_predictions.float().numpy()[0], low_res_masks=low_res[0],
                          extras={k: v.float().numpy()[0] for k, v in extras.items()})



def check_prompts_inside(coords: np.ndarray | None, box: np.ndarray | None, hw: tuple[int, int]) -> None:
    """Every prompt point (and box corner) lies on the image, in its pixel coordinates."""
    h, w = hw
    pts = ([] if coords is None else list(np.asarray(coords).reshape(-1, 2))) + ([] if box is None else list(np.asarray(box).reshape(2, 2)))
    for x, y in pts:
        if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x <= w and 0 <= y <= h):
            raise InputError(f"prompt point ({x:g}, {y:g}) is outside the {w}x{h} image",
                             hint=f"x must be within 0..{w} and y within 0..{h} (pixels of the original image)")


def load_predictor(name: str, checkpoint: str | Path | None = None, weights: str | None = None,
                   encoder_onnx: str | Path | None = None) -> Predictor:
    from edgekit.checkpoints import build_variant
    from edgekit.variants.registry import get_spec

    spec = get_spec(name)
    if weights == "synthetic":
        import warnings

        warnings.warn(f"{name}: synthetic weights — outputs are meaningless for accuracy (latency work only)", stacklevel=3)
    return Predictor(spec, build_variant(name, checkpoint=checkpoint, weights=weights, encoder_onnx=encoder_onnx))
