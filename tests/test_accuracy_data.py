"""Ground truth in SA-1B's layout: tools/shapes.py writes it, edgekit.accuracy reads it back exactly; bad folders
fail with one clear error; half-precision checkpoints load as float32 and nothing else is loosened."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekit.errors import CheckpointError, InputError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
pytest.importorskip("pycocotools", reason="the eval extra (pycocotools) is not installed")

import shapes  # noqa: E402

from edgekit.accuracy.dataset import load_dataset  # noqa: E402
from edgekit.accuracy.miou import mask_iou  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shapes")
    shapes.write_dataset(out, 3, seed=1_000_000)
    return out


def test_scenes_round_trip_through_rle(data: Path) -> None:
    images = load_dataset(data)
    assert [im.image.name for im in images] == [f"shapes_{1_000_000 + i}.jpg" for i in range(3)]
    for im in images:
        scene = shapes.render_scene(int(im.image.stem.split("_")[1]))
        assert len(im.annotations) == len(scene.masks) >= 1
        union = np.zeros(scene.rgb.shape[:2], int)
        for ann, mask, point in zip(im.annotations, scene.masks, scene.points):
            decoded = ann.mask()
            assert decoded.shape == scene.rgb.shape[:2]
            assert np.array_equal(decoded, mask)  # the RLE is lossless
            ys, xs = np.nonzero(mask)
            assert ann.bbox_xywh == (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
            assert mask[int(point[1]), int(point[0])] and ann.point == point  # the prompt point lies on the mask
            union += mask
        assert union.max() == 1  # visible parts: occluded pixels belong to the shape on top only


def test_scenes_are_a_function_of_their_seed() -> None:
    a, b, c = shapes.render_scene(7), shapes.render_scene(7), shapes.render_scene(8)
    assert np.array_equal(a.rgb, b.rgb) and len(a.masks) == len(b.masks)
    assert a.rgb.shape != c.rgb.shape or not np.array_equal(a.rgb, c.rgb)


def test_limit_and_sorting(data: Path) -> None:
    assert len(load_dataset(data, limit=2)) == 2


def test_missing_image_is_named(data: Path, tmp_path: Path) -> None:
    (tmp_path / "lonely.json").write_text((data / "shapes_1000000.json").read_text())
    with pytest.raises(InputError, match="lonely.json has no image"):
        load_dataset(tmp_path)


def test_annotation_without_rle_is_refused(data: Path, tmp_path: Path) -> None:
    raw = json.loads((data / "shapes_1000000.json").read_text())
    raw["annotations"][0]["segmentation"] = [[1, 2, 3, 4, 5, 6]]  # COCO polygons: not SA-1B's RLE
    (tmp_path / "x.json").write_text(json.dumps(raw))
    (tmp_path / "x.jpg").write_bytes((data / "shapes_1000000.jpg").read_bytes())
    with pytest.raises(InputError, match="segmentation"):
        load_dataset(tmp_path)


def test_empty_and_absent_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no annotated images"):
        load_dataset(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_dataset(tmp_path / "nope")


def test_mask_iou() -> None:
    a = np.zeros((4, 4), bool)
    b = a.copy()
    a[:2] = True
    b[1:3] = True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    assert mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0


def test_half_precision_checkpoint_loads_as_float32(tmp_path: Path) -> None:
    from edgekit.checkpoints import build_variant
    from edgekit.variants.registry import get_spec

    reference = get_spec("mobilesam").build().state_dict()
    half = {k: v.half() if v.is_floating_point() else v for k, v in reference.items()}
    torch.save(half, tmp_path / "half.pt")
    model = build_variant("mobilesam", checkpoint=tmp_path / "half.pt")
    loaded = model.state_dict()
    key = "mask_decoder.iou_prediction_head.layers.0.weight"
    assert loaded[key].dtype == torch.float32
    assert torch.equal(loaded[key], reference[key].half().float())
    wrong = dict(half)
    wrong[key] = reference[key].to(torch.int32)  # any other dtype difference still fails the layout
    torch.save(wrong, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="mis-shaped"):
        build_variant("mobilesam", checkpoint=tmp_path / "wrong.pt")
