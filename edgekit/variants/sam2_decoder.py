"""SAM 2's prompt encoder and mask decoder (keys `sam_prompt_encoder.*`, `sam_mask_decoder.*`).

The prompt encoder is segment-anything's, unchanged (same keys, same sums), so it is reused. The mask decoder
adds to SAM's: an object-score token and head (is the object present?), optional high-resolution skip
features (conv_s0 / conv_s1 applied once per image to the FPN levels at strides 4 and 8, then added inside the
upscaling path), a sigmoid on the IoU head, and, for single-mask output, the dynamic fallback to the best
multimask output when the single mask is unstable, written with torch.where so the graph has no
value-dependent branch. Its two-way transformer differs from SAM's only in the MLP's key names
(`mlp.layers.0/1`) and in using scaled_dot_product_attention, as the official code does.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edgekit.variants.sam_mask_decoder import MLP
from edgekit.variants.two_way_transformer import Attention as SamAttention
from edgekit.variants.sam_prompt_encoder import LayerNorm2d, PromptEncoder

__all__ = ["MLP", "PromptEncoder", "Sam2MaskDecoder", "TwoWayTransformer"]


class Attention(SamAttention):
    """SAM's decoder attention (same projections and keys) computed with scaled_dot_product_attention, as SAM 2's
    own code does."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = F.scaled_dot_product_attention(self._heads(self.q_proj(q)), self._heads(self.k_proj(k)),
                                             self._heads(self.v_proj(v)))
        b, h, n, c = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * c))


class TwoWayAttentionBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_dim: int, skip_first_layer_pe: bool) -> None:
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, dim, 2)  # ReLU between the two layers
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate=2)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_layer_pe:  # first layer: the queries are the prompt tokens themselves, no residual
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, depth: int = 2, dim: int = 256, num_heads: int = 8, mlp_dim: int = 2048) -> None:
        super().__init__()
        self.layers = nn.ModuleList([TwoWayAttentionBlock(dim, num_heads, mlp_dim, i == 0) for i in range(depth)])
        self.final_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor,
                tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) image + PE, (B, N, C) tokens -> tokens (B, N, C), image (B, h*w, C)."""
        keys = image.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, query_pe=tokens, key_pe=key_pe)
        attn = self.final_attn_token_to_image(q=queries + tokens, k=keys + key_pe, v=keys)
        return self.norm_final_attn(queries + attn), keys


class Sam2MaskDecoder(nn.Module):
    def __init__(self, dim: int = 256, num_multimask_outputs: int = 3, use_high_res_features: bool = True,
                 stability_delta: float = 0.05, stability_thresh: float = 0.98) -> None:
        super().__init__()
        self.transformer = TwoWayTransformer(dim=dim)
        self.iou_token = nn.Embedding(1, dim)
        self.num_mask_tokens = num_multimask_outputs + 1  # token 0 = the single-mask output
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.obj_score_token = nn.Embedding(1, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            [MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)])
        self.iou_prediction_head = MLP(dim, 256, self.num_mask_tokens, 3, sigmoid_output=True)
        self.pred_obj_score_head = MLP(dim, dim, 1, 3)
        self.stability_delta = stability_delta
        self.stability_thresh = stability_thresh

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor, multimask_output: bool,
                high_res_features: tuple[torch.Tensor, torch.Tensor] | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> masks (B, K, 4h, 4w) logits, IoU (B, K), object score logits (B, 1); K = 3 or 1."""
        masks, iou, obj = self.predict_masks(image_embeddings, image_pe, sparse, dense, high_res_features)
        if multimask_output:  # a trace-time flag, not a tensor value
            return masks[:, 1:], iou[:, 1:], obj
        return (*self.select_single_mask(masks, iou), obj)

    def predict_masks(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                      dense: torch.Tensor, high_res_features: tuple[torch.Tensor, torch.Tensor] | None,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All 4 masks and IoUs, and the object score logits."""
        out_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat((out_tokens.unsqueeze(0).expand(sparse.shape[0], -1, -1), sparse), dim=1)
        src = image_embeddings + dense
        b, c, h, w = src.shape
        hs, src = self.transformer(src, image_pe, tokens)
        mask_tokens_out = hs[:, 2:2 + self.num_mask_tokens, :]

        src = src.transpose(1, 2).reshape(b, c, h, w)
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        if self.use_high_res_features:
            assert high_res_features is not None, "this decoder needs high_res_feats_0/1 from encode()"
            feat_s0, feat_s1 = high_res_features
            up = act2(dc2(act1(ln1(dc1(src) + feat_s1))) + feat_s0)
        else:
            up = act2(dc2(act1(ln1(dc1(src)))))
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
                               dim=1)
        b, c, h, w = up.shape
        masks = (hyper_in @ up.reshape(b, c, h * w)).reshape(b, -1, h, w)
        return masks, self.iou_prediction_head(hs[:, 1, :]), self.pred_obj_score_head(hs[:, 0, :])

    def stability_scores(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """IoU of the masks thresholded at +delta and -delta, (B, K); 1 where both are empty."""
        flat = mask_logits.flatten(-2)
        area_i = (flat > self.stability_delta).float().sum(dim=-1)
        area_u = (flat > -self.stability_delta).float().sum(dim=-1)
        return torch.where(area_u > 0, area_i / area_u.clamp(min=1.0), torch.ones_like(area_u))

    def select_single_mask(self, masks: torch.Tensor, iou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token 0's mask if it is stable (score >= thresh), else the multimask output with the best IoU."""
        multi_masks, multi_iou = masks[:, 1:], iou[:, 1:]
        best = torch.argmax(multi_iou, dim=-1, keepdim=True)  # (B, 1)
        h, w = masks.shape[-2:]
        best_masks = torch.gather(multi_masks, 1, best[:, :, None, None].expand(-1, 1, h, w))
        best_iou = torch.gather(multi_iou, 1, best)
        single_masks, single_iou = masks[:, 0:1], iou[:, 0:1]
        stable = self.stability_scores(single_masks) >= self.stability_thresh  # (B, 1)
        return (torch.where(stable[..., None, None], single_masks, best_masks),
                torch.where(stable, single_iou, best_iou))
