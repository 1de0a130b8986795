"""EfficientSAM (yformer/EfficientSAM): a plain ViT encoder (SAMI-pretrained) with EfficientSAM's own prompt
encoder and mask decoder (`efficientsam_decoder.py`).

The encoder is a global-attention ViT at 1024 px (16 px patches, 64 x 64 tokens) whose absolute position
embedding was learned at 224 px (14 x 14 + a cls slot) and is resized bicubically at run time; a conv neck
brings it to the 256-channel embedding. No windows, no relative positions.

Prompts follow the official `predict_masks`: points and box corners (labels 2, 3) in the 1024 frame, padded
to exactly six points with coordinate -1 and label -1 (or cut to six). The decoder always computes four masks;
multimask output is masks 1..3, single output is mask 0, in the model's raw order (not sorted by IoU).
There is no mask input.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.errors import InputError
from edgekit.variants.base import DecoderOutput, SamModel, prompt_dtype
from edgekit.variants.efficientsam_decoder import MaskDecoder, PromptEncoder
from edgekit.variants.sam_prompt_encoder import LayerNorm2d  # the same channel LayerNorm (eps 1e-6)

MAX_POINTS = 6  # decoder_max_num_input_points of both released models


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Attention(nn.Module):
    """Global multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ImageEncoderViT(nn.Module):
    """(B, 3, 1024, 1024) normalised image -> (B, 256, 64, 64) embedding."""

    def __init__(self, dim: int, num_heads: int, depth: int = 12, img_size: int = 1024, patch_size: int = 16,
                 mlp_ratio: float = 4.0, neck_dim: int = 256, pretrain_img_size: int = 224) -> None:
        super().__init__()
        self.img_size = img_size
        self.patch_embed = PatchEmbed(patch_size, 3, dim)
        grid = pretrain_img_size // patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))  # slot 0 is the unused cls token's
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio) for _ in range(depth))
        self.neck = nn.Sequential(
            nn.Conv2d(dim, neck_dim, kernel_size=1, bias=False),
            LayerNorm2d(neck_dim),
            nn.Conv2d(neck_dim, neck_dim, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(neck_dim),
        )

    def _pos_embed(self, h: int, w: int) -> torch.Tensor:
        """The 224-px table without its cls slot, resized bicubically to the token grid: (1, h, w, C)."""
        table = self.pos_embed[:, 1:]
        size = math.isqrt(int(table.shape[1]))  # a square table; int() keeps it a constant under tracing
        table = table.reshape(1, size, size, -1)
        if (size, size) == (h, w):
            return table
        table = F.interpolate(table.permute(0, 3, 1, 2), size=(h, w), mode="bicubic", align_corners=False)
        return table.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).permute(0, 2, 3, 1)  # (B, h, w, C)
        b, h, w, c = x.shape
        x = (x + self._pos_embed(h, w)).reshape(b, h * w, c)
        for block in self.blocks:
            x = block(x)
        return self.neck(x.reshape(b, h, w, c).permute(0, 3, 1, 2))


def _fit_points(coords: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad with (-1, -1) / label -1, or cut, to exactly MAX_POINTS.

    Written as "append MAX_POINTS padding points, keep the first MAX_POINTS" rather than branching on N: the
    same values for every N, but no Python test on the point count, so the exported decoder keeps N dynamic
    (1..16; a branch on a symbolic N makes torch.export refuse the dynamic dimension)."""
    b = coords.shape[0]
    pad_coords = torch.full((b, MAX_POINTS, 2), -1.0, dtype=coords.dtype, device=coords.device)
    pad_labels = torch.full((b, MAX_POINTS), -1.0, dtype=labels.dtype, device=labels.device)
    return (torch.cat([coords, pad_coords], dim=1)[:, :MAX_POINTS],
            torch.cat([labels, pad_labels], dim=1)[:, :MAX_POINTS])


class EfficientSam(SamModel):
    plain_encoder = True

    def __init__(self, encoder_dim: int, encoder_heads: int) -> None:
        super().__init__()
        self.image_encoder = ImageEncoderViT(encoder_dim, encoder_heads)
        grid = self.image_encoder.img_size // 16
        self.prompt_encoder = PromptEncoder(256, (grid, grid), (self.image_encoder.img_size,) * 2)
        self.mask_decoder = MaskDecoder()

    def encode(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image_embeddings": self.image_encoder(image)}

    def prepare_prompts(
        self, point_coords: torch.Tensor | None, point_labels: torch.Tensor | None, box: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Points, then the box as two corners labelled 2 and 3 (the official notebook's order), padded to six
        points with label -1 and no extra SAM-style padding point."""
        dt = prompt_dtype(point_coords, box)
        coords = [] if point_coords is None else [point_coords.reshape(1, -1, 2).to(dt)]
        labels = [] if point_labels is None else [point_labels.reshape(1, -1).to(dt)]
        if box is not None:
            coords.append(box.reshape(1, 2, 2).to(dt))
            labels.append(torch.tensor([[2.0, 3.0]], dtype=dt))
        if not coords:
            return _fit_points(torch.zeros(1, 0, 2, dtype=dt), torch.zeros(1, 0, dtype=dt))
        return _fit_points(torch.cat(coords, dim=1), torch.cat(labels, dim=1))

    def decode(
        self,
        features: dict[str, torch.Tensor],
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
    ) -> DecoderOutput:
        if mask_input is not None:
            raise InputError("EfficientSAM takes no mask input (its prompt encoder has no mask branch)",
                             hint="drop mask_input and refine with extra points instead")
        masks, iou = self._all_masks(features, point_coords, point_labels)
        # All four masks are always computed; multimask_output is a Python bool, so this is a static slice.
        keep = slice(1, None) if multimask_output else slice(0, 1)
        return DecoderOutput(low_res_masks=masks[:, keep], iou_predictions=iou[:, keep])

    def decode_all(self, features: dict[str, torch.Tensor], point_coords: torch.Tensor, point_labels: torch.Tensor,
                   mask_input: torch.Tensor | None, has_mask_input: torch.Tensor | None) -> DecoderOutput:
        """The export form: the decoder's four masks in its raw order ARE the contract (index 0 the single-mask
        answer, 1..3 the multimask candidates), so one pass and no slicing. No mask input exists (the registry
        entries say accepts_mask_input=False, so the exported graph has no mask_input / has_mask_input)."""
        if mask_input is not None:
            raise InputError("EfficientSAM takes no mask input (its prompt encoder has no mask branch)",
                             hint="export with accepts_mask_input=False")
        masks, iou = self._all_masks(features, point_coords, point_labels)
        return DecoderOutput(low_res_masks=masks, iou_predictions=iou)

    def _all_masks(self, features: dict[str, torch.Tensor], point_coords: torch.Tensor,
                   point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The one decoder pass: (1, 4, h, w) masks and (1, 4) IoUs in the model's raw order."""
        # Upstream maps any negative coordinate to -1 before padding; a select, not a branch.
        coords = torch.where(point_coords >= 0, point_coords, torch.full_like(point_coords, -1.0))
        coords, labels = _fit_points(coords, point_labels.to(coords.dtype))
        sparse = self.prompt_encoder(coords, labels)
        return self.mask_decoder(features["image_embeddings"], self.prompt_encoder.get_dense_pe(), sparse)


def build_efficientsam_ti() -> EfficientSam:
    """EfficientSAM-Ti: ViT-Tiny (192 channels, 3 heads), efficient_sam_vitt.pt."""
    return EfficientSam(encoder_dim=192, encoder_heads=3)


def build_efficientsam_s() -> EfficientSam:
    """EfficientSAM-S: ViT-Small (384 channels, 6 heads), efficient_sam_vits.pt."""
    return EfficientSam(encoder_dim=384, encoder_heads=6)
