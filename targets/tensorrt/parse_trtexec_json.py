"""trtexec's JSON exports: --exportProfile (per-layer times), --exportLayerInfo (engine inspector), --exportTimes
(one record per timed inference).

--exportProfile is `[{"count": N}, {"name", "timeMs", "averageMs", "medianMs", "percentage"}, ...]`:
- `medianMs` is absent before TRT 8.4 (8.2.1 source writes none);
- zero-time rows (constants, `_clone_N`, skipped reformats) are present, unlike in the text table;
- numbers are C++ ostream defaults (`0` for zero, up to 6 significant digits), read as floats;
- `percentage` is of the summed layer time (the profiled run syncs per layer, so it exceeds GPU Compute Time);
- names are written WITHOUT JSON escaping (`os << "\\"name\\" : \\"" << l.name`), so a name holding `"` or `\\`
  makes the file invalid JSON. Then each line (one object per line, `, {` separated) is read with a regex whose
  name group runs greedily to the last `", "timeMs"` on the line.
--exportLayerInfo is `{"Layers": [...], "Bindings": [...]}`; `Layers` holds bare names unless the engine was built
with --profilingVerbosity=detailed, then objects (`Name, LayerType, Inputs, Outputs, TacticName, ...`; TRT 10
adds `Metadata` with the ONNX node names separated by U+001E).
--exportTimes is a list of `{startEnqMs, ..., h2dMs, computeMs, d2hMs, latencyMs}`; TRT <= 8.2 also writes
`endToEndMs`. TRT 10 leaves out the warm-up iterations; earlier versions include them (they cannot be told apart).
"""
from __future__ import annotations

import math
import re
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.tensorrt.names import layer_kind, onnx_layers
from edgekit.targets.textparse import NUM, json_number, load_json, opt_json_number, split_lines, to_float
from edgekit.targets.timings import LayerTiming, ProfileParse, RunStats, share_from_percent

_COUNT_LINE = re.compile(rf'^\s*[\[,]?\s*\{{\s*"count"\s*:\s*({NUM})\s*\}}\s*,?\s*$')
_LAYER_LINE = re.compile(
    rf'^\s*[\[,]?\s*\{{\s*"name"\s*:\s*"(?P<name>.*)"\s*,\s*"timeMs"\s*:\s*(?P<time>{NUM})\s*,'
    rf'\s*"averageMs"\s*:\s*(?P<avg>{NUM})\s*,(?:\s*"medianMs"\s*:\s*(?P<median>{NUM})\s*,)?'
    rf'\s*"percentage"\s*:\s*(?P<pct>{NUM})\s*\}}\s*,?\s*\]?\s*$')


def parse_export_profile(text: str) -> ProfileParse:
    """Parse a `trtexec --exportProfile=FILE` JSON file."""
    try:
        data = load_json(text, "exportProfile")
        tolerant = False
        count, rows = _profile_from_json(data)
    except ParseError as strict_error:
        count, rows = _profile_from_lines(text, strict_error)
        tolerant = True
    layers = []
    for name, total, avg, median, pct in rows:
        extra = {"kind": layer_kind(name), "total_ms": total, "median_ms": median}
        layers.append(LayerTiming(name, layer_kind(name), avg, share_from_percent(pct), extra))
    total_ms = math.fsum(r[1] for r in rows)
    summary = {"iterations": count, "total_ms": total_ms, "layer_mean_sum_ms": math.fsum(r[2] for r in rows),
               "zero_time_layers": sum(1 for r in rows if r[1] == 0), "has_median": any(r[3] is not None for r in rows)}
    meta = {"tool": "trtexec", "export": "profile", "tolerant_fallback": tolerant}
    return ProfileParse(tuple(layers), (), summary, meta)


def _profile_from_json(data: Any) -> tuple[int | None, list[tuple]]:
    if not isinstance(data, list):
        raise ParseError("exportProfile JSON is not a list", hint="pass the file written by --exportProfile")
    count = None
    rows = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise ParseError(f"exportProfile element {index} is not an object")
        if "count" in item and "name" not in item:
            count = int(json_number(item["count"], f"element {index} count"))
            continue
        name = item.get("name")
        if not isinstance(name, str):
            raise ParseError(f"exportProfile element {index} has no layer name")
        where = f"layer {name[:60]!r}"
        rows.append((name, json_number(item.get("timeMs"), f"{where} timeMs"),
                     json_number(item.get("averageMs"), f"{where} averageMs"),
                     opt_json_number(item.get("medianMs"), f"{where} medianMs"),
                     json_number(item.get("percentage"), f"{where} percentage")))
    if not rows and count is None:
        raise ParseError("exportProfile JSON holds no layers")
    return count, rows


def _profile_from_lines(text: str, strict_error: ParseError) -> tuple[int | None, list[tuple]]:
    """The fallback for names trtexec did not escape: one object per line."""
    count = None
    rows = []
    for lineno, line in enumerate(split_lines(text), 1):
        if (m := _COUNT_LINE.match(line)) is not None:
            count = int(to_float(m.group(1), lineno))
        elif (m := _LAYER_LINE.match(line)) is not None:
            median = m.group("median")
            rows.append((m.group("name"), to_float(m.group("time"), lineno), to_float(m.group("avg"), lineno),
                         None if median is None else to_float(median, lineno), to_float(m.group("pct"), lineno)))
        elif line.strip() not in ("", "[", "]"):
            raise strict_error
    if not rows:
        raise strict_error
    return count, rows


def parse_export_layer_info(text: str) -> ProfileParse:
    """Parse a `trtexec --exportLayerInfo=FILE` JSON file (names only, or detailed)."""
    data = load_json(text, "exportLayerInfo")
    if not isinstance(data, dict) or not isinstance(data.get("Layers"), list):
        raise ParseError("exportLayerInfo JSON has no `Layers` list", hint="pass the file written by --exportLayerInfo")
    layers = []
    for index, item in enumerate(data["Layers"]):
        if isinstance(item, str):
            layers.append(LayerTiming(item, layer_kind(item), None, None, {"kind": layer_kind(item)}))
        elif isinstance(item, dict) and isinstance(item.get("Name"), str):
            layers.append(_detailed_layer(item))
        else:
            raise ParseError(f"exportLayerInfo layer {index} is neither a name nor an object with `Name`")
    bindings = data.get("Bindings", [])
    if not isinstance(bindings, list) or not all(isinstance(b, str) for b in bindings):
        raise ParseError("exportLayerInfo `Bindings` is not a list of names")
    detailed = any(isinstance(item, dict) for item in data["Layers"])
    summary = {"iterations": None, "total_ms": None, "layer_count": len(layers), "detailed": detailed}
    return ProfileParse(tuple(layers), (), summary, {"tool": "trtexec", "export": "layer_info", "bindings": bindings})


def _detailed_layer(item: dict[str, Any]) -> LayerTiming:
    name = item["Name"]
    layer_type = item.get("LayerType") if isinstance(item.get("LayerType"), str) else None
    extra: dict[str, Any] = {"kind": layer_kind(name)}
    for key, out in (("TacticName", "tactic"), ("TacticValue", "tactic_value"), ("Origin", "origin"),
                     ("ParameterType", "parameter_type"), ("StreamId", "stream_id")):
        if key in item and isinstance(item[key], (str, int, float)) and not isinstance(item[key], bool):
            extra[out] = item[key]
    for key in ("Inputs", "Outputs"):
        tensors = item.get(key)
        if isinstance(tensors, list):
            extra[key.lower()] = [_tensor(t) for t in tensors if isinstance(t, dict)]
    if isinstance(item.get("Metadata"), str):
        extra["onnx_layers"] = onnx_layers(item["Metadata"])
    return LayerTiming(name, layer_type or layer_kind(name), None, None, extra)


def _tensor(t: dict[str, Any]) -> dict[str, Any]:
    """Name, dims, format and (8.4+) location of one tensor; the 8.2-era file has no `Location`."""
    dims = t.get("Dimensions")
    out = {"name": _str(t.get("Name")), "format": _str(t.get("Format/Datatype")),
           "dimensions": dims if isinstance(dims, list) and all(isinstance(d, int) and not isinstance(d, bool)
                                                                 for d in dims) else None}
    if "Location" in t:
        out["location"] = _str(t["Location"])
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_export_times(text: str) -> ProfileParse:
    """Parse a `trtexec --exportTimes=FILE` JSON file into one run of per-inference samples."""
    data = load_json(text, "exportTimes")
    if not isinstance(data, list):
        raise ParseError("exportTimes JSON is not a list", hint="pass the file written by --exportTimes")
    series: dict[str, list[float]] = {"latencyMs": [], "computeMs": [], "h2dMs": [], "d2hMs": [], "enqueue": []}
    for index, item in enumerate(data):
        if not isinstance(item, dict) or "latencyMs" not in item:
            raise ParseError(f"exportTimes element {index} has no latencyMs")
        for key in ("latencyMs", "computeMs", "h2dMs", "d2hMs"):
            if key in item:
                series[key].append(json_number(item[key], f"element {index} {key}"))
        if "startEnqMs" in item and "endEnqMs" in item:
            series["enqueue"].append(json_number(item["endEnqMs"], f"element {index} endEnqMs")
                                     - json_number(item["startEnqMs"], f"element {index} startEnqMs"))
    if not series["latencyMs"]:
        raise ParseError("exportTimes JSON holds no inferences")
    extra: dict[str, Any] = {}
    for key, out in (("computeMs", "gpu_compute_mean_ms"), ("h2dMs", "h2d_mean_ms"), ("d2hMs", "d2h_mean_ms"),
                     ("enqueue", "enqueue_mean_ms")):
        if series[key]:
            extra[out] = math.fsum(series[key]) / len(series[key])
    extra["latency_samples_ms"] = series["latencyMs"]
    run = RunStats.from_samples(series["latencyMs"], extra)
    summary = {"iterations": len(series["latencyMs"]), "total_ms": math.fsum(series["latencyMs"]),
               "has_end_to_end": any(isinstance(i, dict) and "endToEndMs" in i for i in data)}
    return ProfileParse((), (run,), summary, {"tool": "trtexec", "export": "times"})
