"""The official pre- and post-processing of every variant: one source of truth.

Each variant family resizes, normalises and pads differently, and the official outputs depend on the exact
recipe (PIL's antialiased bilinear vs torch's, rounding of the new size, normalising before padding). A
`Preprocess` value names the recipe; the functions below apply it to images, prompts and masks. The same
values are written into exported bundles so that apps on devices can repeat them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

# SAM's statistics on the 0..255 scale; ImageNet's on 0..1 (used by SAM 2 and EfficientSAM).
SAM_MEAN = (123.675, 116.28, 103.53)
SAM_STD = (58.395, 57.12, 57.375)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ResizeKind = Literal[
    "longest_side_pil",  # SAM: long side to input_size with PIL bilinear (antialiased), uint8, then pad
    "stretch_bilinear",  # EfficientSAM: F.interpolate bilinear to a square, no antialias, no pad
    "stretch_bilinear_antialias",  # SAM 2: F.interpolate bilinear antialias=True to a square, no pad
]
NormalizeScale = Literal["0-255", "0-1"]
MaskUpsample = Literal[
    "sam",  # low-res -> bilinear to prompt_frame^2 -> crop to the resized image -> bilinear to (H, W)
    "direct_bilinear",  # SAM 2: low-res -> bilinear to (H, W)
    "direct_bicubic",  # EfficientSAM: low-res -> bicubic to (H, W)
]


@dataclass(frozen=True)
class Preprocess:
    """One variant's recipe. `prompt_frame` is the long side of the frame prompts and masks live in; it differs
    from `input_size` for EfficientViT-SAM L-models (encoder sees 512, prompts are in the 1024 frame)."""

    input_size: int = 1024
    resize: ResizeKind = "longest_side_pil"
    normalize_scale: NormalizeScale = "0-255"
    mean: tuple[float, float, float] = SAM_MEAN
    std: tuple[float, float, float] = SAM_STD
    prompt_frame: int = 1024
    mask_upsample: MaskUpsample = "sam"
    mask_threshold: float = 0.0
    mask_threshold_inclusive: bool = False  # EfficientSAM keeps logits >= 0, the others > 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SAM_PREPROCESS = Preprocess()


@dataclass(frozen=True)
class ImageGeometry:
    """Where the original image sits in the encoder input; everything post-processing needs."""

    original_hw: tuple[int, int]
    resized_hw: tuple[int, int]  # the image's size inside the encoder input (before padding)
    prompt_hw: tuple[int, int]  # the image's size in the prompt frame


def longest_side_shape(h: int, w: int, long_side: int) -> tuple[int, int]:
    """segment-anything's ResizeLongestSide.get_preprocess_shape: int(x * s + 0.5)."""
    scale = long_side * 1.0 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def geometry(recipe: Preprocess, h: int, w: int) -> ImageGeometry:
    if recipe.resize == "longest_side_pil":
        return ImageGeometry((h, w), longest_side_shape(h, w, recipe.input_size), longest_side_shape(h, w, recipe.prompt_frame))
    square = (recipe.input_size, recipe.input_size)
    return ImageGeometry((h, w), square, (recipe.prompt_frame, recipe.prompt_frame))


def validate_image(rgb: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB array, or a ValueError that says what is wrong."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got an array of shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {rgb.dtype}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"empty image of shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def preprocess_image(recipe: Preprocess, rgb: np.ndarray) -> tuple[np.ndarray, ImageGeometry]:
    """uint8 HxWx3 RGB -> float32 (1, 3, S, S) encoder input, and the geometry for the way back."""
    rgb = validate_image(rgb)
    h, w = rgb.shape[:2]
    geo = geometry(recipe, h, w)
    mean = np.asarray(recipe.mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(recipe.std, dtype=np.float32).reshape(1, 3, 1, 1)
    if recipe.resize == "longest_side_pil":
        from PIL import Image

        nh, nw = geo.resized_hw
        # torchvision's resize of a PIL image is PIL's resize; skipping it at the target size is what the
        # official code effectively does (PIL returns a copy).
        resized = rgb if (nh, nw) == (h, w) else np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR))
        x = resized.transpose(2, 0, 1)[None].astype(np.float32)
        if recipe.normalize_scale == "0-1":
            x = x / np.float32(255.0)
        x = (x - mean) / std
        s = recipe.input_size
        padded = np.zeros((1, 3, s, s), dtype=np.float32)  # zero padding after normalisation, bottom/right
        padded[:, :, :nh, :nw] = x
        return padded, geo
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255.0  # ToTensor (a writable copy)
    s = recipe.input_size
    if (h, w) != (s, s):
        t = F.interpolate(t, (s, s), mode="bilinear", align_corners=False,
                          antialias=recipe.resize == "stretch_bilinear_antialias")
    x = t.numpy()
    if recipe.normalize_scale == "0-255":
        x = x * np.float32(255.0)
    return ((x - mean) / std).astype(np.float32), geo


def transform_coords(recipe: Preprocess, geo: ImageGeometry, coords: np.ndarray) -> np.ndarray:
    """Original-image (x, y) pixels -> the prompt frame, as each official predictor scales them."""
    coords = np.asarray(coords, dtype=np.float64).copy()
    (h, w), (ph, pw) = geo.original_hw, geo.prompt_hw
    coords[..., 0] = coords[..., 0] * (pw / w)
    coords[..., 1] = coords[..., 1] * (ph / h)
    return coords


def upsample_logits(recipe: Preprocess, geo: ImageGeometry, low_res: "np.ndarray") -> np.ndarray:
    """Low-res mask logits (1, K, h, w) -> logits at the original image size (1, K, H, W), float32."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(low_res, dtype=np.float32))
    if recipe.mask_upsample == "sam":
        f = recipe.prompt_frame
        t = F.interpolate(t, (f, f), mode="bilinear", align_corners=False)
        ph, pw = geo.prompt_hw
        t = t[..., :ph, :pw]
        t = F.interpolate(t, geo.original_hw, mode="bilinear", align_corners=False)
    elif recipe.mask_upsample == "direct_bilinear":
        t = F.interpolate(t, geo.original_hw, mode="bilinear", align_corners=False)
    else:
        t = F.interpolate(t, geo.original_hw, mode="bicubic", align_corners=False)
    return t.numpy()


def binarize(recipe: Preprocess, logits: np.ndarray) -> np.ndarray:
    if recipe.mask_threshold_inclusive:
        return logits >= recipe.mask_threshold
    return logits > recipe.mask_threshold
