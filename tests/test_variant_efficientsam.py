"""EfficientSAM (Ti, S): official layouts, the {"model": ...} release file, prompts, predict shapes, no mask input.

Numerical parity with the official code is tests/test_parity.py (efficient_sam_vitt); these tests pin the parts
that parity alone does not: the S layout, checkpoint unwrapping, the six-point prompt rule and the refusals.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.checkpoints import build_variant, load_into, read_checkpoint
from edgekit.errors import CheckpointError, InputError
from edgekit.predictor import Predictor
from edgekit.synthetic import layout_of, synthetic_state_dict
from edgekit.variants.efficientsam import MAX_POINTS, build_efficientsam_s, build_efficientsam_ti
from edgekit.variants.registry import get_spec
from tests import support

_VARIANTS = [("efficientsam-ti", build_efficientsam_ti, "efficient_sam_vitt"),
             ("efficientsam-s", build_efficientsam_s, "efficient_sam_vits")]



def _meta_layout(builder) -> list[tuple[str, tuple[int, ...], str]]:
    with torch.device("meta"):  # no memory, no init cost
        return layout_of(builder().state_dict())


@pytest.mark.parametrize("name,builder,layout", _VARIANTS, ids=[v[0] for v in _VARIANTS])
def test_state_dict_equals_official_layout(name: str, builder, layout: str) -> None:
    expected = support.layout_rows(layout)
    assert _meta_layout(builder) == expected  # keys, order, shapes and dtypes
    spec = get_spec(name)
    assert spec.layout == layout and spec.wrap_key == "model"


@pytest.fixture(scope="module")
def model():
    return build_variant("efficientsam-ti", weights="synthetic")


def test_release_file_is_unwrapped_and_loaded_strictly(model, tmp_path) -> None:
    state = synthetic_state_dict(layout_of(model.state_dict()), seed=3)
    path = tmp_path / "efficient_sam_vitt.pt"
    torch.save({"model": state}, path)  # the official files' shape
    unwrapped = read_checkpoint(path)
    assert list(unwrapped) == list(state)
    spec = get_spec("efficientsam-ti")
    fresh = load_into(build_efficientsam_ti(), spec, unwrapped, source=str(path))
    assert torch.equal(fresh.mask_decoder.mask_tokens.weight, state["mask_decoder.mask_tokens.weight"])
    # The ViT-S file is not a ViT-Ti file: the error names the layout difference.
    with torch.device("meta"):
        small = build_efficientsam_s().state_dict()
    with pytest.raises(CheckpointError, match="mis-shaped"):
        load_into(build_efficientsam_ti(), spec, small)


def test_prompts_become_six_points(model) -> None:
    pts, lbl = torch.tensor([[[10.0, 20.0], [30.0, 40.0]]]), torch.tensor([[1.0, 0.0]])
    box = torch.tensor([[5.0, 6.0], [70.0, 80.0]])
    coords, labels = model.prepare_prompts(pts, lbl, box)
    assert coords.shape == (1, MAX_POINTS, 2)
    assert labels.tolist() == [[1.0, 0.0, 2.0, 3.0, -1.0, -1.0]]
    assert coords[0, :4].tolist() == [[10, 20], [30, 40], [5, 6], [70, 80]]
    assert (coords[0, 4:] == -1).all()
    # No points, only a box: no SAM-style extra padding point in front of it.
    coords, labels = model.prepare_prompts(None, None, box)
    assert labels.tolist() == [[2.0, 3.0, -1.0, -1.0, -1.0, -1.0]]
    # More than six points are cut to the first six, as upstream does.
    many = torch.arange(16, dtype=torch.float32).reshape(1, 8, 2)
    coords, labels = model.prepare_prompts(many, torch.ones(1, 8), None)
    assert torch.equal(coords, many[:, :MAX_POINTS]) and labels.shape == (1, MAX_POINTS)


def test_decode_pads_itself_and_has_no_value_branches(model) -> None:
    emb = {"image_embeddings": torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0))}
    pts, lbl = torch.tensor([[[100.0, 200.0]]]), torch.tensor([[1.0]])
    with torch.inference_mode():
        short = model.decode(emb, pts, lbl, multimask_output=True)
        padded = model.decode(emb, *model.prepare_prompts(pts, lbl, None), multimask_output=True)
        single = model.decode(emb, pts, lbl, multimask_output=False)
        other = model.decode(emb, torch.tensor([[[100.0, 200.0], [-1.0, -1.0]]]), torch.tensor([[1.0, 0.0]]))
    assert short.low_res_masks.shape == (1, 3, 256, 256) and short.iou_predictions.shape == (1, 3)
    assert single.low_res_masks.shape == (1, 1, 256, 256) and single.iou_predictions.shape == (1, 1)
    torch.testing.assert_close(short.low_res_masks, padded.low_res_masks, rtol=0, atol=0)
    # The label of a padding slot changes the embedding it gets (invalid_points), hence the logits.
    assert not torch.allclose(other.low_res_masks, short.low_res_masks)


@pytest.fixture(scope="module")
def predictor(model) -> Predictor:
    pred = Predictor(get_spec("efficientsam-ti"), model)
    rgb = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    pred.set_image(rgb)  # one encoder pass for the module
    return pred


def test_predict_shapes(predictor: Predictor) -> None:
    assert predictor.get_image_embedding().shape == (1, 256, 64, 64)
    assert predictor.input_image.shape == (1, 3, 1024, 1024)  # stretched, not padded
    multi = predictor.predict(point_coords=[[45, 30]], point_labels=[1], multimask_output=True)
    assert multi.masks.shape == (3, 60, 90) and multi.masks.dtype == bool
    assert multi.iou_predictions.shape == (3,) and multi.low_res_masks.shape == (3, 256, 256)
    boxed = predictor.predict(point_coords=[[45, 30]], point_labels=[0], box=[10, 10, 80, 50], multimask_output=False)
    assert boxed.masks.shape == (1, 60, 90) and boxed.low_res_masks.shape == (1, 256, 256)
    # Masks are the bicubic upsample of the low-res logits, kept where >= 0.
    logits = predictor.predict(point_coords=[[45, 30]], point_labels=[1], multimask_output=True, return_logits=True)
    np.testing.assert_array_equal(logits.masks >= 0, multi.masks)


def test_mask_input_is_refused(predictor: Predictor, model) -> None:
    prev = predictor.predict(point_coords=[[45, 30]], point_labels=[1], multimask_output=False)
    with pytest.raises(InputError, match="no mask input"):
        predictor.predict(point_coords=[[45, 30]], point_labels=[1], mask_input=prev.low_res_masks)
    with pytest.raises(InputError):
        model.decode({"image_embeddings": torch.zeros(1, 256, 64, 64)}, torch.zeros(1, 1, 2), torch.ones(1, 1),
                     mask_input=torch.zeros(1, 1, 256, 256))
