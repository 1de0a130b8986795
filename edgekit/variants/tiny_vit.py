"""TinyViT-5M, the image encoder of MobileSAM and TinySAM (keys `image_encoder.*` of mobile_sam_vit_t /
tinysam_vit_t; both releases share one layout), plus their builders.

Stages: a conv stem (/4), one MBConv stage, three windowed-attention stages, and SAM's 256-channel neck.
The classification head (`norm_head`, `head`) exists in the release files but is unused, kept so the
state dict loads strictly. Exact GELU throughout, as the official code uses nn.GELU.
"""
from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from edgekit.variants.sam_decoder import LayerNorm2d, SamDecoderModel


class Conv2dBN(nn.Sequential):
    """Conv (no bias) + BatchNorm; keys `.c` and `.bn` as in the release files."""

    def __init__(self, a: int, b: int, ks: int = 1, stride: int = 1, pad: int = 0, groups: int = 1) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(a, b, ks, stride, pad, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(b))


class PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(Conv2dBN(in_chans, embed_dim // 2, 3, 2, 1), nn.GELU(),
                                 Conv2dBN(embed_dim // 2, embed_dim, 3, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project, residual, then GELU."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = Conv2dBN(dim, hidden, 1)
        self.conv2 = Conv2dBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.conv3 = Conv2dBN(hidden, dim, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv1(x))
        y = self.act(self.conv2(y))
        return self.act(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """Token grid -> next stage's channels; stride 2, except into the last (320-d) stage, which keeps 64x64."""

    def __init__(self, resolution: int, dim: int, out_dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        stride = 1 if out_dim in (320, 448, 576) else 2  # the official rule: SAM needs a 64x64 embedding
        self.conv1 = Conv2dBN(dim, out_dim, 1)
        self.conv2 = Conv2dBN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2dBN(out_dim, out_dim, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # tokens (B, H*W, C) from an attention stage
            x = x.reshape(x.shape[0], self.resolution, self.resolution, -1).permute(0, 3, 1, 2)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        return self.conv3(x).flatten(2).transpose(1, 2)


class ConvLayer(nn.Module):
    def __init__(self, dim: int, resolution: int, depth: int, out_dim: int, expand_ratio: float = 4.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([MBConv(dim, expand_ratio) for _ in range(depth)])
        self.downsample = PatchMerging(resolution, dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x)


def attention_offset_index(window: int) -> tuple[torch.Tensor, int]:
    """(N, N) index into the per-offset bias table (offsets numbered in first-seen order, as officially) and
    the number of distinct offsets. Counted in Python so that building on the meta device works."""
    points = list(itertools.product(range(window), range(window)))
    offsets: dict[tuple[int, int], int] = {}
    idxs = []
    for p1 in points:
        for p2 in points:
            off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            idxs.append(offsets.setdefault(off, len(offsets)))
    return torch.tensor(idxs, dtype=torch.long).view(len(points), len(points)), len(offsets)


class Attention(nn.Module):
    """Window attention with a learned bias per (|dy|, |dx|) offset and head.

    The bias is gathered on every call from the current `attention_biases`; the official module caches it
    in eval mode, and a cache filled before the weights load is stale (0.49 max abs error measured by the
    reference), so no cache is kept. `attention_bias_idxs` is a non-persistent buffer: not in the files."""

    def __init__(self, dim: int, key_dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.scale = key_dim ** -0.5
        self.d = key_dim  # attn_ratio 1: value width == key width
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, num_heads * (2 * key_dim + self.d))
        self.proj = nn.Linear(num_heads * self.d, dim)
        idx, num_offsets = attention_offset_index(window)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, num_offsets))
        self.register_buffer("attention_bias_idxs", idx, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, self.num_heads, -1)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.d], dim=3)
        q, k, v = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)
        attn = (q @ k.transpose(-2, -1)) * self.scale + self.attention_biases[:, self.attention_bias_idxs]
        out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, self.num_heads * self.d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Windowed attention (zero-padded to whole windows), a depthwise 3x3 conv, then the MLP."""

    def __init__(self, dim: int, resolution: int, num_heads: int, window: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.resolution = resolution
        self.window = window
        self.attn = Attention(dim, dim // num_heads, num_heads, window)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = Conv2dBN(dim, dim, 3, 1, 1, groups=dim)

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        b, l, c = x.shape
        h = w = self.resolution
        ws = self.window
        if h == ws and w == ws:
            return self.attn(x)
        x = x.view(b, h, w, c)
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        if pad_b or pad_r:  # shapes are static, so this is a trace-time decision
            # padded tokens join the attention (after its LayerNorm) exactly as in the official code
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // ws, pw // ws
        x = x.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        x = self.attn(x)
        x = x.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)
        return x[:, :h, :w].reshape(b, l, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, l, c = x.shape
        x = x + self._windowed_attention(x)
        x = x.transpose(1, 2).reshape(b, c, self.resolution, self.resolution)
        x = self.local_conv(x).view(b, c, l).transpose(1, 2)
        return x + self.mlp(x)


class BasicLayer(nn.Module):
    def __init__(self, dim: int, resolution: int, depth: int, num_heads: int, window: int,
                 out_dim: int | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([TinyViTBlock(dim, resolution, num_heads, window) for _ in range(depth)])
        self.downsample = PatchMerging(resolution, dim, out_dim) if out_dim is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x) if self.downsample is not None else x


class TinyViT(nn.Module):
    """(1, 3, 1024, 1024) -> (1, 256, 64, 64). Defaults are TinyViT-5M as built by MobileSAM's build_sam_vit_t."""

    def __init__(self, img_size: int = 1024, in_chans: int = 3, num_classes: int = 1000,
                 embed_dims: tuple[int, ...] = (64, 128, 160, 320), depths: tuple[int, ...] = (2, 2, 6, 2),
                 num_heads: tuple[int, ...] = (2, 4, 5, 10), window_sizes: tuple[int, ...] = (7, 7, 14, 7),
                 mbconv_expand_ratio: float = 4.0, out_chans: int = 256) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        res = img_size // 4
        self.layers = nn.ModuleList([ConvLayer(embed_dims[0], res, depths[0], embed_dims[1], mbconv_expand_ratio)])
        for i in range(1, len(depths)):
            # the last stage keeps the previous resolution (its PatchMerging has stride 1)
            stage_res = res // (2 ** (i - 1 if i == len(depths) - 1 else i))
            out_dim = embed_dims[i + 1] if i < len(depths) - 1 else None
            self.layers.append(BasicLayer(embed_dims[i], stage_res, depths[i], num_heads[i], window_sizes[i], out_dim))
        self.embed_hw = res // 2 ** (len(depths) - 2)
        self.norm_head = nn.LayerNorm(embed_dims[-1])  # classification head: unused, kept for strict loading
        self.head = nn.Linear(embed_dims[-1], num_classes)
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        b, _, c = x.shape
        x = x.view(b, self.embed_hw, self.embed_hw, c).permute(0, 3, 1, 2)
        return self.neck(x)


def build_mobilesam() -> SamDecoderModel:
    return SamDecoderModel(image_encoder=TinyViT())


def build_tinysam() -> SamDecoderModel:
    """TinySAM re-trains MobileSAM's architecture (same TinyViT-5M, same decoder, same layout)."""
    return SamDecoderModel(image_encoder=TinyViT())
