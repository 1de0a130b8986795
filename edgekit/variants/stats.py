"""Counted facts about a variant: parameters and encoder FLOPs, computed from the model code itself."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class VariantStats:
    params: int  # all parameters (encoder + prompt encoder + decoder), buffers excluded
    encoder_params: int
    tensors: int  # entries of the state dict (what the checkpoint holds)


def count(name: str) -> VariantStats:
    """Built on the meta device: no memory, no weights, milliseconds even for ViT-H."""
    from edgekit.variants.registry import get_spec

    with torch.device("meta"):
        model = get_spec(name).build()
    params = sum(p.numel() for p in model.parameters())
    encoder = sum(p.numel() for p in model.image_encoder.parameters())
    return VariantStats(params=params, encoder_params=encoder, tensors=len(model.state_dict()))
