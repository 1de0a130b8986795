"""SAM 2's image encoder: the Hiera trunk (keys `image_encoder.trunk.*`), the FPN neck (`image_encoder.neck.*`)
and the sine position encoding of the neck levels.

Hiera is a 4-stage windowed ViT; the first block of each later stage max-pools its queries (stride 2), so the
stages run at strides 4, 8, 16, 32. Every reshape here is at most 4-D (windows are cut as
(B*nh, ws, nw, ws*C) -> (B*nh*nw, ws, ws, C), heads split from the channel axis), because the 5-D/6-D
reshapes of the official code fail in torch's dynamo ONNX exporter; the values are the same.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class BlockMLP(nn.Module):
    """Two Linear layers with exact GELU between them (keys `mlp.layers.0/1`, as SAM 2's MLP)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(dim, hidden), nn.Linear(hidden, dim)])
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](self.act(self.layers[0](x)))


def window_partition(x: torch.Tensor, ws: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nh * nw, ws, ws, C) windows (zero-padded bottom/right) and the padded size."""
    b, h, w, c = x.shape
    pad_h, pad_w = (ws - h % ws) % ws, (ws - w % ws) % ws
    if pad_h or pad_w:  # shapes are static: a trace-time branch
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.reshape(b * hp // ws, ws, wp // ws, ws * c).permute(0, 2, 1, 3)
    return x.reshape(-1, ws, ws, c), (hp, wp)


def window_unpartition(windows: torch.Tensor, ws: int, pad_hw: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of window_partition, cropping the padding: -> (B, H, W, C)."""
    (hp, wp), (h, w) = pad_hw, hw
    c = windows.shape[-1]
    x = windows.reshape(-1, wp // ws, ws, ws * c).permute(0, 2, 1, 3).reshape(-1, hp, wp, c)
    return x[:, :h, :w, :] if (hp, wp) != (h, w) else x


def _pool_nhwc(x: torch.Tensor, pool: nn.Module) -> torch.Tensor:
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Attention over (B, H, W, C) tokens whose queries are optionally max-pooled (stage transitions)."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        # the qkv channels are laid out (3, heads, head_dim): a 3-way split of the last axis is the official unbind
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if self.q_pool is not None:
            q = _pool_nhwc(q, self.q_pool)
            h, w = q.shape[1], q.shape[2]
        heads = self.num_heads
        hd = q.shape[-1] // heads
        q = q.reshape(b, h * w, heads, hd).transpose(1, 2)
        k = k.reshape(b, -1, heads, hd).transpose(1, 2)
        v = v.reshape(b, -1, heads, hd).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # the official op (default 1/sqrt(head_dim) scale)
        return self.proj(out.transpose(1, 2).reshape(b, h, w, heads * hd))


class MultiScaleBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, num_heads: int, q_stride: int | None = None, window_size: int = 0,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride) if q_stride else None
        self.pool = pool
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool=pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = BlockMLP(dim_out, int(dim_out * mlp_ratio))
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:  # the stage's first block: the skip path is projected (and pooled) too
            shortcut = self.proj(x)
            if self.pool is not None:
                shortcut = _pool_nhwc(shortcut, self.pool)
        ws = self.window_size
        if ws > 0:
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, ws)
        x = self.attn(x)
        if self.q_stride:
            # the pooled queries shrank every window: unpartition with the smaller window on the pooled grid
            ws = self.window_size // self.q_stride
            h, w = shortcut.shape[1], shortcut.shape[2]
            pad_hw = (h + (ws - h % ws) % ws, w + (ws - w % ws) % ws) if ws > 0 else (h, w)
        if self.window_size > 0:
            x = window_unpartition(x, ws, pad_hw, (h, w))
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, embed_dim: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=kernel, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # -> (B, H, W, C)


class Hiera(nn.Module):
    """Returns the output of each stage's last block, NCHW, highest resolution first."""

    def __init__(self, embed_dim: int = 96, num_heads: int = 1, stages: tuple[int, ...] = (2, 3, 16, 3),
                 global_att_blocks: tuple[int, ...] = (12, 16, 20), window_spec: tuple[int, ...] = (8, 4, 14, 7),
                 window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14), q_pool: int = 3, q_stride: int = 2,
                 dim_mul: float = 2.0, head_mul: float = 2.0) -> None:
        super().__init__()
        self.stage_ends = [sum(stages[:i]) - 1 for i in range(1, len(stages) + 1)]
        q_pool_blocks = [end + 1 for end in self.stage_ends[:-1]][:q_pool]
        self.patch_embed = PatchEmbed(3, embed_dim, kernel=7, stride=4, padding=3)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, window_spec[0], window_spec[0]))
        self.blocks = nn.ModuleList()
        cur_stage = 1
        for i in range(sum(stages)):
            dim_out = embed_dim
            # the window size lags a block: a stage's first block still uses the previous stage's window
            window_size = 0 if i in global_att_blocks else window_spec[cur_stage - 1]
            if i - 1 in self.stage_ends:
                dim_out = int(embed_dim * dim_mul)
                num_heads = int(num_heads * head_mul)
                cur_stage += 1
            self.blocks.append(MultiScaleBlock(embed_dim, dim_out, num_heads, window_size=window_size,
                                               q_stride=q_stride if i in q_pool_blocks else None))
            embed_dim = dim_out
        self.channel_list = [self.blocks[i].dim_out for i in self.stage_ends[::-1]]

    def _pos_embed(self, h: int, w: int) -> torch.Tensor:
        """Background PE (bicubic to the grid) plus the window PE tiled over it -> (1, h, w, C)."""
        pos = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")
        win = self.pos_embed_window
        pos = pos + win.tile(1, 1, h // win.shape[-2], w // win.shape[-1])
        return pos.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self._pos_embed(x.shape[1], x.shape[2])
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs


class FpnNeck(nn.Module):
    """1x1 lateral convs to d_model; top-down (nearest x2) fusion only into `top_down_levels`."""

    def __init__(self, backbone_channel_list: list[int], d_model: int = 256,
                 top_down_levels: tuple[int, ...] = (2, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        for dim in backbone_channel_list:  # lowest resolution first, as the checkpoint orders them
            lateral = nn.Sequential()
            lateral.add_module("conv", nn.Conv2d(dim, d_model, kernel_size=1))
            self.convs.append(lateral)
        self.top_down_levels = tuple(top_down_levels)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        n = len(self.convs) - 1
        out: list[torch.Tensor] = [xs[0]] * len(xs)
        prev = None
        for i in range(n, -1, -1):
            lateral = self.convs[n - i](xs[i])
            if i in self.top_down_levels and prev is not None:
                prev = lateral + F.interpolate(prev, scale_factor=2.0, mode="nearest")
            else:
                prev = lateral
            out[i] = prev
        return out


class ImageEncoder(nn.Module):
    """trunk -> neck -> the neck levels, highest resolution first, less the `scalp` lowest ones."""

    def __init__(self, trunk: nn.Module, neck: nn.Module, scalp: int = 0) -> None:
        super().__init__()
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        levels = self.neck(self.trunk(image))
        return levels[: len(levels) - self.scalp]


def sine_position_encoding(h: int, w: int, num_pos_feats: int = 256, temperature: float = 10000.0) -> torch.Tensor:
    """The neck's PositionEmbeddingSine (normalised, scale 2*pi) of an (h, w) grid -> (1, C, h, w).

    The image path does not use it (the decoder has its own random-Fourier PE); the memory modules do."""
    half = num_pos_feats // 2
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, h + 1, dtype=torch.float32).view(h, 1).expand(h, w)
    x = torch.arange(1, w + 1, dtype=torch.float32).view(1, w).expand(h, w)
    y = y / (h + eps) * scale
    x = x / (w + eps) * scale
    dim_t = torch.arange(half, dtype=torch.float32)
    dim_t = temperature ** (2 * (dim_t // 2) / half)
    px, py = x[..., None] / dim_t, y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=-1).flatten(2)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=-1).flatten(2)
    return torch.cat((py, px), dim=-1).permute(2, 0, 1).unsqueeze(0)
