"""trtexec's console log -> ProfileParse: versions, device, the --dumpProfile table, the performance summary and
layer information. Pure: text in, value out.

Log lines read `[MM/DD/YYYY-HH:MM:SS] [I] [TRT] message`. The space after `[I]` is there or not depending on the
version, the timestamp can be doubled when two threads interleave (`[01/15/2022-17:04:29] [01/15/2022-17:04:29]
[I] Finish parsing`), and some lines have no prefix at all: the `&&&& RUNNING/PASSED` lines, the layer lines of
--dumpLayerInfo (TRT 10) and --verbose engine info (TRT 8), and whatever else was pasted around the log (the
Xavier NX fixture came from Markdown). Lines are read by what they say, never by position.

`layers` come from the --dumpProfile table (the last one, if the file holds several), with op_type from the
layer information where the log has it; without a profile table, from the layer information (no times).
`runs` has one entry per performance summary (one per trtexec invocation that printed one). From 8.4,
--dumpProfile without --separateProfileRun prints no summary; `summary["e2e_reported"]` is then False and the
profile's own totals fill `iterations` / `total_ms`.
"""
from __future__ import annotations

import math
import re
from typing import Any

from edgekit.errors import ParseError
from edgekit.targets.tensorrt.layer_info_text import dump_layer_line, verbose_layer_line
from edgekit.targets.tensorrt.names import decode_version, layer_kind
from edgekit.targets.tensorrt.perf_summary import TIMING_TRACE, WARMUP, parse_perf_block, trace_average
from edgekit.targets.tensorrt.profile_table import PROFILE_START, ProfileTable, parse_profile_table
from edgekit.targets.textparse import NUM, split_lines, to_float, to_int
from edgekit.targets.timings import LayerTiming, ProfileParse, RunStats, share_from_percent

_PREFIX = re.compile(r"^(?:\[\d{2}/\d{2}/\d{4}-\d{2}:\d{2}:\d{2}\] ?)+(?:\[([IWEVF])\] ?)?(?:\[TRT\] ?)?")
_AMP = re.compile(r"^&&&& (RUNNING|PASSED|FAILED|WAIVED) TensorRT\.trtexec(?: \[TensorRT v(\d+)\])?"
                  r"(?: \[b(\d+)\])?(?: # (.*))?$")
_VERSION = re.compile(r"^TensorRT version: (\S+)$")
_UNSTABLE = re.compile(rf"coefficient of variance = ({NUM})%")
_ENGINE_TIME = re.compile(rf"^Engine (built|deserialized|loaded) in ({NUM}) sec\.?$")
# Device Information keys -> (field, unit the number is printed in; None: keep the text).
_DEVICE_KEYS = {"Selected Device": ("name", None), "Compute Capability": ("compute_capability", None),
                "SMs": ("sms", ""), "Device Global Memory": ("global_memory_mib", "MiB"),
                "Compute Clock Rate": ("compute_clock_ghz", "GHz"),
                "Application Compute Clock Rate": ("compute_clock_ghz", "GHz"),
                "Memory Clock Rate": ("memory_clock_ghz", "GHz"),
                "Application Memory Clock Rate": ("memory_clock_ghz", "GHz"),
                "Memory Bus Width": ("memory_bus_bits", "bits"), "Shared Memory per SM": ("shared_memory_kib", "KiB"),
                "Selected Device ID": ("id", ""), "Selected Device UUID": ("uuid", None)}


def parse_trtexec(text: str) -> ProfileParse:
    """Parse a trtexec console log (any TensorRT 8.0-10.x)."""
    contents = [_split(line) for line in split_lines(text)]
    texts = [body for _, body in contents]
    meta: dict[str, Any] = {"tool": "trtexec"}
    device: dict[str, Any] = {}
    runs: list[RunStats] = []
    tables: list[ProfileTable] = []
    layer_info: list[dict[str, Any]] = []
    bindings: list[str] = []
    warnings: list[str] = []
    pending: dict[str, Any] = {"trace": []}  # facts that belong to the next performance summary
    e2e_skipped = False
    section = None
    i = 0
    while i < len(contents):
        level, body = contents[i]
        stripped = body.strip()
        lineno = i + 1
        if level is None and (m := _AMP.match(stripped)) is not None:
            meta["status"] = m.group(1)
            if m.group(2):
                meta["trt_version_code"] = m.group(2)
                meta.setdefault("trt_version", decode_version(m.group(2)))
            if m.group(3):
                meta["trt_build"] = "b" + m.group(3)
            if m.group(4) is not None:
                meta["command"] = m.group(4)
        elif level == "V":
            pass  # verbose chatter; the facts parsed here are all printed at [I]/[W]
        elif (m := PROFILE_START.match(stripped)) is not None:
            table, i = parse_profile_table(texts, i, to_int(m.group(1), lineno))
            tables.append(table)
            continue
        elif stripped == "=== Performance summary ===":
            block, i = parse_perf_block(contents, i)
            runs.append(_run(block, pending, meta.get("command")))
            warnings.extend(block["warnings"])
            pending = {"trace": []}
            continue
        elif stripped.startswith("=== ") and stripped.endswith(" ==="):
            section = stripped.strip("= ")
        elif level is None and (info := verbose_layer_line(stripped)) is not None:
            layer_info.append(info)
        elif stripped == "Layers:" and level is not None:
            i = _dump_layers(contents, i + 1, layer_info, bindings)
            continue
        elif (m := _VERSION.match(stripped)) is not None:
            meta["trt_version"] = decode_version(m.group(1)) or m.group(1)
        elif section == "Device Information" and level is not None and ": " in stripped:
            key, _, value = stripped.partition(": ")
            if key in _DEVICE_KEYS:
                device.update(_device_field(*_DEVICE_KEYS[key], value.strip()))
        elif (m := TIMING_TRACE.match(stripped)) is not None:
            pending["queries"] = to_int(m.group(1), lineno)
            pending["trace_s"] = to_float(m.group(2), lineno)
        elif (m := WARMUP.match(stripped)) is not None:
            pending["warmup_queries"] = to_int(m.group(1), lineno)
        elif (avg := trace_average(stripped, lineno)) is not None:
            pending["trace"].append(avg)
        elif (m := _ENGINE_TIME.match(stripped)) is not None:
            meta[f"engine_{m.group(1)}_s"] = to_float(m.group(2), lineno)
        elif stripped.startswith("The e2e network timing is not reported"):
            e2e_skipped = True
        elif level == "W" and (m := _UNSTABLE.search(stripped)) is not None:
            meta["gpu_compute_cv_pct"] = to_float(m.group(1), lineno)
            warnings.append(stripped.lstrip("* "))
        i += 1
    if device:
        meta["device"] = device
    if bindings:
        meta["bindings"] = bindings
    if not (tables or runs or layer_info or device or "trt_version" in meta or "status" in meta):
        raise ParseError("no trtexec output found (no `&&&&` line, version, device, profile or summary)",
                         hint="pass the console log of trtexec (for --exportProfile JSON use kind trtexec-profile)")
    layers, profile = _layers(tables, layer_info)
    last = runs[-1] if runs else None
    summary: dict[str, Any] = {
        "iterations": last.count if last else (profile or {}).get("iterations"),
        "total_ms": last.extra.get("total_host_walltime_ms") if last else (profile or {}).get("total_ms"),
        "e2e_reported": True if runs else (False if e2e_skipped else None),
        "profile": profile,
        "throughput_qps": last.extra.get("throughput_qps") if last else None,
        "warnings": warnings,
    }
    if len(tables) > 1:
        meta["profile_tables"] = len(tables)
    return ProfileParse(tuple(layers), tuple(runs), summary, meta)


def _split(line: str) -> tuple[str | None, str]:
    """(level, text): level None for unprefixed lines, '' for a timestamp without a level."""
    m = _PREFIX.match(line)
    if not m:
        return None, line
    return m.group(1) or "", line[m.end():]


def _dump_layers(contents: list[tuple[str | None, str]], i: int, info: list[dict[str, Any]],
                 bindings: list[str]) -> int:
    """The unprefixed block after `Layers:` up to the next prefixed line: layers, a blank, `Bindings:`, names."""
    target = None
    while i < len(contents) and contents[i][0] is None:
        text = contents[i][1].strip()
        if text == "Bindings:":
            target = bindings
        elif text.startswith("&&&&"):
            break
        elif text:
            if target is None:
                info.append(dump_layer_line(text))
            else:
                target.append(text)
        i += 1
    return i


def _layers(tables: list[ProfileTable], info: list[dict[str, Any]]) -> tuple[list[LayerTiming], dict | None]:
    types = {entry["name"]: entry.get("layer_type") for entry in info}
    details = {entry["name"]: entry for entry in info}
    if not tables:
        return [LayerTiming(e["name"], e.get("layer_type") or layer_kind(e["name"]), None, None,
                            _info_extra(e)) for e in info], None
    table = tables[-1]
    layers = []
    for row in table.rows:
        extra = {"kind": layer_kind(row.name), "total_ms": row.total_ms, "median_ms": row.median_ms}
        if row.name in details:
            extra.update(_info_extra(details[row.name]))
        layers.append(LayerTiming(row.name, types.get(row.name) or extra["kind"], row.avg_ms,
                                  share_from_percent(row.percent), extra))
    # Without its Total row (a cut-off capture) the table's totals are the sums of the rows that are there.
    sums = (math.fsum(r.total_ms for r in table.rows), math.fsum(r.avg_ms for r in table.rows)) if table.rows \
        else (None, None)
    profile = {"iterations": table.iterations, "layout": table.layout, "complete": table.total is not None,
               "total_ms": table.total.total_ms if table.total else sums[0],
               "mean_ms": table.total.avg_ms if table.total else sums[1],
               "median_ms": table.total.median_ms if table.total else None,
               "layer_sum_ms": round(math.fsum(r.total_ms for r in table.rows), 6), "rows": len(table.rows)}
    return layers, profile


def _info_extra(entry: dict[str, Any]) -> dict[str, Any]:
    out = {"kind": layer_kind(entry["name"])}
    out.update({k: v for k, v in entry.items() if k not in ("name", "layer_type")})
    return out


def _run(block: dict[str, Any], pending: dict[str, Any], command: str | None) -> RunStats:
    lat = block.get("latency", {})
    extra: dict[str, Any] = {"throughput_qps": block.get("throughput_qps")}
    for key in ("gpu_compute", "enqueue", "h2d", "d2h", "end_to_end_host"):
        if key in block:
            extra[f"{key}_ms"] = block[key]
    if "total_host_walltime_s" in block:
        extra["total_host_walltime_ms"] = round(block["total_host_walltime_s"] * 1000.0, 9)
    if "total_gpu_compute_time_s" in block:
        extra["total_gpu_compute_ms"] = round(block["total_gpu_compute_time_s"] * 1000.0, 9)
    if "warmup_queries" in pending:
        extra["warmup_queries"] = pending["warmup_queries"]
    if pending["trace"]:
        extra["trace_averages"] = pending["trace"]
    if command is not None:
        extra["command"] = command
    return RunStats(mean_ms=lat.get("mean"), count=pending.get("queries"), min_ms=lat.get("min"),
                    max_ms=lat.get("max"), median_ms=lat.get("median"),
                    percentiles_ms=lat.get("percentiles", {}), extra=extra)


def _device_field(field: str, unit: str | None, value: str) -> dict[str, Any]:
    """`SMs: 6` -> {"sms": 6}; `Compute Clock Rate: 0.9216 GHz` -> {"compute_clock_ghz": 0.9216}; text kept as is
    where the field is text or the number is not in the expected unit."""
    m = re.match(rf"^({NUM})\s*{re.escape(unit)}", value) if unit is not None else None
    if m is None:
        return {field: value}
    number = to_float(m.group(1))
    return {field: int(number) if unit != "GHz" and number.is_integer() else number}
