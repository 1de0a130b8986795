"""RepViT blocks and RepViT-SAM's image encoder (RepViT-M2.3, THU-MIG/RepViT `sam/`), with SAM's decoder.

RepViT is a MobileNetV3-style CNN with ViT-like "token mixer / channel mixer" blocks:
- the stem: two stride-2 3x3 conv+BN with a GELU between (image / 4);
- per block, a token mixer (re-parameterisable depthwise 3x3 + 1x1 + identity, optionally squeeze-excite)
  and a residual channel mixer (1x1 expand x2, GELU, 1x1 project), all conv+BN;
- between stages, a downsample block: depthwise 3x3 stride 2 conv+BN, 1x1 conv+BN to the new width, then
  the residual channel mixer.

Within a stage, squeeze-excite sits on every other block starting with the first, never on the last one,
nor on downsample blocks; this reproduces the official per-block tables of both RepViT-M2.3 (RepViT-SAM) and
RepViT-m1 (EdgeSAM) exactly (the layout tests check every key).

Two versions of the depthwise token mixer exist and the checkpoints differ by them: RepViT-SAM's
(`post_bn=True`) is bn(conv3x3_bn(x) + conv1x1(x) + x) with a plain biased 1x1 conv; EdgeSAM's, the earlier
RepViT, is conv3x3_bn(x) + conv1x1_bn(x) + x. BatchNorm runs with its stored statistics (eval mode) and is
kept unfused here, so that every official key loads as is; fusing belongs to export.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from edgekit.variants.base import SamModel


def make_divisible(value: float, divisor: int = 8) -> int:
    """timm's make_divisible with round_limit=0 (the squeeze-excite width rule): nearest multiple, >= divisor."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


class ConvBN(nn.Sequential):
    """Conv2d without bias followed by BatchNorm2d; keys `c.*`, `bn.*` as the official `Conv2d_BN`."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))


class SqueezeExcite(nn.Module):
    """timm's SEModule(channels, rd_ratio=0.25): mean pool, 1x1 conv, ReLU, 1x1 conv, sigmoid gate."""

    def __init__(self, channels: int, ratio: float = 0.25) -> None:
        super().__init__()
        reduced = make_divisible(channels * ratio)
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            # Export-only: ONNX Runtime's ReduceMean over both axes at once (65,536 values at stride 4) is ~9x
            # less accurate than torch's mean (1.2e-6 vs 1.4e-7 relative); averaging rows, then columns, brings it
            # to 2e-7. The same mean to rounding; without it RepViT-SAM's exported encoder (synthetic weights)
            # missed validation by 5x (6.6e-3 on truck.jpg, torch's own FP32 error 5.7e-4).
            pooled = x.mean(3, keepdim=True).mean(2, keepdim=True)
        else:
            pooled = x.mean((2, 3), keepdim=True)
        scale = self.fc2(torch.relu(self.fc1(pooled)))
        return x * torch.sigmoid(scale)


class RepVGGDW(nn.Module):
    """Depthwise 3x3 + depthwise 1x1 + identity (one depthwise 3x3 conv after re-parameterisation)."""

    def __init__(self, dim: int, post_bn: bool) -> None:
        super().__init__()
        self.post_bn = post_bn
        self.conv = ConvBN(dim, dim, 3, 1, 1, groups=dim)
        if post_bn:
            self.conv1: nn.Module = nn.Conv2d(dim, dim, 1, groups=dim)
            self.bn = nn.BatchNorm2d(dim)
        else:
            self.conv1 = ConvBN(dim, dim, 1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x) + self.conv1(x) + x  # the official summation order
        return self.bn(y) if self.post_bn else y


class Residual(nn.Module):
    """x + m(x) (the official wrapper; its training-time stochastic depth is unused at inference)."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m(x)


def channel_mixer(dim: int) -> Residual:
    return Residual(nn.Sequential(ConvBN(dim, 2 * dim), nn.GELU(), ConvBN(2 * dim, dim)))


class RepViTBlock(nn.Module):
    """A stage block (`downsample=False`: width kept, stride 1) or a downsample block (new width)."""

    def __init__(self, cin: int, cout: int, use_se: bool, downsample: bool, post_bn: bool,
                 dw_stride: int = 2) -> None:
        super().__init__()
        se: nn.Module = SqueezeExcite(cin) if use_se else nn.Identity()  # Identity keeps index 1 keyless
        if downsample:
            self.token_mixer = nn.Sequential(ConvBN(cin, cin, 3, dw_stride, 1, groups=cin), se, ConvBN(cin, cout))
        else:
            if cin != cout:
                raise ValueError(f"a stride-1 RepViT block keeps its width ({cin} != {cout})")
            self.token_mixer = nn.Sequential(RepVGGDW(cin, post_bn), se)
        self.channel_mixer = channel_mixer(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel_mixer(self.token_mixer(x))


def repvit_features(widths: Sequence[int], depths: Sequence[int], post_bn: bool,
                    dw_strides: Sequence[int] | None = None) -> tuple[nn.ModuleList, list[int]]:
    """The stem and all blocks as `features` (official indices), and the index of each stage's last block.

    `dw_strides[i]` is the depthwise stride of the downsample block into stage i+1 (2 unless the official
    model keeps the resolution there).
    """
    strides = list(dw_strides) if dw_strides is not None else [2] * (len(widths) - 1)
    stem = nn.Sequential(ConvBN(3, widths[0] // 2, 3, 2, 1), nn.GELU(), ConvBN(widths[0] // 2, widths[0], 3, 2, 1))
    layers: list[nn.Module] = [stem]
    stage_ends: list[int] = []
    for stage, (width, depth) in enumerate(zip(widths, depths)):
        if stage > 0:
            layers.append(RepViTBlock(widths[stage - 1], width, False, True, post_bn, strides[stage - 1]))
        for i in range(depth):
            layers.append(RepViTBlock(width, width, i % 2 == 0 and i < depth - 1, False, post_bn))
        stage_ends.append(len(layers) - 1)
    return nn.ModuleList(layers), stage_ends


def sam_neck(cin: int, out: int = 256) -> nn.Sequential:
    """SAM's neck: 1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d (no biases)."""
    from edgekit.variants.sam_decoder import LayerNorm2d

    return nn.Sequential(nn.Conv2d(cin, out, 1, bias=False), LayerNorm2d(out),
                         nn.Conv2d(out, out, 3, padding=1, bias=False), LayerNorm2d(out))


class RepViTSamEncoder(nn.Module):
    """RepViT-M2.3 for SAM: (1, 3, 1024, 1024) -> (1, 256, 64, 64).

    The official model keeps stride 16 by giving the last downsample block (320 -> 640) a stride-1
    depthwise conv (its `stride if inp != 320 else 1`); the block keeps its downsample structure.
    """

    WIDTHS = (80, 160, 320, 640)
    DEPTHS = (7, 7, 35, 2)

    def __init__(self) -> None:
        super().__init__()
        self.img_size = 1024
        self.features, _ = repvit_features(self.WIDTHS, self.DEPTHS, post_bn=True, dw_strides=(2, 2, 1))
        self.neck = sam_neck(self.WIDTHS[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.features:
            x = layer(x)
        return self.neck(x)


def build_repvit_sam() -> SamModel:
    from edgekit.variants.sam_decoder import SamDecoderModel

    return SamDecoderModel(image_encoder=RepViTSamEncoder())
