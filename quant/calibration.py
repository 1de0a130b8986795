"""Calibration data: a folder of real images through the variant's official preprocessing, and prompts
sampled on them for the decoder."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from edgekit.errors import InputError
from edgekit.preprocess import ImageGeometry, Preprocess, preprocess_image, transform_coords

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DEFAULT_COUNT = 32
WARN_BELOW = 16


@dataclass(frozen=True)
class CalibImage:
    path: Path
    sha256: str


def list_images(folder: Path) -> list[CalibImage]:
    """The folder's images in a stable order (sorted by name), each with its content hash."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"calibration folder not found: {folder}", hint="pass --calib DIR with real photographs")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise InputError(f"no images in {folder}", hint=f"put {DEFAULT_COUNT} or more JPEG/PNG photographs there")
    return [CalibImage(p, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths]


def split(images: list[CalibImage], count: int, held_out: int) -> tuple[list[CalibImage], list[CalibImage]]:
    """First `count` for calibration, the next `held_out` for fidelity; when the folder is too small for both,
    the held-out set takes the last images (say so: fidelity on calibration images flatters INT8)."""
    if count < 1:
        raise InputError(f"--calib-count must be at least 1, not {count}")
    calib = images[:count]
    rest = images[count:count + held_out]
    if len(calib) < WARN_BELOW:
        log.warning("only %d calibration images (fewer than %d): INT8 ranges may not cover real inputs",
                    len(calib), WARN_BELOW)
    if not rest:
        rest = images[-min(held_out, len(images)):]
        log.warning("no held-out images left after calibration: fidelity is measured on calibration images")
    return calib, rest


def load_inputs(recipe: Preprocess, image: CalibImage) -> tuple[np.ndarray, ImageGeometry, np.ndarray]:
    from edgekit.io import read_rgb

    rgb = read_rgb(image.path)
    x, geo = preprocess_image(recipe, rgb)
    return x, geo, rgb


@dataclass(frozen=True)
class PromptSample:
    """A user-level prompt in the prompt frame; `decoder_inputs` turns it into the family's decoder form."""

    kind: str  # "point" | "points" | "box"
    point_coords: np.ndarray | None  # (N, 2)
    point_labels: np.ndarray | None  # (N,)
    box: np.ndarray | None  # (2, 2) corners

    def decoder_inputs(self, model: "object") -> tuple[np.ndarray, np.ndarray]:
        """(1, N, 2) coords and (1, N) labels as the family's own prompt rule builds them (padding, box order)."""
        import torch

        coords = None if self.point_coords is None else torch.from_numpy(self.point_coords).float()[None]
        labels = None if self.point_labels is None else torch.from_numpy(self.point_labels).float()[None]
        box = None if self.box is None else torch.from_numpy(self.box).float()
        c, lab = model.prepare_prompts(coords, labels, box)
        return c.numpy().astype(np.float32), lab.numpy().astype(np.float32)


def sample_prompts(recipe: Preprocess, geo: ImageGeometry, seed: int) -> list[PromptSample]:
    """A point, a positive+negative pair and a box, drawn inside the image (seeded per image)."""
    rng = np.random.default_rng(seed)
    h, w = geo.original_hw

    def frame(xy: np.ndarray) -> np.ndarray:
        return transform_coords(recipe, geo, xy).astype(np.float32)

    p = rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h], size=(1, 2))
    q = rng.uniform([0.1 * w, 0.1 * h], [0.9 * w, 0.9 * h], size=(2, 2))
    x0, y0 = rng.uniform([0.05 * w, 0.05 * h], [0.45 * w, 0.45 * h])
    x1, y1 = rng.uniform([0.55 * w, 0.55 * h], [0.95 * w, 0.95 * h])
    return [
        PromptSample("point", frame(p), np.array([1.0], np.float32), None),
        PromptSample("points", frame(q), np.array([1.0, 0.0], np.float32), None),
        PromptSample("box", None, None, frame(np.array([[x0, y0], [x1, y1]]))),
    ]


def image_seed(image: CalibImage) -> int:
    return int(image.sha256[:8], 16)
