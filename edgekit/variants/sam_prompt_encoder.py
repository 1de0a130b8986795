"""segment-anything's PromptEncoder (keys `prompt_encoder.*`), written for export.

Points, box corners and the optional low-res mask become the decoder's sparse tokens and dense embedding.
The official code selects per-label embeddings with boolean-index assignment; here the same sums are
formed with `torch.where`, which gives bit-identical values (adding a zero row changes nothing) and keeps
tensor values out of Python control flow so that the graph traces.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class LayerNorm2d(nn.Module):
    """Channel LayerNorm on NCHW maps, as segment-anything's `common.LayerNorm2d` (eps 1e-6, biased var)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class PositionEmbeddingRandom(nn.Module):
    """Random-Fourier positional encoding; the Gaussian matrix is a persistent buffer in the checkpoint."""

    def __init__(self, num_pos_feats: int = 128, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def _pe_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        # coords in [0, 1] -> [-1, 1], project, then sin/cos of the 2*pi-scaled projection
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Dense PE of an (h, w) grid of cell centres -> (C, h, w)."""
        h, w = size
        grid = torch.ones((h, w), device=self.positional_encoding_gaussian_matrix.device,
                          dtype=self.positional_encoding_gaussian_matrix.dtype)
        y_embed = (grid.cumsum(dim=0) - 0.5) / h
        x_embed = (grid.cumsum(dim=1) - 0.5) / w
        pe = self._pe_encoding(torch.stack([x_embed, y_embed], dim=-1))
        return pe.permute(2, 0, 1)

    def forward_with_coords(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """(B, N, 2) pixel x, y (not normalised) -> (B, N, C)."""
        x = coords[..., 0:1] / image_size[1]
        y = coords[..., 1:2] / image_size[0]
        return self._pe_encoding(torch.cat([x, y], dim=-1).to(self.positional_encoding_gaussian_matrix.dtype))


class PromptEncoder(nn.Module):
    def __init__(self, embed_dim: int = 256, image_embedding_size: tuple[int, int] = (64, 64),
                 input_image_size: tuple[int, int] = (1024, 1024), mask_in_chans: int = 16) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = tuple(input_image_size)
        self.image_embedding_size = tuple(image_embedding_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.num_point_embeddings = 4  # positive, negative, box top-left, box bottom-right
        self.point_embeddings = nn.ModuleList([nn.Embedding(1, embed_dim) for _ in range(self.num_point_embeddings)])
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """(1, C, h, w) positional encoding of the image embedding grid."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) prompt-frame pixels + (B, N) labels {-1, 0, 1, 2, 3} -> (B, N, C) sparse tokens.

        Box corners arrive as points labelled 2 / 3: the official `_embed_boxes` computes the same PE of
        (corner + 0.5) plus point_embeddings[2] / [3], so one path serves both."""
        pe = self.pe_layer.forward_with_coords(coords + 0.5, self.input_image_size)  # shift to pixel centre
        lab = labels.unsqueeze(-1)
        zero = torch.zeros_like(pe)
        label_embed = zero
        for i in range(self.num_point_embeddings):  # fixed 4 iterations: unrolled at trace time
            label_embed = torch.where(lab == i, self.point_embeddings[i].weight + zero, label_embed)
        out = pe + label_embed
        # padding points carry no position, only the learned "not a point" embedding
        return torch.where(lab == -1, self.not_a_point_embed.weight + zero, out)

    def embed_mask(self, mask_input: torch.Tensor) -> torch.Tensor:
        return self.mask_downscaling(mask_input)

    def no_mask_dense(self, batch: int = 1) -> torch.Tensor:
        h, w = self.image_embedding_size
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)

    def forward(self, coords: torch.Tensor, labels: torch.Tensor,
                mask_input: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        sparse = self.embed_points(coords, labels)
        dense = self.no_mask_dense(coords.shape[0]) if mask_input is None else self.embed_mask(mask_input)
        return sparse, dense
