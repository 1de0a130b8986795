"""Join a runtime profiler's rows to module paths through the layer map written at export.

Runtimes rename what they fuse or insert, so an exact name match is only the first try:
- suffixes and sub-paths a runtime appends (`X/MatMulScaleFusion/`, `X_nchwc`, `X_quant`, `X_kernel_time`);
- names made from a tensor name (ONNX Runtime's NCHWc transformer names nodes `<tensor>_nchwc`), looked up
  in the map's tensor table; quantizer nodes `<tensor>_QuantizeLinear` / `_DequantizeLinear` likewise;
- layout reorders (`ReorderInput_*` / `ReorderOutput_*`) belong to the neighbour they serve: the next row for
  an input reorder, the previous row for an output reorder (rows are in execution order).
"""
from __future__ import annotations

import re
from typing import Sequence

from edgekit.exporters.layer_map import LayerMap

UNATTRIBUTED = ""
_SUFFIXES = ("_kernel_time", "_nchwc", "_quant", "_QuantizeLinear", "_DequantizeLinear", "_fused", "_output_0")
_TOKEN = re.compile(r"_token_\d+$")


def module_for(name: str, layer_map: LayerMap) -> str:
    """The module path for one runtime node name, or UNATTRIBUTED."""
    candidates = [name, name.split("/", 1)[0] if "/" in name and not name.startswith("/") else name]
    for candidate in list(candidates):
        stripped = candidate
        for _ in range(3):  # suffixes can stack: conv_quant_nchwc
            for suffix in _SUFFIXES:
                if stripped.endswith(suffix):
                    stripped = stripped[: -len(suffix)]
            candidates.append(stripped)
            candidates.append(_TOKEN.sub("", stripped))
    for candidate in candidates:
        if candidate in layer_map.nodes:
            return layer_map.nodes[candidate]
        if candidate in layer_map.tensors:
            return layer_map.tensors[candidate]
    return UNATTRIBUTED


def attribute(names: Sequence[str], layer_map: LayerMap) -> list[str]:
    """Module paths for rows in execution order (layout reorders borrow their neighbour's module)."""
    modules = [module_for(n, layer_map) for n in names]
    for i, name in enumerate(names):
        if modules[i] or not name.startswith(("ReorderInput", "ReorderOutput")):
            continue
        order = range(i + 1, len(names)) if name.startswith("ReorderInput") else range(i - 1, -1, -1)
        modules[i] = next((modules[j] for j in order if modules[j] and not names[j].startswith("Reorder")), UNATTRIBUTED)
    return modules
