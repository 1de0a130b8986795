"""The building blocks of EfficientViT (mit-han-lab/efficientvit `models/nn/ops.py`), for the SAM encoders.

Attribute names are the official ones (`conv`/`norm`, `main`/`shortcut`, `op_list`, `qkv`/`aggreg`/`proj`,
`context_module`/`local_module` ...) because they are the checkpoint's key paths. Two numerical facts of the
official code matter for parity: its "gelu" is the tanh approximation (`nn.GELU(approximate="tanh")`), and
EfficientViT-SAM's model zoo sets every norm's eps to 1e-6 after building (BatchNorm included), so 1e-6 is
the default here.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

NORM_EPS = 1e-6  # create_efficientvit_sam_model -> set_norm_eps(model, 1e-6)


def gelu() -> nn.Module:
    return nn.GELU(approximate="tanh")  # efficientvit registers "gelu" as the tanh approximation


class LayerNorm2d(nn.LayerNorm):
    """Channel LayerNorm on NCHW maps, written as efficientvit's `LayerNorm2d` (an nn.LayerNorm subclass, so
    set_norm_eps reaches it): mean, then the biased variance of the centred map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x - torch.mean(x, dim=1, keepdim=True)
        out = out / torch.sqrt(torch.square(out).mean(dim=1, keepdim=True) + self.eps)
        return out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ConvLayer(nn.Module):
    """Conv2d ("same" padding) -> optional BatchNorm -> optional activation; keys `conv.*`, `norm.*`."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 bias: bool = False, norm: bool = True, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding=kernel_size // 2, groups=groups, bias=bias)
        self.norm = nn.BatchNorm2d(out_ch, eps=NORM_EPS) if norm else None
        self.act = gelu() if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.act is not None:
            x = self.act(x)
        return x


class ResBlock(nn.Module):
    """Two 3x3 convs (the XL / L stems). `fewer_norm`: first conv has a bias instead of a norm."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, expand_ratio: float = 1, fewer_norm: bool = False) -> None:
        super().__init__()
        mid = round(in_ch * expand_ratio)
        self.conv1 = ConvLayer(in_ch, mid, 3, stride, bias=fewer_norm, norm=not fewer_norm)
        self.conv2 = ConvLayer(mid, out_ch, 3, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class FusedMBConv(nn.Module):
    """3x3 expanding conv -> 1x1 projection (no activation after the projection)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, expand_ratio: float = 6, fewer_norm: bool = False) -> None:
        super().__init__()
        mid = round(in_ch * expand_ratio)
        self.spatial_conv = ConvLayer(in_ch, mid, 3, stride, bias=fewer_norm, norm=not fewer_norm)
        self.point_conv = ConvLayer(mid, out_ch, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.spatial_conv(x))


class MBConv(nn.Module):
    """1x1 expansion -> 3x3 depthwise -> 1x1 projection. `fewer_norm`: the first two convs carry biases and no
    norm (the attention stages and their downsampling blocks)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, expand_ratio: float = 6, fewer_norm: bool = False) -> None:
        super().__init__()
        mid = round(in_ch * expand_ratio)
        self.inverted_conv = ConvLayer(in_ch, mid, 1, bias=fewer_norm, norm=not fewer_norm)
        self.depth_conv = ConvLayer(mid, mid, 3, stride, groups=mid, bias=fewer_norm, norm=not fewer_norm)
        self.point_conv = ConvLayer(mid, out_ch, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(self.inverted_conv(x)))


class LiteMLA(nn.Module):
    """Lightweight multi-scale linear attention with a ReLU kernel.

    q/k/v come from one 1x1 conv, plus one depthwise+grouped-conv aggregation of them per scale; each group
    of `dim` channels is a head. Attention is linear in the number of positions: out = (v k^T) q, and the
    normaliser (sum_n k_n)^T q comes from the same product by appending a row of ones to v. Everything is
    Concat / MatMul / Div with shapes fixed at trace time, so it exports to ONNX opset 17 as is.
    """

    def __init__(self, in_ch: int, out_ch: int, dim: int = 32, scales: Sequence[int] = (5,), eps: float = 1e-15) -> None:
        super().__init__()
        heads = in_ch // dim
        total = heads * dim
        self.dim = dim
        self.eps = eps  # the official 1e-15; not a norm eps, set_norm_eps leaves it alone
        self.qkv = ConvLayer(in_ch, 3 * total, 1, norm=False, act=False)
        self.aggreg = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(3 * total, 3 * total, s, padding=s // 2, groups=3 * total, bias=False),
                nn.Conv2d(3 * total, 3 * total, 1, groups=3 * heads, bias=False),
            )
            for s in scales
        ])
        self.kernel_func = nn.ReLU()
        self.proj = ConvLayer(total * (1 + len(scales)), out_ch, 1, act=False)

    def linear_attention(self, qkv: torch.Tensor) -> torch.Tensor:
        b, _, h, w = qkv.shape
        qkv = qkv.reshape(b, -1, 3 * self.dim, h * w)  # (B, heads, [q|k|v] channels, N)
        q = self.kernel_func(qkv[:, :, : self.dim])
        k = self.kernel_func(qkv[:, :, self.dim : 2 * self.dim])
        v = qkv[:, :, 2 * self.dim :]
        # the official F.pad(v, value=1) as a concat: the same values, but no Pad node, which the dynamo
        # exporter emits at opset 18 and cannot convert down to 17
        v = torch.cat([v, torch.ones_like(v[:, :, :1])], dim=2)
        out = torch.matmul(torch.matmul(v, k.transpose(-1, -2)), q)
        out = out[:, :, :-1] / (out[:, :, -1:] + self.eps)
        return out.reshape(b, -1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x)
        qkv = torch.cat([qkv] + [op(qkv) for op in self.aggreg], dim=1)
        # The official code switches to quadratic attention only when H*W <= dim (a map of at most 32
        # positions); SAM's encoders never see one (their smallest map is 16x16), so only the linear form is kept.
        return self.proj(self.linear_attention(qkv))


class Residual(nn.Module):
    """efficientvit's ResidualBlock: `main(x) + x`, or `main(x)` alone where the shape changes (no shortcut)."""

    def __init__(self, main: nn.Module, shortcut: bool = True) -> None:
        super().__init__()
        self.main = main
        self.shortcut = nn.Identity() if shortcut else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is None:
            return self.main(x)
        return self.main(x) + self.shortcut(x)


class EfficientViTBlock(nn.Module):
    """Global context (LiteMLA) then local mixing (MBConv), each with a residual."""

    def __init__(self, channels: int, dim: int = 32, expand_ratio: float = 4, scales: Sequence[int] = (5,)) -> None:
        super().__init__()
        self.context_module = Residual(LiteMLA(channels, channels, dim=dim, scales=scales))
        self.local_module = Residual(MBConv(channels, channels, expand_ratio=expand_ratio, fewer_norm=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local_module(self.context_module(x))


class OpSequential(nn.Module):
    """A plain sequence kept under the key `op_list` (the official container)."""

    def __init__(self, ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.op_list = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.op_list:
            x = op(x)
        return x
