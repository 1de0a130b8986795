"""Engine layer information as trtexec prints it in a text log (two forms, both without the log prefix).

- TRT 8.0-8.2 with --verbose print one line per engine layer after the build:
      Layer(CaskConvolution): Conv__25 + Relu, Tactic: 7144526460361122478, x:0[Float(-2,1,28,28)] -> Relu:0[...]
  The name runs up to `, Tactic: `; the tensors after it are kept as text.
- TRT 10 with --dumpLayerInfo prints `Layer Information:` / `Layers:` (prefixed) and then one unprefixed line
  per layer, then `Bindings:` and one binding name per line:
      Name: node_conv2d + node_relu, LayerType: CaskConvolution, Inputs: [ ... ], ..., TacticName: sm80_...,
      StreamId: 0, Metadata: [ONNX Layer: node_conv2d]\\x1e[ONNX Layer: node_relu]
  The name runs up to `, LayerType: `; `Metadata` is the last field and maps the layer back to ONNX nodes.
  Without --profilingVerbosity=detailed a layer line holds the name only.
"""
from __future__ import annotations

import re
from typing import Any

from edgekit.targets.tensorrt.names import onnx_layers

_TRT8 = re.compile(r"^Layer\((?P<type>[^)]*)\): (?P<name>.*?), Tactic: (?P<tactic>[-\w]+), (?P<io>.*)$")
_TRT10 = re.compile(r"^Name: (?P<name>.*?), LayerType: (?P<type>[^,]*)(?:, (?P<rest>.*))?$")
_TACTIC_NAME = re.compile(r"(?:^|, )TacticName: ([^,]*)")
_TACTIC_VALUE = re.compile(r"(?:^|, )TacticValue: ([^,]*)")
_METADATA = re.compile(r"(?:^|, )Metadata: (.*)$")


def verbose_layer_line(text: str) -> dict[str, Any] | None:
    """A TRT 8.0-8.2 `Layer(Type): name, Tactic: N, inputs -> outputs` line, else None."""
    m = _TRT8.match(text)
    if not m:
        return None
    inputs, _, outputs = m.group("io").partition(" -> ")
    return {"name": m.group("name"), "layer_type": m.group("type"), "tactic": m.group("tactic"),
            "inputs": inputs, "outputs": outputs}


def dump_layer_line(text: str) -> dict[str, Any]:
    """One line of a TRT 10 `--dumpLayerInfo` block: detailed (`Name: ..., LayerType: ...`) or the name alone."""
    m = _TRT10.match(text)
    if not m:
        return {"name": text.strip(), "layer_type": None}
    rest = m.group("rest") or ""
    out: dict[str, Any] = {"name": m.group("name"), "layer_type": m.group("type").strip() or None}
    if (t := _TACTIC_NAME.search(rest)) is not None:
        out["tactic"] = t.group(1).strip()
    elif (t := _TACTIC_VALUE.search(rest)) is not None:
        out["tactic"] = t.group(1).strip()
    if (meta := _METADATA.search(rest)) is not None:
        out["onnx_layers"] = onnx_layers(meta.group(1))
    return out
