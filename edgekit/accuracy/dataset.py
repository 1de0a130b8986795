"""Ground-truth masks in SA-1B's layout: `NAME.jpg` + `NAME.json` per image, the JSON's `annotations[]` each with
`segmentation` (COCO RLE), `bbox` (XYWH) and `point_coords` ([[x, y], ...]).

Masks are decoded with pycocotools (the `eval` extra), only when an image is evaluated: SA-1B images carry ~100
masks each, and a folder of them decoded at once would not fit in memory.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Annotation:
    rle: dict  # {"size": [h, w], "counts": str}
    bbox_xywh: tuple[float, float, float, float]
    point: tuple[float, float]  # the first of point_coords: the prompt SAM's own evaluation uses

    def mask(self) -> np.ndarray:
        return decode_rle(self.rle)

    @property
    def box_xyxy(self) -> np.ndarray:
        x, y, w, h = self.bbox_xywh
        return np.array([x, y, x + w, y + h], np.float64)


@dataclass(frozen=True)
class EvalImage:
    image: Path
    annotations: tuple[Annotation, ...]


def _mask_utils():
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        raise InputError("reading SA-1B masks needs pycocotools", hint="pip install 'edgekit[eval]' (or pycocotools)") from None
    return mask_utils


def decode_rle(rle: dict) -> np.ndarray:
    """A COCO RLE (compressed string counts, as SA-1B ships) -> (H, W) bool."""
    mask_utils = _mask_utils()
    counts = rle["counts"]
    return mask_utils.decode({"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}).astype(bool)


def _annotation(raw: dict, where: str) -> Annotation:
    try:
        seg = raw["segmentation"]
        if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
            raise KeyError("segmentation (COCO RLE: size + counts)")
        x, y, w, h = (float(v) for v in raw["bbox"])
        points = raw.get("point_coords") or []
        if points:
            px, py = (float(v) for v in points[0])
        else:  # SA-1B always has one; other exports may not: the box centre is then the point
            px, py = x + w / 2, y + h / 2
    except KeyError as exc:
        raise InputError(f"{where}: an annotation lacks {exc.args[0]}",
                         hint="each annotation needs segmentation (COCO RLE), bbox (XYWH) and point_coords") from None
    except (TypeError, ValueError):
        raise InputError(f"{where}: an annotation's bbox or point_coords is not numbers",
                         hint="bbox is [x, y, w, h]; point_coords is [[x, y], ...]") from None
    return Annotation(rle=seg, bbox_xywh=(x, y, w, h), point=(px, py))


def load_dataset(folder: str | Path, limit: int | None = None) -> list[EvalImage]:
    """Every NAME.json of `folder` with its image, sorted by name; at most `limit` images."""
    folder = Path(folder)
    _mask_utils()  # before any work: a missing package is one clear error, not a failure halfway through
    if not folder.is_dir():
        raise InputError(f"evaluation folder not found: {folder}",
                         hint="pass --data DIR holding NAME.jpg + NAME.json pairs in SA-1B's layout")
    images: list[EvalImage] = []
    for meta in sorted(folder.glob("*.json")):
        image = next((meta.with_suffix(s) for s in IMAGE_SUFFIXES if meta.with_suffix(s).is_file()), None)
        if image is None:
            raise InputError(f"{meta.name} has no image beside it", hint=f"put {meta.stem}.jpg next to {meta.name}")
        try:
            raw = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read {meta}: {exc}", hint="each NAME.json must be SA-1B's JSON") from None
        annotations = tuple(_annotation(a, meta.name) for a in raw.get("annotations", []) if isinstance(a, dict))
        if annotations:
            images.append(EvalImage(image, annotations))
        if limit is not None and len(images) >= limit:
            break
    if not images:
        raise InputError(f"no annotated images in {folder}",
                         hint="expected NAME.jpg + NAME.json (SA-1B layout) with at least one annotation")
    return images
