"""Engine layers -> module paths (pure: the two trtexec JSON exports and the layer map in, rows out).

TensorRT names engine layers after what it fused (`node_a + node_b`, `{ForeignNode[a...b]}`, Myelin kernels), so
a layer's name says little. The detailed layer info (`--exportLayerInfo` of an engine built with
`--profilingVerbosity=detailed`) carries each layer's ONNX nodes in `Metadata`; those are the layer map's keys.
A layer covering nodes of several modules gets their longest common module path (ops written in the variant's own
forward, `<graph>`, give way to real modules), or, when they share none, the first node's; it keeps the full list.
Layers with no ONNX node (reformats the builder inserted, DMA copies) count in the sum without a module.
"""
from __future__ import annotations

from dataclasses import dataclass

from edgekit.attribution import module_for
from edgekit.exporters.layer_map import TOP_LEVEL, LayerMap
from edgekit.targets.tensorrt.parse_trtexec_json import parse_export_layer_info, parse_export_profile
from edgekit.targets.timings import LayerTiming


@dataclass(frozen=True)
class EngineRows:
    rows: tuple[dict, ...]  # name, op_type, module, mean_ms, share, onnx_nodes, modules, kind
    iterations: int | None
    note: str | None  # why attribution is partial or missing


def layer_module(modules: list[str]) -> str:
    """The one module path a row shows for the distinct modules of its nodes (in node order)."""
    real = [m for m in modules if m and m != TOP_LEVEL]
    if not real:
        return TOP_LEVEL if TOP_LEVEL in modules else ""
    return common_module(real) or real[0]


def common_module(modules: list[str]) -> str:
    """The longest dotted prefix every module path shares (`image_encoder.layers.1` of two of its blocks)."""
    found = [m.split(".") for m in modules if m]
    if not found:
        return ""
    prefix = found[0]
    for parts in found[1:]:
        keep = 0
        while keep < min(len(prefix), len(parts)) and prefix[keep] == parts[keep]:
            keep += 1
        prefix = prefix[:keep]
    return ".".join(prefix)


def engine_rows(profile_text: str, layer_info_text: str | None, layer_map: LayerMap | None) -> EngineRows:
    """Per-layer rows of an --exportProfile file, each joined to its ONNX nodes and module."""
    profile = parse_export_profile(profile_text)
    nodes_of: dict[str, list[str]] = {}
    types_of: dict[str, str] = {}  # the layer info's LayerType (CaskConvolution, gemm, ...)
    detailed = False
    if layer_info_text:
        info = parse_export_layer_info(layer_info_text)
        detailed = bool(info.summary.get("detailed"))
        nodes_of = {layer.name: list(layer.extra.get("onnx_layers", [])) for layer in info.layers}
        types_of = {layer.name: layer.op_type for layer in info.layers if layer.op_type}
    rows = []
    for layer in profile.layers:
        nodes = nodes_of.get(layer.name, [])
        modules = [module_for(n, layer_map) for n in nodes] if layer_map else []
        distinct = list(dict.fromkeys(m for m in modules if m))
        rows.append({"name": layer.name, "op_type": types_of.get(layer.name) or _op_type(layer),
                     "module": layer_module(distinct),
                     "mean_ms": layer.mean_ms, "share": layer.share, "kind": layer.extra.get("kind"),
                     "onnx_nodes": nodes, "modules": distinct})
    note = None
    if not layer_info_text:
        note = "no layer info exported: engine layers are not joined to ONNX nodes"
    elif not detailed:
        note = "the engine's layer info has names only (built without --profilingVerbosity=detailed): no ONNX nodes"
    elif layer_map is None:
        note = "no layer map for this artifact: layers are not attributed to modules"
    return EngineRows(tuple(rows), profile.summary.get("iterations"), note)


def _op_type(layer: LayerTiming) -> str:
    return str(layer.extra.get("kind") or layer.op_type or "?")
