"""Deterministic synthetic weights in a variant's official layout, for latency-only work.

No pretrained weights are needed to measure speed, but the values must keep activations in a sane range
and must be the same on every machine (the workplace's reference outputs were computed from them). Each
tensor is a pure function of (seed, key, shape, dtype): a SHA-256 of "seed:key" seeds numpy's PCG64, and the
key's role (norm scale, bias, kernel, embedding table ...) picks the distribution. tests/test_synthetic.py
checks this module against the workplace's reference generator bit for bit.
"""
from __future__ import annotations

import hashlib
import math
from typing import Iterable

import numpy as np

# Module names whose 2-D+ "weight" is a lookup table (nn.Embedding-like, drawn N(0, 0.02)), not a kernel.
_TABLE_OWNER_HINTS = ("pos_embed", "rel_pos", "embed", "token", "pos_enc", "tpos", "no_mem", "no_obj", "invalid_points")


def _owning_module(key: str) -> str:
    """Last non-index path component before the parameter name ('a.b.0.weight' -> 'b')."""
    names = [p for p in key.split(".")[:-1] if not p.isdigit()]
    return names[-1] if names else ""


def _is_lookup_table(key: str) -> bool:
    owner = _owning_module(key)
    # A Linear named "*_proj" under a hinted parent (SAM 2's obj_ptr_tpos_proj) is still a kernel.
    return not owner.endswith("_proj") and any(hint in owner for hint in _TABLE_OWNER_HINTS)


def _generator(seed: int, key: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _kernel(rng: np.random.Generator, key: str, shape: tuple[int, ...]) -> np.ndarray:
    if "upscaling" in key and len(shape) == 4:
        # Mask-decoder ConvTranspose2d with kernel == stride: one (in, out) map shared by all taps, scaled by
        # the fan-in of an output pixel (in_channels); independent taps would make a checkerboard of logits.
        shared = rng.normal(0.0, 1.0 / math.sqrt(shape[0]), shape[:2])
        return np.broadcast_to(shared[:, :, None, None], shape).copy()
    fan_in = math.prod(shape[1:])
    values = rng.normal(0.0, 1.0 / math.sqrt(fan_in), shape)
    if shape[1] != 3 and fan_in > 1:
        # Zero mean per output unit (except RGB stems and 1x1 depthwise kernels), so the positive mean of
        # GELU/ReLU outputs is not carried through deep conv stacks whose BatchNorm stats are synthetic.
        per_unit_mean = values.reshape(shape[0], -1).mean(axis=1)
        values = values - per_unit_mean.reshape((shape[0],) + (1,) * (len(shape) - 1))
    return values


def synthetic_tensor(seed: int, key: str, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """One tensor's synthetic values (integer buffers are zeros)."""
    if dtype.startswith("int"):
        return np.zeros(shape, dtype=np.int64)
    rng = _generator(seed, key)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        values = rng.uniform(0.5, 1.5, shape)
    elif leaf == "running_mean":
        values = rng.normal(0.0, 0.1, shape)
    elif leaf == "positional_encoding_gaussian_matrix":
        values = rng.normal(0.0, 1.0, shape)
    elif leaf == "bias" or leaf.endswith("_bias"):
        values = rng.normal(0.0, 0.02, shape)
    elif leaf in ("weight", "gamma") and len(shape) == 1:
        values = 1.0 + rng.normal(0.0, 0.05, shape)
    elif leaf == "weight" and len(shape) >= 2 and not _is_lookup_table(key):
        values = _kernel(rng, key, shape)
    else:
        values = rng.normal(0.0, 0.02, shape)
    return values.astype(np.float32)


def synthetic_state_dict(layout: Iterable[tuple[str, tuple[int, ...], str]], seed: int = 0) -> dict:
    """{key: torch tensor} for (key, shape, dtype) rows, e.g. from `layout_of(model)`."""
    import torch

    return {key: torch.from_numpy(synthetic_tensor(seed, key, tuple(shape), dtype)) for key, shape, dtype in layout}


def layout_of(state_dict: dict) -> list[tuple[str, tuple[int, ...], str]]:
    """(key, shape, dtype) rows of a state dict, dtype spelled as numpy does ('float32', 'int64')."""
    return [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in state_dict.items()]
