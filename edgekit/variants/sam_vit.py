"""SAM's ViT image encoder (ViT-B/L/H) and SlimSAM's uniformly pruned ViT-B, with the standard SAM decoder.

The encoder: 16x16 patches -> absolute position embedding -> `depth` blocks, windowed (14x14) attention
except at four global blocks -> neck (1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d) to 256 channels.

SlimSAM's uniform ("local") pruning keeps ViT-B's topology and shrinks every block by the same amount, so
one configuration per file suffices. The widths are read off the official layouts: the residual width
(pos_embed, norms, proj), the fused qkv (3 x width, split into 12 heads; rel-pos tables give the head width)
and the MLP hidden width (lin1). The numbers match SlimSAM's own build_sam_vit_p50 / _p77.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgekit.variants.base import SamModel
from edgekit.variants.sam_decoder import LayerNorm2d, SamDecoderModel
from edgekit.variants.vit_blocks import Block, PatchEmbed


@dataclass(frozen=True)
class ViTConfig:
    """One released encoder's shape. `global_attn_indexes` are the blocks that attend over the whole grid."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_dim: int
    global_attn_indexes: tuple[int, ...]
    window_size: int = 14
    patch_size: int = 16
    img_size: int = 1024
    out_chans: int = 256


SAM_VIT_B = ViTConfig(embed_dim=768, depth=12, num_heads=12, mlp_dim=3072, global_attn_indexes=(2, 5, 8, 11))
SAM_VIT_L = ViTConfig(embed_dim=1024, depth=24, num_heads=16, mlp_dim=4096, global_attn_indexes=(5, 11, 17, 23))
SAM_VIT_H = ViTConfig(embed_dim=1280, depth=32, num_heads=16, mlp_dim=5120, global_attn_indexes=(7, 15, 23, 31))
# SlimSAM-50: width 384 (12 heads of 32), MLP 1536. SlimSAM-77: width 168 (12 heads of 14), MLP 696.
SLIMSAM_50 = ViTConfig(embed_dim=384, depth=12, num_heads=12, mlp_dim=1536, global_attn_indexes=(2, 5, 8, 11))
SLIMSAM_77 = ViTConfig(embed_dim=168, depth=12, num_heads=12, mlp_dim=696, global_attn_indexes=(2, 5, 8, 11))


class ImageEncoderViT(nn.Module):
    """(B, 3, S, S) normalised image -> (B, out_chans, S/16, S/16) embeddings."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        grid = config.img_size // config.patch_size
        self.patch_embed = PatchEmbed(config.patch_size, 3, config.embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, config.embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                config.embed_dim,
                config.num_heads,
                config.mlp_dim,
                window_size=0 if i in config.global_attn_indexes else config.window_size,
                grid=(grid, grid),
            )
            for i in range(config.depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(config.embed_dim, config.out_chans, kernel_size=1, bias=False),
            LayerNorm2d(config.out_chans),
            nn.Conv2d(config.out_chans, config.out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(config.out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The position embedding is fixed at the 64x64 grid of a 1024 input, as in the official encoder.
        x = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))


def _build(config: ViTConfig) -> SamModel:
    return SamDecoderModel(image_encoder=ImageEncoderViT(config))


def build_sam_vit_b() -> SamModel:
    return _build(SAM_VIT_B)


def build_sam_vit_l() -> SamModel:
    return _build(SAM_VIT_L)


def build_sam_vit_h() -> SamModel:
    return _build(SAM_VIT_H)


def build_slimsam_50() -> SamModel:
    return _build(SLIMSAM_50)


def build_slimsam_77() -> SamModel:
    return _build(SLIMSAM_77)
