"""A PNG that shows a prediction: the best mask tinted over the image, with the prompts marked."""
from __future__ import annotations

import numpy as np


def render_overlay(rgb: np.ndarray, mask: np.ndarray, points: np.ndarray | None = None,
                   labels: np.ndarray | None = None, box: np.ndarray | None = None) -> "object":
    """-> PIL.Image: mask (H, W) bool blended in blue at 50 %, positive points green, negative red, box yellow."""
    from PIL import Image, ImageDraw

    out = rgb.astype(np.float32).copy()
    tint = np.array([30, 144, 255], dtype=np.float32)
    out[mask] = 0.5 * out[mask] + 0.5 * tint
    img = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    radius = max(3, round(min(rgb.shape[:2]) / 100))
    if points is not None and labels is not None:
        for (x, y), label in zip(points, labels):
            color = (0, 200, 0) if label == 1 else (220, 0, 0)
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color, outline=(255, 255, 255))
    if box is not None:
        draw.rectangle([float(v) for v in box], outline=(255, 215, 0), width=max(2, radius // 2))
    return img
