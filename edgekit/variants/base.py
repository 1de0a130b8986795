"""What a registered variant is (`VariantSpec`) and what its model exposes (`SamModel`).

Every variant, whatever its encoder, is split the same way for export and deployment: `encode` (image ->
features, the expensive part that runs once per image) and `decode` (features + prompts -> mask logits, run
per prompt). Prompts reach `decode` in one uniform form: points in the prompt frame with labels
1 = positive, 0 = negative, 2 / 3 = box top-left / bottom-right, -1 = padding. That form is what the
exported decoder takes as input too, so the eager model and the ONNX graph are fed identically.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from edgekit.preprocess import SAM_PREPROCESS, Preprocess


def prompt_dtype(*prompts: "torch.Tensor | None") -> torch.dtype:
    """The float dtype prompts are built in: the first given floating prompt's (float64 when a float64 model is
    checked against float32), else float32 (integer pixel coordinates, or no prompt)."""
    for t in prompts:
        if t is not None and t.is_floating_point():
            return t.dtype
    return torch.float32


@dataclass(frozen=True)
class CheckpointSource:
    """Where the official release file comes from (for `edgekit models`, and downloads for users)."""

    file_name: str
    url: str | None = None
    sha256: str | None = None
    license: str = "Apache-2.0"
    note: str = ""


@dataclass(frozen=True)
class VariantSpec:
    """A registered variant. `builder` is "module:function" so listing variants imports no model code."""

    name: str
    family: str
    builder: str
    layout: str  # the official layout's name (shared/layouts/<layout>.txt in the workplace)
    checkpoint: CheckpointSource
    preprocess: Preprocess = SAM_PREPROCESS
    embedding_shape: tuple[int, int, int] = (256, 64, 64)
    wrap_key: str | None = None  # "model" where the release file is {"model": state_dict}
    # Keys of the release file that the image path does not use and that loading accepts and drops
    # (SAM 2's memory modules; EdgeSAM's training leftovers). Prefix match.
    ignored_key_prefixes: tuple[str, ...] = ()
    low_res_size: int = 256
    multimask_count: int = 3
    description: str = ""
    extra_outputs: tuple[str, ...] = field(default=())  # decode outputs beyond masks + IoU (SAM 2: object scores)
    accepts_mask_input: bool = True  # EfficientSAM's decoder has no mask input
    # The image encoder is not in the checkpoint but an ONNX file the user gives (--encoder-onnx): NanoSAM.
    external_encoder: bool = False
    # Export validation: ONNX Runtime FP32 vs torch, max abs on encoder features / decoder logits.
    export_atol: tuple[float, float] = (1e-4, 1e-3)

    @property
    def input_size(self) -> int:
        return self.preprocess.input_size

    def build(self) -> "SamModel":
        """The model with freshly initialised (meaningless) weights; load a state dict next."""
        module_name, _, func = self.builder.partition(":")
        factory: Callable[[], SamModel] = getattr(importlib.import_module(module_name), func)
        return factory()


@dataclass
class DecoderOutput:
    low_res_masks: torch.Tensor  # (1, K, h, w) logits
    iou_predictions: torch.Tensor  # (1, K)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. "object_score_logits"


class SamModel(nn.Module):
    """Base for every variant: `image_encoder`, `prompt_encoder`, `mask_decoder` submodules (their names are the
    checkpoint's key prefixes) and the two halves below. Subclasses keep Python control flow out of the tensor
    path so that the halves trace for export."""

    image_encoder: nn.Module
    # True where encode(image) is exactly {"image_embeddings": image_encoder(image)}: then any module (or an
    # external ONNX encoder) with the same input and output can stand in for image_encoder.
    plain_encoder: bool = False

    def encode(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """(1, 3, S, S) preprocessed image -> {"image_embeddings": (1, C, h, w), ...other features}."""
        raise NotImplementedError

    def decode(
        self,
        features: dict[str, torch.Tensor],
        point_coords: torch.Tensor,  # (1, N, 2) float, prompt frame (pixels)
        point_labels: torch.Tensor,  # (1, N) float: 1, 0, 2, 3, -1
        mask_input: torch.Tensor | None = None,  # (1, 1, 4h, 4w) low-res logits from an earlier prediction
        multimask_output: bool = True,
    ) -> DecoderOutput:
        raise NotImplementedError

    def decode_all(
        self,
        features: dict[str, torch.Tensor],
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor | None,
        has_mask_input: torch.Tensor | None,
    ) -> DecoderOutput:
        """The export form of `decode`: every mask output in one graph, index 0 the single-mask answer and
        1.. the multimask candidates; the mask input always flows and `has_mask_input` (1,) weighs it (0 ignores
        it), as in segment-anything's ONNX model. The default runs `decode` twice; families override it with
        one pass through their decoder."""
        if mask_input is not None and has_mask_input is not None:
            raise NotImplementedError(f"{type(self).__name__} must override decode_all to export a mask input")
        single = self.decode(features, point_coords, point_labels, None, multimask_output=False)
        multi = self.decode(features, point_coords, point_labels, None, multimask_output=True)
        extras = {k: v for k, v in single.extras.items()}
        return DecoderOutput(torch.cat([single.low_res_masks, multi.low_res_masks], 1),
                             torch.cat([single.iou_predictions, multi.iou_predictions], 1), extras)

    def prepare_prompts(
        self, point_coords: torch.Tensor | None, point_labels: torch.Tensor | None, box: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """User prompts (already in the prompt frame) -> the uniform point form `decode` takes.

        SAM's rule (segment-anything PromptEncoder): a padding point (label -1) is appended when there is no
        box; a box becomes two corner points labelled 2 and 3 after the points. Families with other rules
        (SAM 2 puts the box first, EfficientSAM pads to a fixed count) override this.
        """
        dt = prompt_dtype(point_coords, box)
        coords = [] if point_coords is None else [point_coords.reshape(1, -1, 2).to(dt)]
        labels = [] if point_labels is None else [point_labels.reshape(1, -1).to(dt)]
        if box is None:
            coords.append(torch.zeros(1, 1, 2, dtype=dt))
            labels.append(-torch.ones(1, 1, dtype=dt))
        else:
            coords.append(box.reshape(1, 2, 2).to(dt))
            labels.append(torch.tensor([[2.0, 3.0]], dtype=dt))
        return torch.cat(coords, dim=1), torch.cat(labels, dim=1)
