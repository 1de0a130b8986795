"""Converters for torch ops coremltools has none for, registered with its TorchScript frontend before a conversion.

- `upsample_bicubic2d` (EdgeSAM's and EfficientViT-SAM's necks resize with F.interpolate(mode="bicubic")): MIL has
  no bicubic resize, but a resize between fixed sizes is linear and separable, so it is two matmuls with constant
  interpolation matrices, `A_h @ x @ A_w^T`. The matrices are torch's own bicubic (a = -0.75, its border clamping
  and coordinate mapping, align_corners and a given scale factor included) applied to the identity, so the result is
  torch's up to float rounding; matmuls also run on the Neural Engine.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def bicubic_matrix(n_in: int, n_out: int, align_corners: bool, scale: float | None = None) -> np.ndarray:
    """(n_out, n_in): row i holds the weights torch's bicubic resize gives each input sample for output i along
    one axis (`scale`: the scale factor the caller gave F.interpolate, which then maps coordinates)."""
    eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, 1, n_in, 1)
    if scale is not None:
        out = F.interpolate(eye, scale_factor=(scale, 1.0), mode="bicubic", align_corners=align_corners)
    else:
        out = F.interpolate(eye, size=(n_out, 1), mode="bicubic", align_corners=align_corners)
    assert out.shape[2] == n_out, (out.shape, n_out)
    return out.reshape(n_in, n_out).T.numpy()


def _upsample_bicubic2d(context, node) -> None:
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch.ops import _get_inputs

    inputs = _get_inputs(context, node)
    x, size, align = inputs[0], inputs[1], bool(inputs[2].val)
    scales = inputs[3] if len(inputs) > 3 else None
    h, w = int(x.shape[-2]), int(x.shape[-1])  # a symbolic size cannot make constant matrices: coremltools raises
    scale_h = scale_w = None
    if size is not None and size.val is not None:
        out_h, out_w = (int(v) for v in size.val)
    else:
        scale_h, scale_w = (float(v) for v in scales.val)
        out_h, out_w = int(math.floor(h * scale_h)), int(math.floor(w * scale_w))
    a_h = bicubic_matrix(h, out_h, align, scale_h).astype(np.float32)
    a_w_t = bicubic_matrix(w, out_w, align, scale_w).T.astype(np.float32).copy()
    rows = mb.matmul(x=x, y=a_w_t, name=node.name + "_bicubic_w")  # (..., h, out_w)
    out = mb.matmul(x=a_h, y=rows, name=node.name)  # (..., out_h, out_w)
    context.add(out)


def register() -> None:
    """Add the converters coremltools lacks (once per process; an op coremltools gains later is left to it)."""
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY

    for name in ("upsample_bicubic2d", "upsample_bicubic2d.vec"):
        if name not in _TORCH_OPS_REGISTRY.name_to_func_mapping:
            _TORCH_OPS_REGISTRY.set_func_by_name(_upsample_bicubic2d, name)
