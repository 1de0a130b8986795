"""SAM 2.1 / EfficientTAM image path: layouts, release-file loading, encode/decode contract, prompt order and
the dynamic multimask fallback. Numerical parity with the official code is tests/test_parity.py's job; the
encoder-level checks here cover what that test does not read (high-res features, FPN level, sine PE)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.checkpoints import load_into, read_checkpoint
from edgekit.errors import CheckpointError
from edgekit.predictor import Predictor
from edgekit.synthetic import layout_of
from edgekit.variants.hiera import sine_position_encoding, window_partition, window_unpartition
from edgekit.variants.registry import REGISTRY
from edgekit.variants.sam2_decoder import Sam2MaskDecoder
from tests import support

SAM2_NAMES = ["sam2.1-hiera-t", "sam2.1-hiera-s", "sam2.1-hiera-b+", "sam2.1-hiera-l", "efficienttam-ti",
              "efficienttam-s"]



@pytest.fixture(scope="module")
def hiera_t() -> torch.nn.Module:
    from edgekit.checkpoints import build_variant

    return build_variant("sam2.1-hiera-t", weights="synthetic")


@pytest.fixture(scope="module")
def encoded(hiera_t) -> dict[str, torch.Tensor]:
    """The one (costly) encoder pass of this module, on the reference's encoder_synthetic input: encode()'s
    outputs, plus the neck levels captured on the way ("levels")."""
    x = torch.from_numpy(np.random.default_rng(1234).standard_normal((1, 3, 1024, 1024)).astype(np.float32))
    captured: list = []
    handle = hiera_t.image_encoder.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.inference_mode():
            out = hiera_t.encode(x)
    finally:
        handle.remove()
    return {**out, "levels": captured[0]}


@pytest.mark.parametrize("name", SAM2_NAMES)
def test_state_dict_is_layout_less_memory_modules(name: str) -> None:
    spec = REGISTRY[name]
    layout = support.layout_rows(spec.layout)
    with torch.device("meta"):
        model = spec.build()
    kept = [row for row in layout if not row[0].startswith(spec.ignored_key_prefixes)]
    assert layout_of(model.state_dict()) == kept  # keys, shapes, dtypes and order
    dropped = {row[0].split(".")[0] for row in layout} - {row[0].split(".")[0] for row in kept}
    assert "image_encoder" not in dropped and "no_mem_embed" not in dropped
    if spec.family == "sam2":  # SAM 2.1 has every memory module the prefixes name: none is stale
        assert all(any(row[0].startswith(p) for row in layout) for p in spec.ignored_key_prefixes)


def test_release_file_with_memory_keys_loads(tmp_path, hiera_t) -> None:
    spec = REGISTRY["sam2.1-hiera-t"]
    state = dict(hiera_t.state_dict())
    memory = {"maskmem_tpos_enc": (7, 1, 1, 64), "no_mem_pos_enc": (1, 1, 256), "no_obj_ptr": (1, 256),
              "memory_attention.layers.0.self_attn.q_proj.weight": (256, 256), "obj_ptr_proj.layers.0.bias": (256,),
              "memory_encoder.out_proj.weight": (64, 256, 1, 1), "mask_downsample.weight": (1, 1, 4, 4)}
    state.update({k: torch.ones(shape) for k, shape in memory.items()})
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": state}, path)  # the release files' wrapping
    model = spec.build()
    load_into(model, spec, read_checkpoint(path), source=str(path))
    assert torch.equal(model.no_mem_embed, state["no_mem_embed"])
    assert torch.equal(model.sam_mask_decoder.conv_s0.weight, state["sam_mask_decoder.conv_s0.weight"])
    assert not any(k in model.state_dict() for k in memory)

    del state["no_mem_embed"]  # keys the image path uses stay strict
    with torch.device("meta"):
        empty = spec.build()
    with pytest.raises(CheckpointError, match="1 missing: no_mem_embed"):
        load_into(empty, spec, state)


def test_predict_contract(hiera_t, encoded, monkeypatch) -> None:
    features = {k: v for k, v in encoded.items() if k != "levels"}
    monkeypatch.setattr(hiera_t, "encode", lambda image: features)  # reuse the module's one encoder pass
    predictor = Predictor(REGISTRY["sam2.1-hiera-t"], hiera_t)
    rgb = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    predictor.set_image(rgb)
    shapes = {k: v.shape for k, v in predictor.get_features().items()}
    assert shapes == {"image_embeddings": (1, 256, 64, 64), "high_res_feats_0": (1, 32, 256, 256),
                      "high_res_feats_1": (1, 64, 128, 128)}
    out = predictor.predict(point_coords=[[45, 30]], point_labels=[1], multimask_output=True)
    assert out.masks.shape == (3, 60, 90) and out.low_res_masks.shape == (3, 256, 256)
    assert out.object_score_logits.shape == (1,) and np.isfinite(out.object_score_logits).all()
    assert set(out.extras) == {"object_score_logits"}  # the unclamped logits are the predictor's, not the user's
    single = predictor.predict(point_coords=[[45, 30]], point_labels=[1], box=[10, 5, 80, 50], multimask_output=False)
    assert single.masks.shape == (1, 60, 90) and single.iou_predictions.shape == (1,)
    assert np.abs(single.low_res_masks).max() <= 32.0


def test_decode_clamps_returned_logits_only(hiera_t) -> None:
    # a huge stride-4 skip feature drives the logits far outside [-32, 32]
    feats = {"image_embeddings": torch.zeros(1, 256, 64, 64), "high_res_feats_0": torch.full((1, 32, 256, 256), 1e3),
             "high_res_feats_1": torch.zeros(1, 64, 128, 128)}
    with torch.inference_mode():
        out = hiera_t.decode(feats, torch.tensor([[[500.0, 500.0], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]]))
    raw = out.extras["unclamped_low_res_masks"]
    assert raw.abs().max() > 32 and torch.equal(out.low_res_masks, raw.clamp(-32, 32))


def test_box_goes_first_and_padding_always() -> None:
    with torch.device("meta"):
        model = REGISTRY["efficienttam-ti"].build()
    coords, labels = model.prepare_prompts(torch.tensor([[[5.0, 6.0]]]), torch.tensor([[1.0]]),
                                           torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert labels.tolist() == [[2.0, 3.0, 1.0, -1.0]]
    assert coords.tolist() == [[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [0.0, 0.0]]]
    _, labels = model.prepare_prompts(None, None, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert labels.tolist() == [[2.0, 3.0, -1.0]]


def test_dynamic_multimask_falls_back_to_best_iou(monkeypatch) -> None:
    decoder = Sam2MaskDecoder(use_high_res_features=False).eval()
    masks = torch.full((1, 4, 8, 8), -5.0)
    masks[:, 1] = 1.0
    masks[:, 2] = 2.0
    masks[:, 3] = 3.0
    masks[0, 0, :4] = 0.01  # half of token 0's mask sits inside (-delta, +delta]: stability 0 -> unstable
    iou = torch.tensor([[0.9, 0.2, 0.7, 0.4]])
    obj = torch.tensor([[1.5]])
    monkeypatch.setattr(decoder, "predict_masks", lambda *a, **k: (masks, iou, obj))
    args = (None, None, None, None)
    low, score, obj_out = decoder(*args, multimask_output=False)
    assert torch.equal(low, masks[:, 2:3]) and torch.equal(score, iou[:, 2:3]) and torch.equal(obj_out, obj)

    masks[0, 0] = 4.0  # a confident single mask is stable: token 0 is kept
    low, score, _ = decoder(*args, multimask_output=False)
    assert torch.equal(low, masks[:, 0:1]) and torch.equal(score, iou[:, 0:1])
    low, score, _ = decoder(*args, multimask_output=True)
    assert torch.equal(low, masks[:, 1:]) and torch.equal(score, iou[:, 1:])
    # an empty union (all logits <= -delta) counts as stable, as upstream
    assert decoder.stability_scores(torch.full((1, 1, 4, 4), -1.0)).item() == 1.0


@pytest.mark.parametrize("ws,hw", [(14, (64, 64)), (7, (32, 32)), (8, (256, 256)), (4, (16, 12))])
def test_window_partition_matches_official_6d_form(ws: int, hw: tuple[int, int]) -> None:
    x = torch.randn(2, *hw, 5)
    windows, pad_hw = window_partition(x, ws)
    hp, wp = pad_hw
    ref = torch.nn.functional.pad(x, (0, 0, 0, wp - hw[1], 0, hp - hw[0]))
    ref = ref.view(2, hp // ws, ws, wp // ws, ws, 5).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, 5)
    assert torch.equal(windows, ref)
    assert torch.equal(window_unpartition(windows, ws, pad_hw, hw), x)


def test_encoder_levels_match_reference(hiera_t, encoded) -> None:
    """Reference encoder_synthetic.npz: FPN level 2 (vision_features, before no_mem_embed), the predictor's
    image_embed and conv_s0/s1 of levels 0/1, and the neck's sine position encodings."""
    ref = np.load(support.shared_path("parity", "sam2.1_hiera_t", "encoder_synthetic.npz"))
    feats = {"enc_vision_features": encoded["levels"][-1], "pred_image_embed": encoded["image_embeddings"],
             "pred_high_res_feats0": encoded["high_res_feats_0"], "pred_high_res_feats1": encoded["high_res_feats_1"]}
    for key, value in feats.items():
        sample = ref[f"{key}_sample"]
        step = value.shape[-1] // sample.shape[-1]
        assert tuple(value.shape) == tuple(ref[f"{key}_shape"])
        assert support.rel_l2(value.numpy()[..., ::step, ::step], sample) <= support.EMBED_REL_L2, key
    for i, level in enumerate(encoded["levels"]):
        size = level.shape[-1]
        sample = ref[f"enc_vision_pos_enc{i}_sample"]
        pe = sine_position_encoding(size, size).numpy()[..., :: size // sample.shape[-1], :: size // sample.shape[-1]]
        np.testing.assert_allclose(pe, sample, atol=1e-6, rtol=0)
