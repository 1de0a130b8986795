"""MobileSAM / TinySAM (TinyViT-5M + the shared SAM decoder): layout, loading, predictor shapes, mask path.

Numerical parity with the official code is tests/test_parity.py's job (mobile_sam_vit_t); here the
structure and the decoder's prompt / mask plumbing are checked with synthetic weights.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.checkpoints import build_variant
from edgekit.predictor import Predictor
from edgekit.synthetic import layout_of
from edgekit.variants.registry import get_spec
from edgekit.variants.sam_decoder import SamDecoderModel
from tests import support



@pytest.fixture(scope="module")
def model() -> SamDecoderModel:
    return build_variant("mobilesam", weights="synthetic")


@pytest.fixture(scope="module")
def features() -> dict[str, torch.Tensor]:
    # the decoder tests need an embedding, not a real image: skip the (slow) encoder
    return {"image_embeddings": torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0))}


@pytest.mark.parametrize("name,layout", [("mobilesam", "mobile_sam_vit_t"), ("tinysam", "tinysam_vit_t")])
def test_state_dict_equals_official_layout(name: str, layout: str) -> None:
    expected = support.layout_rows(layout)
    with torch.device("meta"):
        got = layout_of(get_spec(name).build().state_dict())
    assert got == expected


def test_tinysam_builds_with_synthetic_weights_like_mobilesam(model: SamDecoderModel) -> None:
    tiny = build_variant("tinysam", weights="synthetic")
    assert isinstance(tiny, SamDecoderModel) and not tiny.training
    ours = model.state_dict()
    # the synthetic values are a function of the key alone, and both variants share every key
    assert all(torch.equal(v, ours[k]) for k, v in tiny.state_dict().items())


def test_tinysam_checkpoint_loads_as_mobilesam(tmp_path, model: SamDecoderModel) -> None:
    path = tmp_path / "tinysam.pth"
    torch.save(build_variant("tinysam", weights="synthetic").state_dict(), path)
    loaded = build_variant("mobilesam", checkpoint=path)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    w = "image_encoder.layers.2.blocks.3.attn.attention_biases"
    assert torch.equal(loaded.state_dict()[w], model.state_dict()[w])


@pytest.fixture(scope="module")
def predictor(model: SamDecoderModel) -> Predictor:
    predictor = Predictor(get_spec("mobilesam"), model)
    predictor.set_image(np.random.default_rng(0).integers(0, 255, (120, 200, 3), dtype=np.uint8))
    return predictor


def test_encoder_embedding_shape_and_bias_table(model: SamDecoderModel, predictor: Predictor) -> None:
    emb = predictor.get_image_embedding()
    assert emb.shape == (1, 256, 64, 64) and np.isfinite(emb).all()
    # the bias index is geometric (|dy|, |dx| per window pair), never a stale or all-zero table
    idx = model.image_encoder.layers[1].blocks[0].attn.attention_bias_idxs
    assert idx.shape == (49, 49) and int(idx.max()) == 48 and int(idx[0, 1]) != int(idx[0, 0])


def test_predict_returns_sam_predictor_shapes(predictor: Predictor) -> None:
    multi = predictor.predict(point_coords=[[50, 60]], point_labels=[1])
    assert multi.masks.shape == (3, 120, 200) and multi.masks.dtype == bool
    assert multi.iou_predictions.shape == (3,) and multi.low_res_masks.shape == (3, 256, 256)
    single = predictor.predict(box=[10, 20, 150, 100], multimask_output=False)
    assert single.masks.shape == (1, 120, 200) and single.iou_predictions.shape == (1,)
    assert single.low_res_masks.shape == (1, 256, 256)
    refined = predictor.predict(point_coords=[[50, 60]], point_labels=[1], mask_input=multi.low_res_masks[:1])
    assert refined.masks.shape == (3, 120, 200)
    assert np.abs(refined.low_res_masks - multi.low_res_masks).max() > 1e-3  # mask_input reaches the decoder


def _prompts() -> tuple[torch.Tensor, torch.Tensor]:
    # a positive, a negative, and a box (corners labelled 2, 3): every label path at once
    coords = torch.tensor([[[300.0, 400.0], [700.0, 200.0], [100.0, 150.0], [900.0, 800.0]]])
    return coords, torch.tensor([[1.0, 0.0, 2.0, 3.0]])


def _pick(out, multimask: bool):
    """decode_all's four mask tokens -> what decode returns: 1..3 (multimask) or 0 (single), as SAM slices them."""
    from edgekit.variants.base import DecoderOutput

    cut = slice(1, None) if multimask else slice(0, 1)
    return DecoderOutput(low_res_masks=out.low_res_masks[:, cut], iou_predictions=out.iou_predictions[:, cut])


@pytest.mark.parametrize("multimask", [True, False])
def test_decode_without_mask_equals_mask_flag_zero(model: SamDecoderModel, features: dict, multimask: bool) -> None:
    coords, labels = _prompts()
    with torch.inference_mode():
        plain = model.decode(features, coords, labels, None, multimask)
        flagged = _pick(model.decode_all(features, coords, labels, torch.randn(1, 1, 256, 256), torch.zeros(1)),
                        multimask)
    k = 3 if multimask else 1
    assert plain.low_res_masks.shape == (1, k, 256, 256) and plain.iou_predictions.shape == (1, k)
    torch.testing.assert_close(flagged.low_res_masks, plain.low_res_masks, atol=1e-5, rtol=0)
    torch.testing.assert_close(flagged.iou_predictions, plain.iou_predictions, atol=1e-5, rtol=0)


def test_previous_mask_feeds_back(model: SamDecoderModel, features: dict) -> None:
    coords, labels = _prompts()
    with torch.inference_mode():
        first = model.decode(features, coords, labels, None, True)
        best = first.low_res_masks[:, first.iou_predictions.argmax(dim=1)]
        again = model.decode(features, coords, labels, best, False)
        flagged = _pick(model.decode_all(features, coords, labels, best, torch.ones(1)), False)
        no_mask = model.decode(features, coords, labels, None, False)
    assert (again.low_res_masks - no_mask.low_res_masks).abs().max() > 1e-3  # the mask path is wired
    torch.testing.assert_close(flagged.low_res_masks, again.low_res_masks, atol=1e-5, rtol=0)


def test_padding_point_ignores_its_coordinates(model: SamDecoderModel) -> None:
    coords = torch.tensor([[[300.0, 400.0], [0.0, 0.0]]])
    moved = torch.tensor([[[300.0, 400.0], [512.0, 77.0]]])
    labels = torch.tensor([[1.0, -1.0]])
    pe = model.prompt_encoder
    with torch.inference_mode():
        a, b = pe.embed_points(coords, labels), pe.embed_points(moved, labels)
    assert torch.equal(a, b)
    assert torch.equal(a[0, 1], pe.not_a_point_embed.weight[0])
