"""EfficientTAM's image encoder: a plain ViT trunk (ViTDet-style windowed blocks, keys `image_encoder.trunk.*`)
and its one-level neck (`image_encoder.neck.*`: 1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d).

The trunk is a DeiT-style ViT at patch 16: 12 blocks, 14x14 windows except blocks 2, 5, 8, 11 (global), an
absolute position embedding pretrained at 224 (with a class-token slot, dropped) and bicubically resized to
the 64x64 grid. No relative positions, no layer scale. Reshapes stay 4-D for the ONNX exporters.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from edgekit.variants.hiera import BlockMLP, PatchEmbed, window_partition, window_unpartition
from edgekit.variants.sam_prompt_encoder import LayerNorm2d


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        heads, hd = self.num_heads, c // self.num_heads
        # qkv channels are (3, heads, head_dim): splitting the last axis is the official 5-D permute + unbind
        q, k, v = (t.reshape(b, h * w, heads, hd).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, h, w, c))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, window_size: int = 0, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = BlockMLP(dim, int(dim * mlp_ratio))
        self.window_size = window_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)
            x = window_unpartition(self.attn(x), self.window_size, pad_hw, (h, w))
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Returns [last block output] as (B, C, 64, 64): one feature level."""

    def __init__(self, embed_dim: int = 192, depth: int = 12, num_heads: int = 3, patch_size: int = 16,
                 window_size: int = 14, window_block_indexes: tuple[int, ...] = (0, 1, 3, 4, 6, 7, 9, 10),
                 pretrain_img_size: int = 224) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(3, embed_dim, kernel=patch_size, stride=patch_size, padding=0)
        num_patches = (pretrain_img_size // patch_size) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))  # + the class-token slot
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, window_size=window_size if i in window_block_indexes else 0)
            for i in range(depth)
        ])

    def _abs_pos(self, h: int, w: int) -> torch.Tensor:
        pos = self.pos_embed[:, 1:]  # drop the class token's slot
        size = int(math.sqrt(pos.shape[1]))
        pos = pos.reshape(1, size, size, -1)
        if (size, size) == (h, w):
            return pos
        pos = F.interpolate(pos.permute(0, 3, 1, 2), size=(h, w), mode="bicubic", align_corners=False)
        return pos.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self._abs_pos(x.shape[1], x.shape[2])
        for block in self.blocks:
            x = block(x)
        return [x.permute(0, 3, 1, 2)]


class ViTDetNeck(nn.Module):
    """One level: conv_1x1 -> LayerNorm2d -> conv_3x3 -> LayerNorm2d (convs bias-free, as neck_norm='LN')."""

    def __init__(self, in_dim: int, d_model: int = 256) -> None:
        super().__init__()
        level = nn.Sequential()
        level.add_module("conv_1x1", nn.Conv2d(in_dim, d_model, kernel_size=1, bias=False))
        level.add_module("norm_0", LayerNorm2d(d_model))
        level.add_module("conv_3x3", nn.Conv2d(d_model, d_model, kernel_size=3, padding=1, bias=False))
        level.add_module("norm_1", LayerNorm2d(d_model))
        self.convs = nn.ModuleList([level])

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.convs[0](xs[0])]
