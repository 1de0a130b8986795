"""The LiteRT layer map: .tflite tensor and node names -> module paths (`image_encoder.layers.2.blocks.0.attn`).

litert-torch names every op's output tensor after the chain of modules that were *called* to produce it, one
segment per module: `<module>.<Class>_<attribute>` joined by `/`, e.g.
`__main__.Wrapper/edgekit.exporters.graphs.DecoderGraph_net/edgekit.variants.two_way_transformer.TwoWayTransformer_transformer/...TwoWayAttentionBlock_0/...Attention_self_attn`
(fused ops join several such locations with `;`, and a trailing `;N` numbers the tensor). A segment keeps only
the last attribute of the path (`0` for `layers.0`, `transformer` for `mask_decoder.transformer` when the mask
decoder's own forward was not what called it), so the full path is recovered by walking the torch module tree:
each segment is the nearest descendant of the previous one whose class and last attribute match.

Keys: `LayerMap.tensors[tensor name]` and `LayerMap.nodes["node:<index>"]` (subgraph 0, the measured signature;
`node:<subgraph>:<index>` for the others). A node none of whose outputs carries a location inherits the
module of the node feeding it (graph order is topological), else the top level.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from edgekit.exporters.layer_map import TOP_LEVEL, LayerMap

WRAPPER_PREFIXES = ("net.model.", "net.")  # the conversion wrapper holds the Encoder/DecoderGraph as `.net`


def _segment(module: nn.Module, attribute: str) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}_{attribute}"


class _Resolver:
    """Segment chains -> module paths under one root module, with every step cached."""

    def __init__(self, root: nn.Module) -> None:
        self.by_segment: dict[str, list[str]] = {}
        for path, module in root.named_modules():
            if path:
                self.by_segment.setdefault(_segment(module, path.rsplit(".", 1)[-1]), []).append(path)
        self._cache: dict[tuple[str, str], str | None] = {}

    def child(self, parent: str, segment: str) -> str | None:
        key = (parent, segment)
        if key not in self._cache:
            prefix = parent + "." if parent else ""
            found = [p for p in self.by_segment.get(segment, ()) if p.startswith(prefix)]
            self._cache[key] = min(found, key=lambda p: (p.count("."), p)) if found else None
        return self._cache[key]

    def path(self, location: str) -> str | None:
        """The module path of one location (`Root/Seg_a/Seg_b`); None when its first step is unknown."""
        segments = location.split("/")[1:]  # the first names the root wrapper itself
        current = ""
        for segment in segments:
            nxt = self.child(current, segment)
            if nxt is None:
                return current if current else None  # keep the deepest module that resolved
            current = nxt
        return current


def _strip(path: str) -> str:
    for prefix in WRAPPER_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix):]
    return "" if path in ("net", "net.model") else path


def location_of(tensor_name: str) -> str | None:
    """The first module location in a tensor name, or None (inputs, constants, `serving_default_x:0`)."""
    for part in tensor_name.split(";"):
        if "/" in part or ("." in part and not part.replace(".", "").isdigit()):
            return part
    return None


def module_for(resolver: _Resolver, tensor_name: str) -> str | None:
    location = location_of(tensor_name)
    if location is None:
        return None
    path = resolver.path(location)
    if path is None:
        return None
    return _strip(path) or TOP_LEVEL


def _ops(path: Path):
    """[(subgraph, node index, [input tensor names], [output tensor names])] of a .tflite file."""
    from ai_edge_litert import schema_py_generated as schema

    buf = Path(path).read_bytes()
    model = schema.Model.GetRootAs(buf, 0)
    out = []
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        names = [sub.Tensors(t).Name().decode("utf-8", "replace") for t in range(sub.TensorsLength())]
        for i in range(sub.OperatorsLength()):
            op = sub.Operators(i)
            ins = [names[t] for t in op.InputsAsNumpy() if t >= 0] if op.InputsLength() else []
            outs = [names[t] for t in op.OutputsAsNumpy() if t >= 0] if op.OutputsLength() else []
            out.append((s, i, ins, outs))
    return out


def build_litert_layer_map(tflite: Path, root: nn.Module) -> LayerMap:
    """The map of every op of every subgraph of `tflite`, converted from `root` (the conversion wrapper)."""
    resolver = _Resolver(root)
    result = LayerMap()
    for sub, index, ins, outs in _ops(tflite):
        key = f"node:{index}" if sub == 0 else f"node:{sub}:{index}"
        module = next((m for m in (module_for(resolver, name) for name in outs) if m), None)
        if module is None:
            module = next((result.tensors[i] for i in ins if i in result.tensors), None) or TOP_LEVEL
        result.nodes[key] = module
        for name in outs:
            result.tensors[name] = module
    return result
