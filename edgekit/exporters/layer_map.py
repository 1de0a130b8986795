"""The layer map: ONNX node name -> module path (`image_encoder.layers.2.blocks.0.attn`).

Written beside every artifact at export time and used to attribute each profiler row to the module that
produced it (executorch's ETRecord idea). The dynamo exporter records each node's module scopes in its
metadata; the legacy exporter encodes them in the node name (`/model/image_encoder/layers.0/Conv`). Nodes that
carry neither (created by graph simplification) inherit the module of the node that feeds them.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import onnx

WRAPPER_PREFIX = "model."  # EncoderGraph / DecoderGraph hold the variant as `.model`
TOP_LEVEL = "<graph>"  # ops written in the variant's encode/decode body rather than inside a submodule


def _strip(path: str) -> str:
    path = path[len(WRAPPER_PREFIX):] if path.startswith(WRAPPER_PREFIX) else path
    return "" if path == "model" else path


def _from_metadata(node: onnx.NodeProto) -> str | None:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            # The last entry is the op itself; the one before it is the innermost module.
            modules = [s for s in scopes[:-1] if s]
            return _strip(modules[-1]) if modules else ""
    return None


def _from_legacy_name(name: str) -> str | None:
    if not name.startswith("/"):
        return None
    parts = name.strip("/").split("/")[:-1]
    return _strip(".".join(parts)) if parts else ""


@dataclass
class LayerMap:
    """nodes: ONNX node name -> module path; tensors: tensor name -> module path of the node producing it
    (runtimes rename fused nodes after tensors, e.g. ONNX Runtime's `getitem_90_nchwc`)."""

    nodes: dict[str, str] = field(default_factory=dict)
    tensors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"nodes": self.nodes, "tensors": self.tensors}, indent=0, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "LayerMap":
        data = json.loads(text)
        return cls(nodes=dict(data.get("nodes", {})), tensors=dict(data.get("tensors", {})))

    def write(self, path: Path) -> None:
        path.write_text(self.to_json())

    @classmethod
    def read(cls, path: Path) -> "LayerMap":
        return cls.from_json(path.read_text())


def build_layer_map(model: onnx.ModelProto, known: LayerMap | None = None) -> LayerMap:
    """The map for every node of the main graph ("" -> TOP_LEVEL).

    `known` is the map of the graph before simplification: onnxslim keeps node names but drops metadata, so
    the map is built on the raw export and carried over by name."""
    result = LayerMap()
    pending: list[onnx.NodeProto] = []
    known_nodes = known.nodes if known else {}
    known_tensors = known.tensors if known else {}
    for node in model.graph.node:
        module = known_nodes.get(node.name)
        if module is None:
            module = _from_metadata(node)
        if module is None:
            module = _from_legacy_name(node.name)
        if module is None:
            # A node the simplifier fused (MatMul+Add -> Gemm) writes the fused subgraph's final tensor, which
            # the raw export's map knows; it also names helper nodes after it (`val_10_pre_reshape`).
            for out in [*node.output, node.name]:
                base = out.removesuffix("_pre_reshape").removesuffix("_post_reshape")
                if base in known_tensors:
                    module = known_tensors[base]
                    break
        if module is None:
            # onnxslim's fused/renamed nodes: the module of whatever feeds them (graph order is topological).
            module = next((result.tensors[i] for i in node.input if i in result.tensors), None)
        if module is None:
            pending.append(node)
            continue
        module = module or TOP_LEVEL
        result.nodes[node.name] = module
        for out in node.output:
            result.tensors[out] = module
    for node in pending:
        result.nodes[node.name] = TOP_LEVEL
    return result
