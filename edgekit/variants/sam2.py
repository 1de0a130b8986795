"""SAM 2.1 (Hiera) and EfficientTAM (plain ViT): the image path of SAM2Base, as SAM2ImagePredictor runs it.

encode: image -> neck levels; the lowest kept level plus `no_mem_embed` is the image embedding (the video
model's "no memory yet" state, which the image predictor always adds), and with high-res features (SAM 2.1)
the mask decoder's conv_s0 / conv_s1 are applied to levels 0 and 1 once per image, as `forward_image` does.
decode: SAM's prompt encoder + SAM 2's mask decoder. The release file also holds the video memory modules;
the registry lists them as ignored key prefixes, so loading accepts and drops them.
"""
from __future__ import annotations

import torch
from torch import nn

from edgekit.variants.base import DecoderOutput, SamModel, prompt_dtype
from edgekit.variants.efficienttam_vit import ViT, ViTDetNeck
from edgekit.variants.hiera import FpnNeck, Hiera, ImageEncoder
from edgekit.variants.sam2_decoder import PromptEncoder, Sam2MaskDecoder

# SAM2ImagePredictor._predict returns low-res logits clamped to this range (the masks use the unclamped ones).
LOW_RES_CLAMP = 32.0


class Sam2Model(SamModel):
    def __init__(self, image_encoder: ImageEncoder, use_high_res_features: bool, dim: int = 256) -> None:
        super().__init__()
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, dim))
        self.image_encoder = image_encoder
        self.sam_prompt_encoder = PromptEncoder(embed_dim=dim, image_embedding_size=(64, 64),
                                                input_image_size=(1024, 1024), mask_in_chans=16)
        self.sam_mask_decoder = Sam2MaskDecoder(dim, use_high_res_features=use_high_res_features)
        self.use_high_res_features = use_high_res_features

    # The generic names other code uses; SAM 2's checkpoint prefixes are sam_prompt_encoder / sam_mask_decoder.
    @property
    def prompt_encoder(self) -> PromptEncoder:
        return self.sam_prompt_encoder

    @property
    def mask_decoder(self) -> Sam2MaskDecoder:
        return self.sam_mask_decoder

    def encode(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        levels = self.image_encoder(image)
        out = {"image_embeddings": levels[-1] + self.no_mem_embed.reshape(1, -1, 1, 1)}
        if self.use_high_res_features:
            out["high_res_feats_0"] = self.sam_mask_decoder.conv_s0(levels[0])  # (1, 32, 256, 256)
            out["high_res_feats_1"] = self.sam_mask_decoder.conv_s1(levels[1])  # (1, 64, 128, 128)
        return out

    def decode(self, features: dict[str, torch.Tensor], point_coords: torch.Tensor, point_labels: torch.Tensor,
               mask_input: torch.Tensor | None = None, multimask_output: bool = True) -> DecoderOutput:
        """As SAM2ImagePredictor._predict. low_res_masks are clamped to [-32, 32] as the official predictor
        returns them; extras["unclamped_low_res_masks"] are the logits it upsamples into the masks."""
        pe = self.sam_prompt_encoder
        sparse = pe.embed_points(point_coords, point_labels)
        dense = pe.no_mask_dense(sparse.shape[0]) if mask_input is None else pe.embed_mask(mask_input)
        high_res = None
        if self.use_high_res_features:
            high_res = (features["high_res_feats_0"], features["high_res_feats_1"])
        masks, iou, obj = self.sam_mask_decoder(features["image_embeddings"], pe.get_dense_pe(), sparse, dense,
                                                multimask_output, high_res)
        return DecoderOutput(low_res_masks=masks.clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP), iou_predictions=iou,
                             extras={"object_score_logits": obj, "unclamped_low_res_masks": masks})

    def decode_all(self, features: dict[str, torch.Tensor], point_coords: torch.Tensor, point_labels: torch.Tensor,
                   mask_input: torch.Tensor | None, has_mask_input: torch.Tensor | None) -> DecoderOutput:
        """The export form, one decoder pass: index 0 is `decode(multimask_output=False)`'s answer (the
        stability fallback included, as torch.where), 1..3 the multimask candidates; `has_mask_input` (1,)
        blends the mask embedding with the no-mask one, as SAM's ONNX model does.

        low_res_masks are CLAMPED to [-32, 32], as `decode` and SAM2ImagePredictor.predict return them: the
        export's output is then exactly what the eager predictor (and `edgekit predict --out`) gives, and can be
        fed back as mask_input unchanged, as the official refinement loop does. The official masks are
        upsampled from the unclamped logits: clamping keeps every sign, so the two binary masks can differ only
        at edge pixels whose bilinear neighbourhood holds a logit beyond +-32 (the unclamped logits stay in
        extras for the eager path; the graph does not output them)."""
        pe = self.sam_prompt_encoder
        sparse = pe.embed_points(point_coords, point_labels)
        if mask_input is None:
            dense = pe.no_mask_dense(sparse.shape[0])
        else:
            has_mask = has_mask_input.reshape(-1, 1, 1, 1).to(sparse.dtype)
            dense = has_mask * pe.embed_mask(mask_input) + (1 - has_mask) * pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        high_res = None
        if self.use_high_res_features:
            high_res = (features["high_res_feats_0"], features["high_res_feats_1"])
        decoder = self.sam_mask_decoder
        masks, iou, obj = decoder.predict_masks(features["image_embeddings"], pe.get_dense_pe(), sparse, dense,
                                                high_res)
        single_mask, single_iou = decoder.select_single_mask(masks, iou)
        all_masks = torch.cat([single_mask, masks[:, 1:]], dim=1)
        return DecoderOutput(low_res_masks=all_masks.clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP),
                             iou_predictions=torch.cat([single_iou, iou[:, 1:]], dim=1),
                             extras={"object_score_logits": obj, "unclamped_low_res_masks": all_masks})

    def prepare_prompts(self, point_coords: torch.Tensor | None, point_labels: torch.Tensor | None,
                        box: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """SAM 2's rule: the box's corners (labels 2, 3) come FIRST, then the points, then always one padding
        point (label -1): the image predictor merges the box into the points and calls the prompt encoder
        with boxes=None, whose `_embed_points(pad=boxes is None)` therefore always pads."""
        coords: list[torch.Tensor] = []
        labels: list[torch.Tensor] = []
        dt = prompt_dtype(point_coords, box)
        if box is not None:
            coords.append(box.reshape(1, 2, 2).to(dt))
            labels.append(torch.tensor([[2.0, 3.0]], dtype=dt))
        if point_coords is not None and point_labels is not None:
            coords.append(point_coords.reshape(1, -1, 2).to(dt))
            labels.append(point_labels.reshape(1, -1).to(dt))
        coords.append(torch.zeros(1, 1, 2, dtype=dt))
        labels.append(-torch.ones(1, 1, dtype=dt))
        return torch.cat(coords, dim=1), torch.cat(labels, dim=1)


def _hiera_model(embed_dim: int, num_heads: int, stages: tuple[int, ...], global_att_blocks: tuple[int, ...],
                 bkg_size: tuple[int, int], window_spec: tuple[int, ...] = (8, 4, 14, 7)) -> Sam2Model:
    trunk = Hiera(embed_dim=embed_dim, num_heads=num_heads, stages=stages, global_att_blocks=global_att_blocks,
                  window_spec=window_spec, window_pos_embed_bkg_spatial_size=bkg_size)
    # scalp=1: the stride-32 level only feeds the top-down path; levels at strides 4, 8, 16 are kept
    encoder = ImageEncoder(trunk, FpnNeck(trunk.channel_list, top_down_levels=(2, 3)), scalp=1)
    return Sam2Model(encoder, use_high_res_features=True)


def _efficienttam_model(embed_dim: int, num_heads: int) -> Sam2Model:
    trunk = ViT(embed_dim=embed_dim, depth=12, num_heads=num_heads, window_size=14,
                window_block_indexes=(0, 1, 3, 4, 6, 7, 9, 10))
    return Sam2Model(ImageEncoder(trunk, ViTDetNeck(embed_dim)), use_high_res_features=False)


# Hyperparameters from the official configs (sam2/configs/sam2.1/*.yaml, efficienttam/*.yaml).
def build_sam21_hiera_t() -> Sam2Model:
    return _hiera_model(96, 1, (1, 2, 7, 2), (5, 7, 9), (7, 7))


def build_sam21_hiera_s() -> Sam2Model:
    return _hiera_model(96, 1, (1, 2, 11, 2), (7, 10, 13), (7, 7))


def build_sam21_hiera_b_plus() -> Sam2Model:
    return _hiera_model(112, 2, (2, 3, 16, 3), (12, 16, 20), (14, 14))


def build_sam21_hiera_l() -> Sam2Model:
    return _hiera_model(144, 2, (2, 6, 36, 4), (23, 33, 43), (7, 7), window_spec=(8, 4, 16, 8))


def build_efficienttam_ti() -> Sam2Model:
    return _efficienttam_model(192, 3)


def build_efficienttam_s() -> Sam2Model:
    return _efficienttam_model(384, 6)
