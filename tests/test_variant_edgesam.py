"""EdgeSAM: the official layout exactly, the fusion neck, and loading that is strict except for the documented
extras (the optional box-proposal head: `fpn.*`, `rpn_head.*`).

Full-size parity (1024 input, decoder included) is tests/test_parity.py's job; these stay small and fast.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from edgekit.checkpoints import build_variant
from edgekit.errors import CheckpointError
from edgekit.synthetic import layout_of, synthetic_state_dict
from edgekit.variants.edgesam import EdgeSamEncoder, build_edgesam
from edgekit.variants.registry import get_spec
from tests import support

# Keys that EdgeSAM's convert_weights.py --rpn-path merges in (mmdet FPN neck -> fpn.*, RPN head -> rpn_head.*).
RPN_EXTRAS = {
    "fpn.lateral_convs.0.conv.weight": (96, 96, 1, 1),
    "fpn.fpn_convs.0.conv.bias": (96,),
    "rpn_head.rpn_conv.weight": (96, 96, 3, 3),
    "rpn_head.rpn_cls.bias": (3,),
}



@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        rows = layout_of(build_edgesam().state_dict())
    return synthetic_state_dict(rows)


@pytest.fixture(scope="module")
def model(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    m = build_edgesam()
    m.load_state_dict(state, strict=True)
    return m.eval()


def test_state_dict_is_the_official_layout(model: torch.nn.Module) -> None:
    assert layout_of(model.state_dict()) == support.layout_rows("edge_sam")  # keys, order, shapes, dtypes


def test_stage_table_matches_repvit_m1() -> None:
    enc = EdgeSamEncoder()
    assert len(enc.features) == 27 and enc.stage2_end == 23
    # fuse=True: every downsample block has stride 2 (stage 3 is at stride 32 and is upsampled x2).
    assert [enc.features[i].token_mixer[0].c.stride for i in (4, 8, 24)] == [(2, 2)] * 3
    assert not hasattr(enc.features[1].token_mixer[0], "bn")  # the earlier RepViT token mixer: no trailing BN


def test_fusion_neck_adds_stage2_and_upsampled_stage3(model: torch.nn.Module) -> None:
    enc = model.image_encoder
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = model.encode(x)["image_embeddings"]
        h = x
        for layer in enc.features[: enc.stage2_end + 1]:
            h = layer(h)
        s2 = h
        for layer in enc.features[enc.stage2_end + 1:]:
            h = layer(h)
        assert s2.shape == (1, 192, 8, 8) and h.shape == (1, 384, 4, 4)
        up = F.interpolate(F.conv2d(h, enc.fuse_stage3.op_list[0].weight), size=(8, 8), mode="bicubic",
                           align_corners=False)
        expected = enc.neck(F.conv2d(s2, enc.fuse_stage2.weight) + up)
    assert out.shape == (1, 256, 8, 8) and torch.isfinite(out).all()
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_registry_ignores_only_the_rpn_head() -> None:
    assert get_spec("edgesam").ignored_key_prefixes == ("fpn.", "rpn_head.")


def test_release_file_with_rpn_head_loads(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    extras = {k: torch.full(shape, 0.5) for k, shape in RPN_EXTRAS.items()}
    path = tmp_path / "edge_sam_rpn.pth"
    torch.save({**state, **extras}, path)
    loaded = build_variant("edgesam", checkpoint=path)
    key = "image_encoder.fuse_stage3.op_list.0.weight"
    assert torch.equal(loaded.state_dict()[key], state[key])
    assert not any(k.startswith(("fpn.", "rpn_head.")) for k in loaded.state_dict())


def test_file_missing_a_key_or_with_other_extras_is_refused(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    missing = "image_encoder.features.5.token_mixer.1.fc1.bias"
    # Outside the ignored prefixes everything stays strict, e.g. an un-merged LoRA factor (the official loader
    # would drop it silently and so change the model).
    extra = "mask_decoder.transformer.layers.0.self_attn.q_proj.lora_A"
    path = tmp_path / "edge_sam_bad.pth"
    torch.save({**{k: v for k, v in state.items() if k != missing}, extra: torch.zeros(16, 256)}, path)
    with pytest.raises(CheckpointError) as info:
        build_variant("edgesam", checkpoint=path)
    assert f"1 missing: {missing}" in info.value.message and f"1 unexpected: {extra}" in info.value.message

