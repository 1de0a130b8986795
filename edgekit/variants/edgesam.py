"""EdgeSAM's image encoder (chongzhou96/EdgeSAM `RepViT('m1', fuse=True)`), with SAM's decoder.

RepViT-m1 (stages of 48, 96, 192, 384 channels at strides 4, 8, 16, 32; the earlier RepViT token mixer
without a trailing BatchNorm). SAM wants a stride-16 embedding, so EdgeSAM fuses the last two stages FPN-style:
the stride-16 stage through a 1x1 conv to 256 channels, plus the stride-32 stage through a 1x1 conv to 256
channels and a x2 bicubic upsampling (the release's `upsample_mode`), then SAM's neck.

Loading: the official builder loads release files with `strict=False`. The only keys a release file may carry
beyond the model are EdgeSAM's optional box-proposal head for its "segment everything" mode:
`scripts/convert_weights.py --rpn-path` merges an mmdet RPN/CenterNet checkpoint into the release file,
renaming its `neck.*` to `fpn.*` and its `bbox_head.*` to `rpn_head.*`. The prompt-driven model never builds
them (`build_edge_sam` passes no rpn_head, so `Sam.fpn`/`Sam.rpn_head` are None) and the official loader drops
them silently; the registry entry lists exactly these two prefixes as ignored, and every other key is checked
strictly (a missing, extra or mis-shaped key anywhere else is refused). Nothing else is added on the way to a
release: the distillation-time extras (teacher prompt encoder / mask decoder, KD targets) are separate objects
or outputs, not parameters of the saved model, and `pixel_mean`/`pixel_std` are non-persistent buffers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.variants.base import SamModel
from edgekit.variants.repvit import repvit_features, sam_neck


class Upsample2x(nn.Module):
    """F.interpolate x2 (bicubic, align_corners=False, as EfficientViT's `resize` that EdgeSAM uses)."""

    def __init__(self, mode: str = "bicubic") -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=False)


class ConvUpsample(nn.Module):
    """1x1 conv then x2 upsampling; `op_list` is the official `OpSequential`'s attribute (key names)."""

    def __init__(self, cin: int, cout: int, mode: str = "bicubic") -> None:
        super().__init__()
        self.op_list = nn.ModuleList([nn.Conv2d(cin, cout, 1, bias=False), Upsample2x(mode)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.op_list:
            x = op(x)
        return x


class EdgeSamEncoder(nn.Module):
    """(1, 3, 1024, 1024) -> (1, 256, 64, 64): RepViT-m1 with the stage-2/stage-3 fusion neck."""

    WIDTHS = (48, 96, 192, 384)
    DEPTHS = (3, 3, 15, 2)

    def __init__(self, upsample_mode: str = "bicubic") -> None:
        super().__init__()
        self.img_size = 1024
        # With fuse=True every downsample keeps stride 2 (the official skip_downsample is for fuse=False only).
        self.features, stage_ends = repvit_features(self.WIDTHS, self.DEPTHS, post_bn=False)
        self.stage2_end = stage_ends[2]  # a Python int fixed at build time: the graph has no branching
        self.fuse_stage2 = nn.Conv2d(self.WIDTHS[2], 256, 1, bias=False)
        self.fuse_stage3 = ConvUpsample(self.WIDTHS[3], 256, upsample_mode)
        self.neck = sam_neck(256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stage2 = x
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == self.stage2_end:
                stage2 = x
        return self.neck(self.fuse_stage2(stage2) + self.fuse_stage3(x))


def _official_key_order(decoder: nn.Module) -> None:
    """EdgeSAM's decoder Attention registers v_proj before k_proj (to leave room for its optional LoRA q/v), so
    its state dict lists the same keys in another order; re-register them so `state_dict()` follows the
    official layout exactly. Only the order of the module dict changes: no value, key or computation does."""
    for module in decoder.modules():
        if {"q_proj", "k_proj", "v_proj", "out_proj"} <= set(module._modules):
            order = ("q_proj", "v_proj", "k_proj", "out_proj")
            children = {name: module._modules.pop(name) for name in order}
            module._modules.update(children)


def build_edgesam() -> SamModel:
    from edgekit.variants.sam_decoder import SamDecoderModel

    model = SamDecoderModel(image_encoder=EdgeSamEncoder())
    _official_key_order(model.mask_decoder)
    return model
