"""EfficientSAM's own prompt encoder and mask decoder (yformer/EfficientSAM `efficient_sam_decoder.py`).

They follow SAM's design but are not SAM's modules, so the shared SAM decoder cannot load these checkpoints:
- the prompt encoder knows points only (no mask input, no dense "no mask" embedding); a point's embedding is
  its random-Fourier position plus a per-label vector, and padding points (label -1) keep their position
  term (SAM zeroes it) and add `invalid_points`; negative points (label 0) get no label vector at all;
- MLPs are `layers.i.0` (Linear + activation) then `fc`, the transformer MLP included;
- the upscaling path normalises with GroupNorm(1, C) (over C, H and W together, eps 1e-5), not LayerNorm2d,
  and the last upscaling layer has no norm;
- the decoder always predicts all four masks; the multimask choice is a static slice afterwards.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from edgekit.variants.two_way_transformer import Attention  # the same module and keys as SAM's decoder


class MLPBlock(nn.Module):
    """`num_layers` x (Linear + GELU), then a plain Linear `fc` (the checkpoint's `layers.i.0` / `fc` keys)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(d, hidden_dim), nn.GELU()) for d in dims)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.fc(x)


class RandomPositionEmbedding(nn.Module):
    """Random Fourier features of (x, y) in [0, 1]^2: sin / cos of 2*pi*(2*xy - 1) @ G."""

    def __init__(self, num_pos_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def encode(self, coords01: torch.Tensor) -> torch.Tensor:
        proj = (2 * coords01 - 1) @ self.positional_encoding_gaussian_matrix
        proj = 2 * math.pi * proj
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:
        """(C, h, w) encoding of the embedding grid's cell centres."""
        ones = torch.ones(h, w, dtype=self.positional_encoding_gaussian_matrix.dtype, device=self.positional_encoding_gaussian_matrix.device)
        y = (ones.cumsum(dim=0) - 0.5) / h
        x = (ones.cumsum(dim=1) - 0.5) / w
        return self.encode(torch.stack([x, y], dim=-1)).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    """Points (B, N, 2) in the 1024 frame + labels (B, N) -> sparse embeddings (B, N, C)."""

    def __init__(self, embed_dim: int, embedding_hw: tuple[int, int], input_hw: tuple[int, int]) -> None:
        super().__init__()
        self.embedding_hw = embedding_hw
        self.input_hw = input_hw
        self.pe_layer = RandomPositionEmbedding(embed_dim // 2)
        self.invalid_points = nn.Embedding(1, embed_dim)
        self.point_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_top_left_embeddings = nn.Embedding(1, embed_dim)
        self.bbox_bottom_right_embeddings = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        return self.pe_layer.grid(*self.embedding_hw).unsqueeze(0)

    def forward(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h, w = self.input_hw
        # Shift to the pixel centre, then x / W and y / H: divisions, as upstream, to keep its rounding.
        xy = torch.stack([(coords[..., 0] + 0.5) / w, (coords[..., 1] + 0.5) / h], dim=-1)
        emb = self.pe_layer.encode(xy.to(self.pe_layer.positional_encoding_gaussian_matrix.dtype))
        lab = labels.unsqueeze(-1)
        # Masked adds instead of boolean indexing: the same sums, and a graph without data-dependent shapes.
        emb = emb + (lab == -1).to(emb.dtype) * self.invalid_points.weight
        emb = emb + (lab == 1).to(emb.dtype) * self.point_embeddings.weight
        emb = emb + (lab == 2).to(emb.dtype) * self.bbox_top_left_embeddings.weight
        emb = emb + (lab == 3).to(emb.dtype) * self.bbox_bottom_right_embeddings.weight
        return emb


class TwoWayBlock(nn.Module):
    """Token self-attention, tokens -> image, token MLP, image -> tokens (each followed by a LayerNorm)."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, skip_first_layer_pe: bool) -> None:
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, mlp_dim, dim, 1)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate=2)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.skip_first_layer_pe:  # a constructor flag, not a tensor value
            queries = queries + query_pe
        queries = self.norm1(queries + self.self_attn(queries, queries, queries))
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, depth: int, dim: int, num_heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TwoWayBlock(dim, num_heads, mlp_dim, skip_first_layer_pe=i == 0) for i in range(depth))
        self.final_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keys = image.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        attn = self.final_attn_token_to_image(queries + tokens, keys + key_pe, keys)
        return self.norm_final_attn(queries + attn), keys


class MaskDecoder(nn.Module):
    """Tokens [iou, 4 masks, prompts] through the two-way transformer -> 4 low-res masks + 4 IoU scores."""

    def __init__(self, dim: int = 256, num_mask_tokens: int = 4, upscaling_dims: tuple[int, ...] = (64, 32),
                 depth: int = 2, num_heads: int = 8, mlp_dim: int = 2048, iou_head_layers: int = 2) -> None:
        super().__init__()
        self.transformer = TwoWayTransformer(depth, dim, num_heads, mlp_dim)
        self.num_mask_tokens = num_mask_tokens
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(num_mask_tokens, dim)
        layers, c_in = [], dim
        for i, c_out in enumerate(upscaling_dims):
            norm = nn.GroupNorm(1, c_out) if i < len(upscaling_dims) - 1 else nn.Identity()
            layers.append(nn.Sequential(nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2), norm, nn.GELU()))
            c_in = c_out
        self.final_output_upscaling_layers = nn.ModuleList(layers)
        self.output_hypernetworks_mlps = nn.ModuleList(MLPBlock(dim, dim, c_in, 2) for _ in range(num_mask_tokens))
        self.iou_prediction_head = MLPBlock(dim, 256, num_mask_tokens, iou_head_layers)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) image, (1, C, h, w) position, (B, N, C) prompts -> masks (B, 4, 4h, 4w), IoU (B, 4)."""
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(sparse.shape[0], -1, -1), sparse], dim=1)
        pos = torch.repeat_interleave(image_pe, tokens.shape[0], dim=0)
        b, c, h, w = image_embeddings.shape
        hs, src = self.transformer(image_embeddings, pos, tokens)
        iou_out = hs[:, 0, :]
        mask_out = hs[:, 1:1 + self.num_mask_tokens, :]
        up = src.transpose(1, 2).reshape(b, c, h, w)
        for layer in self.final_output_upscaling_layers:
            up = layer(up)
        hyper = torch.stack([mlp(mask_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        b, c, h, w = up.shape
        masks = (hyper @ up.reshape(b, c, h * w)).reshape(b, -1, h, w)
        return masks, self.iou_prediction_head(iou_out)
