"""EfficientViT-SAM (mit-han-lab/efficientvit): L0/L1/L2 (512 input) and XL0/XL1 (1024 input) image encoders.

The encoder is EfficientViT's "large" backbone (conv stages, then LiteMLA attention stages) feeding a SAM neck
that projects the last three stages to 256 channels, resizes them to 64x64 (bicubic), sums them and refines
with fused-MBConv blocks; a LayerNorm2d closes it. SAM's prompt encoder and mask decoder follow unchanged,
except that the official model zoo sets every norm eps to 1e-6 after building (`set_norm_eps`): that also
reaches the mask decoder's transformer LayerNorms (1e-5 in SAM), so the same is done here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from edgekit.variants.base import SamModel
from edgekit.variants.efficientvit_blocks import (
    NORM_EPS,
    ConvLayer,
    EfficientViTBlock,
    FusedMBConv,
    LayerNorm2d,
    MBConv,
    OpSequential,
    ResBlock,
    Residual,
)

_LOCAL_BLOCKS = {"res": ResBlock, "fmb": FusedMBConv, "mb": MBConv}


@dataclass(frozen=True)
class EncoderConfig:
    """One released size: backbone widths/depths/blocks per stage and the neck's shape."""

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    blocks: tuple[str, ...]  # per stage: "res" | "fmb" | "mb" | "att" (scale 5) | "att@3" (scale 3)
    expands: tuple[float, ...]
    fewer_norm: tuple[bool, ...]
    neck_depth: int
    neck_expand: float
    qkv_dim: int = 32
    neck_width: int = 256


# The L backbones use the official defaults ("res", "fmb", "fmb", "mb", "att"), expand (1, 4, 4, 4, 6).
_L = dict(widths=(32, 64, 128, 256, 512), blocks=("res", "fmb", "fmb", "mb", "att"), expands=(1, 4, 4, 4, 6),
          fewer_norm=(False, False, False, True, True), neck_expand=1)
_XL = dict(widths=(32, 64, 128, 256, 512, 1024), blocks=("res", "fmb", "fmb", "fmb", "att@3", "att@3"),
           expands=(1, 4, 4, 4, 4, 6), fewer_norm=(False, False, False, False, True, True), neck_expand=4)
CONFIGS: dict[str, EncoderConfig] = {
    "l0": EncoderConfig(depths=(1, 1, 1, 4, 4), neck_depth=4, **_L),
    "l1": EncoderConfig(depths=(1, 1, 1, 6, 6), neck_depth=8, **_L),
    "l2": EncoderConfig(depths=(1, 2, 2, 8, 8), neck_depth=12, **_L),
    "xl0": EncoderConfig(depths=(0, 1, 1, 2, 3, 3), neck_depth=6, **_XL),
    "xl1": EncoderConfig(depths=(1, 2, 2, 4, 6, 6), neck_depth=12, **_XL),
}


class LargeBackbone(nn.Module):
    """EfficientViTLargeBackbone: stage 0 = stride-2 conv (+ res blocks); every later stage opens with a
    stride-2 local block (4x the stage's expansion, no residual) followed by `depth` blocks of its kind."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        w0 = cfg.widths[0]
        stage0: list[nn.Module] = [ConvLayer(3, w0, 3, stride=2)]
        stage0 += [Residual(ResBlock(w0, w0, 1, cfg.expands[0], cfg.fewer_norm[0])) for _ in range(cfg.depths[0])]
        stages = [OpSequential(stage0)]
        in_ch = w0
        for s in range(1, len(cfg.widths)):
            kind, width, expand, fewer = cfg.blocks[s], cfg.widths[s], cfg.expands[s], cfg.fewer_norm[s]
            down_kind = kind if kind in ("mb", "fmb") else "mb"
            ops: list[nn.Module] = [Residual(_LOCAL_BLOCKS[down_kind](in_ch, width, 2, expand * 4, fewer), shortcut=False)]
            for _ in range(cfg.depths[s]):
                if kind.startswith("att"):
                    scales = (3,) if kind == "att@3" else (5,)
                    ops.append(EfficientViTBlock(width, dim=cfg.qkv_dim, expand_ratio=expand, scales=scales))
                else:
                    ops.append(Residual(_LOCAL_BLOCKS[kind](width, width, 1, expand, fewer)))
            stages.append(OpSequential(ops))
            in_ch = width
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class Resize64(nn.Module):
    """efficientvit's UpSampleLayer as the SAM neck uses it: bicubic (align_corners=False) to 64x64, skipped
    when the map already has that size (a trace-time shape check)."""

    def __init__(self, size: int = 64) -> None:
        super().__init__()
        self.size = (size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == self.size:
            return x
        return F.interpolate(x, size=self.size, mode="bicubic", align_corners=False)


class SamNeck(nn.Module):
    """The last three backbone stages -> 1x1 conv + BN to the neck width, resized to 64x64, summed, refined by
    residual fused-MBConv blocks, and projected to 256 channels (keys `input_ops`, `middle`, `output_ops`)."""

    def __init__(self, in_channels: Sequence[int], width: int, depth: int, expand_ratio: float, out_dim: int = 256) -> None:
        super().__init__()
        self.input_ops = nn.ModuleList(
            [OpSequential([ConvLayer(c, width, 1, act=False), Resize64()]) for c in in_channels])
        self.middle = OpSequential([Residual(FusedMBConv(width, width, 1, expand_ratio)) for _ in range(depth)])
        self.output_ops = nn.ModuleList([OpSequential([ConvLayer(width, out_dim, 1, bias=True, norm=False, act=False)])])

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        xs = [op(f) for op, f in zip(self.input_ops, feats)]
        # the official list_sum adds right to left: x0 + (x1 + x2)
        total = xs[-1]
        for x in reversed(xs[:-1]):
            total = x + total
        return self.output_ops[0](self.middle(total))


class EfficientViTSamImageEncoder(nn.Module):
    """(1, 3, S, S) normalised image -> (1, 256, 64, 64) embedding; S = 512 (L) or 1024 (XL)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.backbone = LargeBackbone(cfg)
        self.neck = SamNeck(cfg.widths[-1:-4:-1], cfg.neck_width, cfg.neck_depth, cfg.neck_expand)
        self.norm = LayerNorm2d(256, eps=NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        return self.norm(self.neck(feats[-1:-4:-1]))  # the neck reads the last stage first


def set_norm_eps(model: nn.Module, eps: float = NORM_EPS) -> None:
    """What the official model zoo does after building: every BatchNorm / LayerNorm / GroupNorm gets `eps`.
    (segment-anything's LayerNorm2d is no nn.LayerNorm, so it keeps its own eps, which is 1e-6 as well.)"""
    for m in model.modules():
        if isinstance(m, (nn.GroupNorm, nn.LayerNorm, _BatchNorm)):
            m.eps = eps


def build_efficientvit_sam(size: str) -> SamModel:
    """The whole model: this encoder + SAM's prompt encoder (1024 frame, 64x64 grid) and mask decoder."""
    from edgekit.variants.sam_decoder import SamDecoderModel

    model = SamDecoderModel(image_encoder=EfficientViTSamImageEncoder(CONFIGS[size]))
    set_norm_eps(model, NORM_EPS)
    return model


def build_efficientvit_sam_l0() -> SamModel:
    return build_efficientvit_sam("l0")


def build_efficientvit_sam_l1() -> SamModel:
    return build_efficientvit_sam("l1")


def build_efficientvit_sam_l2() -> SamModel:
    return build_efficientvit_sam("l2")


def build_efficientvit_sam_xl0() -> SamModel:
    return build_efficientvit_sam("xl0")


def build_efficientvit_sam_xl1() -> SamModel:
    return build_efficientvit_sam("xl1")
