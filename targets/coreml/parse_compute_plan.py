"""Core ML compute-plan dumps -> ProfileParse of per-op ESTIMATES (which device, what relative cost).

No measured per-layer Core ML times exist in public captures (no Xcode performance-report export was found), so
these are all estimates from MLComputePlan or E5RT: `mean_ms` is None and `share` is the tool's relative cost.
Four forms are recognised from their content:
- MLComputePlan printed by a small NSLog tool (freedomtan/coreml_modelc_profling):
      2024-06-13 16:59:10.785 proc[67391:1771143] operation ios17.conv,
          device <MLNeuralEngineComputeDevice: 0x6000036ec0e0>, cost 0.5662%      (one line)
  The op is known only by its MIL type, with no output name, so rows repeat; they are named `<type>#<n>` by
  position. `cost` is MLComputePlan's estimated share of the model's cost, not a time.
- CoreMLInspect (smpanaro/CoreMLInspect): `func main(...) {` and then one line per MIL op,
      0.68% G|C  x_1_cast_fp16 = ios16.gather(batch_dims: [...], ...)
  cost, preferred device letters | supported letters (C=CPU, G=GPU, N=Neural Engine), output name, op. `const()`
  ops carry neither cost nor device and are only counted.
- E5RT analytics as NSLog'd dictionaries, and the same as CSV: see parse_e5rt.py.
"""
from __future__ import annotations

import re
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.coreml.parse_e5rt import CSV_HEADER, parse_e5rt_csv, parse_e5rt_text
from edgekit.targets.textparse import NUM, split_lines, to_float
from edgekit.targets.timings import LayerTiming, ProfileParse, share_from_percent

_PLAN_OP = re.compile(rf"\boperation (?P<op>\S+), device <(?P<device>\w+?)(?:ComputeDevice)?(?:: [^>]*)?>, "
                      rf"cost (?P<cost>{NUM})%")
_INSPECT_OP = re.compile(rf"^\s*(?P<cost>{NUM})% (?P<pref>[CGN]+)\|(?P<supp>[CGN]*)\s+(?P<out>\S+) = "
                         rf"(?P<op>[\w.]+)\((?P<args>.*)\)\s*$")
_INSPECT_CONST = re.compile(r"^\s+\S+ = const\(\)\s*$")
_DEVICES = {"MLCPU": "CPU", "MLGPU": "GPU", "MLNeuralEngine": "ANE", "C": "CPU", "G": "GPU", "N": "ANE"}


def parse_compute_plan(text: str) -> ProfileParse:
    """Parse any of the four Core ML per-op dumps (detected from the content)."""
    head = text.lstrip("\ufeff")[:4096]
    if CSV_HEADER.match(head):
        return parse_e5rt_csv(text)
    if re.search(r" at \S+:\d+:\d+, \{", head) and "EstimatedRunTime" in text:
        return parse_e5rt_text(text)
    if _PLAN_OP.search(text):
        return _parse_nslog_plan(text)
    return _parse_inspect(text)


def _parse_nslog_plan(text: str) -> ProfileParse:
    layers = []
    counts: dict[str, int] = {}
    meta: dict[str, Any] = {"tool": "coreml", "form": "mlcomputeplan_nslog"}
    for lineno, line in enumerate(split_lines(text), 1):
        m = _PLAN_OP.search(line)
        if m is None:
            if (d := re.search(r"the mlmodelc directory: (\S+)", line)) is not None:
                meta["model"] = d.group(1)
            elif line.rstrip().endswith("] ML Program") or line.strip() == "ML Program":
                meta["model_type"] = "ML Program"
            elif line.strip().startswith("...."):
                meta["truncated"] = True
            continue
        op = m.group("op")
        n = counts[op] = counts.get(op, -1) + 1
        cost = to_float(m.group("cost"), lineno)
        device = _DEVICES.get(m.group("device"), m.group("device"))
        layers.append(LayerTiming(f"{op}#{n}", op, None, share_from_percent(cost),
                                  {"device": device, "cost_pct": cost, "index": len(layers)}))
    return ProfileParse(tuple(layers), (), _summary(layers), meta)


def _parse_inspect(text: str) -> ProfileParse:
    layers = []
    consts = 0
    meta: dict[str, Any] = {"tool": "coreml", "form": "coremlinspect"}
    for lineno, line in enumerate(split_lines(text), 1):
        if (m := _INSPECT_OP.match(line)) is not None:
            cost = to_float(m.group("cost"), lineno)
            preferred = [_DEVICES[c] for c in m.group("pref")]
            layers.append(LayerTiming(m.group("out"), m.group("op"), None, share_from_percent(cost),
                                      {"device": preferred[0], "preferred": preferred,
                                       "supported": [_DEVICES[c] for c in m.group("supp")], "cost_pct": cost,
                                       "index": len(layers)}))
        elif _INSPECT_CONST.match(line):
            consts += 1
        elif (f := re.match(r"^\s*func (\w+)\((.*)\) \{\s*$", line)) is not None:
            meta.setdefault("functions", []).append(f.group(1))
        elif (a := re.match(r"^Analyzing model for compute unit \[(\w+)\]", line)) is not None:
            meta["compute_units"] = a.group(1)
    if not layers:
        raise ParseError("no Core ML ops found (MLComputePlan `operation ..., cost N%`, CoreMLInspect "
                         "`N% G|C out = op(...)`, or E5RT analytics)",
                         hint="pass the text the compute-plan tool printed, or the E5RT CSV")
    summary = _summary(layers)
    summary["const_ops"] = consts
    return ProfileParse(tuple(layers), (), summary, meta)


def _summary(layers: list[LayerTiming]) -> dict[str, Any]:
    if not layers:
        raise ParseError("the compute plan lists no operations")
    by_device: dict[str, int] = {}
    share_by_device: dict[str, float] = {}
    for layer in layers:
        device = str(layer.extra["device"])
        by_device[device] = by_device.get(device, 0) + 1
        share_by_device[device] = share_by_device.get(device, 0.0) + (layer.share or 0.0)
    return {"iterations": None, "total_ms": None, "ops": len(layers), "ops_by_device": by_device,
            "share_by_device": share_by_device, "estimated": True}
