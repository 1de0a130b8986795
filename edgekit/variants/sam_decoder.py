"""The prompt encoder + mask decoder shared by SAM ViT, SlimSAM, MobileSAM, TinySAM, EfficientViT-SAM,
RepViT-SAM and EdgeSAM, and `SamDecoderModel`, the SamModel that wraps any image encoder around them.

Only the image encoder differs between those families; the decoder half (keys `prompt_encoder.*`,
`mask_decoder.*`) is segment-anything's, built with its defaults (256-d, 64x64 embedding, 1024 prompt frame).
"""
from __future__ import annotations

import torch
from torch import nn

from edgekit.variants.base import DecoderOutput, SamModel
from edgekit.variants.sam_mask_decoder import MLP, MaskDecoder
from edgekit.variants.sam_prompt_encoder import LayerNorm2d, PositionEmbeddingRandom, PromptEncoder
from edgekit.variants.two_way_transformer import TwoWayTransformer

__all__ = ["LayerNorm2d", "MLP", "MaskDecoder", "PositionEmbeddingRandom", "PromptEncoder", "SamDecoderModel",
           "TwoWayTransformer"]


class SamDecoderModel(SamModel):
    """image_encoder(image) -> (1, 256, 64, 64) embedding; segment-anything's decoder on top."""

    plain_encoder = True

    def __init__(self, image_encoder: nn.Module, prompt_encoder: PromptEncoder | None = None,
                 mask_decoder: MaskDecoder | None = None) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder if prompt_encoder is not None else PromptEncoder()
        self.mask_decoder = mask_decoder if mask_decoder is not None else MaskDecoder()

    def encode(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image_embeddings": self.image_encoder(image)}

    def decode(self, features: dict[str, torch.Tensor], point_coords: torch.Tensor, point_labels: torch.Tensor,
               mask_input: torch.Tensor | None = None, multimask_output: bool = True) -> DecoderOutput:
        """As segment-anything's Sam.predict_torch; mask presence is a trace-time (Python) choice."""
        sparse = self.prompt_encoder.embed_points(point_coords, point_labels)
        if mask_input is None:
            dense = self.prompt_encoder.no_mask_dense(sparse.shape[0])
        else:
            dense = self.prompt_encoder.embed_mask(mask_input)
        return self._run_decoder(features["image_embeddings"], sparse, dense, multimask_output)

    def decode_all(self, features: dict[str, torch.Tensor], point_coords: torch.Tensor, point_labels: torch.Tensor,
                   mask_input: torch.Tensor | None, has_mask_input: torch.Tensor | None) -> DecoderOutput:
        """One decoder pass, all four mask tokens: index 0 single-mask, 1..3 multimask (the export form). With a
        mask, as SAM's ONNX model: the mask path always runs and `has_mask_input` (1,) blends it with the no-mask
        embedding (0 -> ignore mask_input, 1 -> use it)."""
        sparse = self.prompt_encoder.embed_points(point_coords, point_labels)
        if mask_input is None:
            dense = self.prompt_encoder.no_mask_dense(sparse.shape[0])
        else:
            has_mask = has_mask_input.reshape(-1, 1, 1, 1).to(sparse.dtype)
            dense = has_mask * self.prompt_encoder.embed_mask(mask_input)
            dense = dense + (1 - has_mask) * self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        masks, iou = self.mask_decoder.predict_masks(features["image_embeddings"], self.prompt_encoder.get_dense_pe(),
                                                     sparse, dense)
        return DecoderOutput(low_res_masks=masks, iou_predictions=iou)

    def _run_decoder(self, image_embeddings: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor,
                     multimask_output: bool) -> DecoderOutput:
        masks, iou = self.mask_decoder(image_embeddings, self.prompt_encoder.get_dense_pe(), sparse, dense,
                                       multimask_output)
        return DecoderOutput(low_res_masks=masks, iou_predictions=iou)
