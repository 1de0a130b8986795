"""RepViT-SAM: the official layout exactly, RepViT block semantics, and a synthetic-weight forward.

Full-size parity (1024 input, decoder included) is tests/test_parity.py's job; these stay small and fast.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edgekit.synthetic import layout_of, synthetic_state_dict
from edgekit.variants.repvit import RepVGGDW, RepViTSamEncoder, SqueezeExcite, build_repvit_sam
from tests import support



@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    m = build_repvit_sam()
    m.load_state_dict(synthetic_state_dict(layout_of(m.state_dict())), strict=True)
    return m.eval()


def test_state_dict_is_the_official_layout(model: torch.nn.Module) -> None:
    assert layout_of(model.state_dict()) == support.layout_rows("repvit_sam")  # keys, order, shapes, dtypes


def test_block_table_matches_repvit_m23(model: torch.nn.Module) -> None:
    enc = model.image_encoder
    assert isinstance(enc, RepViTSamEncoder)
    assert len(enc.features) == 55
    se = [i for i, f in enumerate(enc.features) if i and isinstance(f.token_mixer[1], SqueezeExcite)]
    assert se[:3] == [1, 3, 5] and 51 not in se and 53 in se and len(se) == 3 + 3 + 17 + 1
    # The 320 -> 640 block keeps the resolution (stride-16 embedding), the other two downsample.
    assert [enc.features[i].token_mixer[0].c.stride for i in (8, 16, 52)] == [(2, 2), (2, 2), (1, 1)]


def _fused_depthwise(block: RepVGGDW) -> tuple[torch.Tensor, torch.Tensor]:
    """RepViT's re-parameterisation written out: one depthwise 3x3 conv equal to the block in eval mode."""

    def fold(w: torch.Tensor, b: torch.Tensor, bn: torch.nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return w * scale[:, None, None, None], (b - bn.running_mean) * scale + bn.bias

    zeros = torch.zeros(block.conv.c.out_channels)
    w, b = fold(block.conv.c.weight, zeros, block.conv.bn)
    identity = F.pad(torch.ones_like(block.conv1.weight), [1, 1, 1, 1])
    w = w + F.pad(block.conv1.weight, [1, 1, 1, 1]) + identity
    return fold(w, b + block.conv1.bias, block.bn)


def test_token_mixer_is_bn_of_dw3x3_plus_dw1x1_plus_identity(model: torch.nn.Module) -> None:
    block = model.image_encoder.features[9].token_mixer[0]
    assert block.post_bn
    x = torch.randn(1, block.conv.c.in_channels, 12, 12, generator=torch.Generator().manual_seed(0))
    w, b = _fused_depthwise(block)
    with torch.no_grad():
        expected = F.conv2d(x, w, b, padding=1, groups=x.shape[1])
        torch.testing.assert_close(block(x), expected, atol=1e-4, rtol=1e-4)


def test_synthetic_forward_is_stride_16_and_normalised(model: torch.nn.Module) -> None:
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = model.encode(x)["image_embeddings"]
    assert out.shape == (1, 256, 8, 8) and torch.isfinite(out).all()
    # The neck ends in LayerNorm2d: per pixel, channels are normalised before the affine part.
    norm = model.image_encoder.neck[3]
    z = (out - norm.bias[:, None, None]) / norm.weight[:, None, None]
    torch.testing.assert_close(z.mean(1), torch.zeros(1, 8, 8), atol=1e-4, rtol=0)
