"""Shared test helpers: where the workplace's ../shared folder is, and the parity metrics."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEKIT_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the calling test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the workplace's shared folder is not beside this checkout)")
    return path


def has_shared(*parts: str) -> bool:
    return SHARED.joinpath(*parts).exists()


@lru_cache(maxsize=None)
def read_image(name: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(shared_path("images", name)).convert("RGB"))


@lru_cache(maxsize=None)
def image_hashes() -> dict[str, str]:
    import hashlib

    folder = shared_path("images")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def layout_rows(layout: str) -> list[tuple[str, tuple[int, ...], str]]:
    """(key, shape, dtype) rows of ../shared/layouts/<layout>.txt, in file order (skips when absent)."""
    rows = []
    for line in shared_path("layouts", f"{layout}.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape, dtype = line.split("\t")
            rows.append((key, tuple(int(d) for d in shape.strip("()").split(",") if d.strip()), dtype.strip()))
    return rows


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def unpack_masks(ref: dict, prompt: str) -> np.ndarray:
    shape = tuple(int(s) for s in ref[f"{prompt}_masks_shape"])
    return np.unpackbits(ref[f"{prompt}_masks_packed"], count=int(np.prod(shape))).reshape(shape).astype(bool)


# The tolerances (also applied to references not in this folder).
EMBED_REL_L2 = 1e-4
LOGITS_MAX_ABS = 5e-3
IOU_PRED_ABS = 5e-3
MASK_IOU_MIN = 0.995
