"""Counted facts about a variant: parameters and encoder FLOPs, computed from the model code itself.

FLOPs are counted by torch's FlopCounterMode over one encoder forward on the meta device (shapes only, no
memory, no weights) and reported as multiply-accumulates / 1e9, the convention of the SAM-variant papers
("GFLOPs" there are GMACs: MobileSAM's encoder is ~38 G).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch


@dataclass(frozen=True)
class VariantStats:
    params: int  # all parameters (encoder + prompt encoder + decoder), buffers excluded
    encoder_params: int | None  # None: an external (ONNX) encoder, not part of the variant
    tensors: int  # entries of the state dict (what the checkpoint holds)
    encoder_gflops: float | None = None  # GMACs of one encoder forward at the variant's input size


@lru_cache(maxsize=None)
def count(name: str, flops: bool = False) -> VariantStats:
    """Built on the meta device: no memory, no weights, milliseconds even for ViT-H (FLOPs take seconds)."""
    from edgekit.variants.registry import get_spec

    spec = get_spec(name)
    with torch.device("meta"):
        model = spec.build().eval()
    params = sum(p.numel() for p in model.parameters())
    encoder = sum(p.numel() for p in model.image_encoder.parameters())
    if spec.external_encoder:  # the encoder is the user's ONNX file: counted per deploy, from its initializers
        return VariantStats(params=params - encoder, encoder_params=None,
                            tensors=len(model.state_dict()) - len(model.image_encoder.state_dict()))
    gflops = encoder_gmacs(model, spec.input_size) if flops else None
    return VariantStats(params=params, encoder_params=encoder, tensors=len(model.state_dict()), encoder_gflops=gflops)


def cached_gflops(name: str, cache: Path | None = None) -> float:
    """encoder GMACs, computed once per variant and edgekit version and kept in ~/.cache/edgekit/stats.json
    (counting runs a meta-device forward: a few seconds per variant)."""
    import json
    import os

    from edgekit import __version__

    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgekit" / "stats.json"
    key = f"{name}@{__version__}"
    try:
        table = json.loads(cache.read_text())
    except (OSError, ValueError):
        table = {}
    if key not in table:
        table[key] = count(name, flops=True).encoder_gflops
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.part")
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
        os.replace(tmp, cache)
    return table[key]


def encoder_gmacs(model: torch.nn.Module, input_size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.encode(torch.empty(1, 3, input_size, input_size))
    return round(counter.get_total_flops() / 2 / 1e9, 2)
