"""Join a runtime profiler's rows to module paths through the layer map written at export.

Runtimes rename what they fuse or insert, so an exact name match is only the first try:
- suffixes and sub-paths a runtime appends (`X/MatMulScaleFusion/`, `X_nchwc`, `X_quant`, `X_kernel_time`);
- names made from a tensor name (ONNX Runtime's NCHWc transformer names nodes `<tensor>_nchwc`), looked up
  in the map's tensor table; quantizer nodes `<tensor>_QuantizeLinear` / `_DequantizeLinear` likewise;
- nodes the runtime created by fusion (`SkipLayerNormalization_token_4`) are found in the graph the runtime
  actually ran (ONNX Runtime's optimised model), and take the module of the tensor they produce — a fusion
  writes the original subgraph's final output — or else of what they consume;
- layout reorders (`ReorderInput_*` / `ReorderOutput_*`) belong to the neighbour they serve: the next row for
  an input reorder, the previous row for an output reorder (rows are in execution order).
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from edgekit.exporters.layer_map import LayerMap

UNATTRIBUTED = ""
_SUFFIXES = ("_kernel_time", "_nchwc", "_quant", "_QuantizeLinear", "_DequantizeLinear", "_fused", "_output_0",
             "_new_reshape")
_TOKEN = re.compile(r"_token_\d+$")
_QDQ = re.compile(r"_(?:q|dq)\d*$")  # onnxruntime.quantization names its nodes `<tensor>_q`, `<tensor>_dq1`
_FUSION = re.compile(r"/[A-Za-z0-9]+(?:Fusion|Transformer)/?$")  # ORT: "<node>/MatMulScaleFusion/"


def module_for(name: str, layer_map: LayerMap) -> str:
    """The module path for one runtime node name, or UNATTRIBUTED."""
    candidates = [name, _FUSION.sub("", name)]
    if "/" in name and not name.startswith("/"):
        candidates.append(name.split("/", 1)[0])
    for candidate in list(candidates):
        stripped = candidate
        for _ in range(3):  # suffixes can stack: conv_quant_nchwc
            for suffix in _SUFFIXES:
                if stripped.endswith(suffix):
                    stripped = stripped[: -len(suffix)]
            candidates.append(stripped)
            candidates.append(_TOKEN.sub("", stripped))
            candidates.append(_QDQ.sub("", stripped))
    for candidate in candidates:
        if candidate in layer_map.nodes:
            return layer_map.nodes[candidate]
        if candidate in layer_map.tensors:
            return layer_map.tensors[candidate]
    return UNATTRIBUTED


def _via_graph(name: str, layer_map: LayerMap, graph: Mapping[str, tuple[list[str], list[str]]],
               producers: Mapping[str, str], max_hops: int = 4) -> str:
    """The module of the nearest known tensor or node around `name` in the runtime's graph: its own tensors
    first, then up through the nodes that feed it (layout reorders put runtime-made tensors in between)."""
    frontier, seen = [name], {name}
    for _ in range(max_hops):
        following = []
        for node in frontier:
            inputs, outputs = graph.get(node, ([], []))
            for tensor in [*outputs, *inputs]:
                module = module_for(tensor, layer_map)
                if module:
                    return module
            for tensor in inputs:
                upstream = producers.get(tensor)
                if upstream and upstream not in seen:
                    module = module_for(upstream, layer_map)
                    if module:
                        return module
                    seen.add(upstream)
                    following.append(upstream)
        frontier = following
    return UNATTRIBUTED


def attribute(names: Sequence[str], layer_map: LayerMap,
              graph: Mapping[str, tuple[list[str], list[str]]] | None = None) -> list[str]:
    """Module paths for rows in execution order. `graph`: {node: (inputs, outputs)} of the runtime's graph."""
    modules = [module_for(n, layer_map) for n in names]
    if graph:
        producers = {out: node for node, (_, outs) in graph.items() for out in outs}
        modules = [m or _via_graph(n, layer_map, graph, producers) for n, m in zip(names, modules)]
    for i, name in enumerate(names):
        if modules[i] or not name.startswith(("ReorderInput", "ReorderOutput")):
            continue
        order = range(i + 1, len(names)) if name.startswith("ReorderInput") else range(i - 1, -1, -1)
        modules[i] = next((modules[j] for j in order if modules[j] and not names[j].startswith("Reorder")), UNATTRIBUTED)
    return modules
