"""The two graphs every variant exports: the image encoder and the prompt decoder.

The decoder graph takes prompts in one uniform form (points with labels 1/0, box corners 2/3, padding -1;
N from 1 to 16), the mask input with a `has_mask_input` flag instead of an optional argument, and returns every
mask output at once (index 0: the single-mask answer, 1..: the multimask candidates), so the application picks
with an index instead of the graph branching on a Python flag.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgekit.variants.base import SamModel, VariantSpec

MAX_POINTS = 16  # the decoder's dynamic N ranges over 1..MAX_POINTS


@dataclass(frozen=True)
class GraphSignature:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic: dict[str, dict[int, str]]  # input name -> {axis: symbolic name}


class EncoderGraph(nn.Module):
    """image (1, 3, S, S) -> the encoder's features, in a fixed order."""

    def __init__(self, model: SamModel, feature_names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.feature_names = feature_names

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.model.encode(image)
        return tuple(features[name] for name in self.feature_names)


class DecoderGraph(nn.Module):
    """features + prompts -> (low_res_masks (1, 1+K, h, w), iou_predictions (1, 1+K), extras...)."""

    def __init__(self, model: SamModel, feature_names: tuple[str, ...], extra_outputs: tuple[str, ...],
                 accepts_mask: bool) -> None:
        super().__init__()
        self.model = model
        self.feature_names = feature_names
        self.extra_outputs = extra_outputs
        self.accepts_mask = accepts_mask

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = len(self.feature_names)
        features = dict(zip(self.feature_names, args[:n]))
        point_coords, point_labels = args[n], args[n + 1]
        mask_input = args[n + 2] if self.accepts_mask else None
        has_mask = args[n + 3] if self.accepts_mask else None
        out = self.model.decode_all(features, point_coords, point_labels, mask_input, has_mask)
        return (out.low_res_masks, out.iou_predictions, *(out.extras[name] for name in self.extra_outputs))


def encoder_signature(feature_names: tuple[str, ...]) -> GraphSignature:
    return GraphSignature(inputs=("image",), outputs=feature_names, dynamic={})


def decoder_signature(spec: VariantSpec, feature_names: tuple[str, ...]) -> GraphSignature:
    inputs = (*feature_names, "point_coords", "point_labels")
    if spec.accepts_mask_input:
        inputs += ("mask_input", "has_mask_input")
    return GraphSignature(inputs=inputs, outputs=("low_res_masks", "iou_predictions", *spec.extra_outputs),
                          dynamic={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}})


def decoder_example(spec: VariantSpec, features: dict[str, torch.Tensor], num_points: int = 3) -> tuple[torch.Tensor, ...]:
    """Example inputs for tracing: a positive point, a box (labels 2, 3) — every label path is in the graph."""
    size = spec.preprocess.prompt_frame
    coords = torch.tensor([[[0.5, 0.5], [0.25, 0.25], [0.75, 0.75]]])[:, :num_points] * size
    labels = torch.tensor([[1.0, 2.0, 3.0]])[:, :num_points]
    args = (*features.values(), coords, labels)
    if spec.accepts_mask_input:
        low = spec.low_res_size
        args += (torch.zeros(1, 1, low, low), torch.zeros(1))
    return args
