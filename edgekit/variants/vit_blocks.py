"""The building blocks of SAM's ViT image encoder (ViTDet style): windowed / global attention with decomposed
relative positional embeddings, the pre-norm transformer block and the patch embedding (the neck's
LayerNorm2d is the decoder's, from sam_decoder).

Written from the architecture of segment-anything's `image_encoder.py`; module and parameter names are the
checkpoint's (`attn.qkv`, `attn.rel_pos_h`, `mlp.lin1`, ...). Every branch below depends on shapes only, which
are static for a fixed input size, so the encoder traces to a graph without control flow.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The official ViT builds its LayerNorms with eps=1e-6, not torch's default 1e-5.
VIT_NORM_EPS = 1e-6


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens, returned channels-last (B, H, W, C) as the blocks expect."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class MLPBlock(nn.Module):
    """lin1 -> exact (erf) GELU -> lin2; the hidden width is explicit because SlimSAM prunes it."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.lin2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


def resized_rel_pos(rel_pos: torch.Tensor, length: int) -> torch.Tensor:
    """The (L, C) table linearly resampled to `length` rows when the token grid differs from the one it was
    trained for (the official get_rel_pos does the same); a no-op at the native input size."""
    if rel_pos.shape[0] == length:
        return rel_pos
    resized = F.interpolate(rel_pos.t().unsqueeze(0), size=length, mode="linear")
    return resized.squeeze(0).t()


def rel_pos_table(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """(q_size, k_size, C): the embedding of each query/key offset along one axis.

    The index is computed from sizes alone (a constant in the exported graph). Offsets are scaled to the
    longer axis when q and k differ, as in MViTv2's decomposed relative positions.
    """
    table = resized_rel_pos(rel_pos, int(2 * max(q_size, k_size) - 1))
    q_scale, k_scale = max(k_size / q_size, 1.0), max(q_size / k_size, 1.0)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * q_scale
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * k_scale
    index = (q_coords - k_coords + (k_size - 1) * k_scale).long()
    return table[index]


def decomposed_rel_pos_bias(q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor,
                            q_hw: tuple[int, int], k_hw: tuple[int, int]) -> torch.Tensor:
    """The additive attention bias (N, q_h*q_w, k_h*k_w) of decomposed relative positions, for the UNSCALED
    queries q (N, q_h*q_w, C). Written with broadcast matmuls rather than einsum: same sums, and plain MatMul
    nodes in ONNX, which every runtime and quantizer handles."""
    (q_h, q_w), (k_h, k_w) = q_hw, k_hw
    r_h = rel_pos_table(q_h, k_h, rel_pos_h)  # (q_h, k_h, C)
    r_w = rel_pos_table(q_w, k_w, rel_pos_w)  # (q_w, k_w, C)
    n, _, c = q.shape
    r_q = q.reshape(n, q_h, q_w, c)
    rel_h = torch.matmul(r_q, r_h.transpose(1, 2))  # (n, q_h, q_w, k_h): batch dim q_h broadcasts
    rel_w = torch.matmul(r_q.transpose(1, 2), r_w.transpose(1, 2)).transpose(1, 2)  # (n, q_h, q_w, k_w)
    bias = rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]
    return bias.reshape(n, q_h * q_w, k_h * k_w)


class Attention(nn.Module):
    """Multi-head self-attention over a (B, H, W, C) token grid, with decomposed relative positions.

    `qkv` is one fused Linear (the checkpoint's key); its output splits as (3, heads, head_dim), so q, k and v
    each take `dim` channels. `input_size` is the grid the rel-pos tables were trained for (the window for
    windowed blocks, the full grid for global ones).
    """

    def __init__(self, dim: int, num_heads: int, input_size: tuple[int, int]) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).reshape(b, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)  # (3, B, heads, HW, hd)
        q, k, v = qkv.unbind(0)
        bias = decomposed_rel_pos_bias(q.reshape(b * heads, h * w, -1), self.rel_pos_h, self.rel_pos_w, (h, w), (h, w))
        # softmax(q k^T * scale + bias) v in one fused kernel: no separate (HW x HW) softmax buffer on CPU.
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.reshape(b, heads, h * w, h * w), scale=self.scale)
        # (B, heads, HW, hd) -> (B, H, W, heads*hd). The explicit copy (a few MB) keeps the dynamo exporter, whose
        # attention decomposition lays the output out differently from eager, from turning the reshape into an
        # invalid view (contiguous() is not enough: it is dropped where eager's layout is already contiguous).
        out = out.transpose(1, 2).clone(memory_format=torch.contiguous_format).reshape(b, h, w, -1)
        return self.proj(out)


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nWindows, window, window, C), zero-padding H and W up to multiples of `window`
    at the bottom/right. The padded tokens take part in attention unmasked, exactly as in the official code."""
    b, h, w, c = x.shape
    pad_h, pad_w = (-h) % window, (-w) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.reshape(b, hp // window, window, wp // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window, window, c), (hp, wp)


def window_unpartition(windows: torch.Tensor, window: int, padded_hw: tuple[int, int],
                       hw: tuple[int, int]) -> torch.Tensor:
    """The inverse of `window_partition`, dropping the padding."""
    (hp, wp), (h, w) = padded_hw, hw
    b = windows.shape[0] // ((hp // window) * (wp // window))
    x = windows.reshape(b, hp // window, wp // window, window, window, -1).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :].contiguous()
    return x


class Block(nn.Module):
    """Pre-norm transformer block; `window_size` 0 means global attention over the whole grid."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, window_size: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=VIT_NORM_EPS)
        self.attn = Attention(dim, num_heads, grid if window_size == 0 else (window_size, window_size))
        self.norm2 = nn.LayerNorm(dim, eps=VIT_NORM_EPS)
        self.mlp = MLPBlock(dim, mlp_dim)
        self.window_size = window_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            windows, padded = window_partition(x, self.window_size)
            x = window_unpartition(self.attn(windows), self.window_size, padded, (h, w))
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))

